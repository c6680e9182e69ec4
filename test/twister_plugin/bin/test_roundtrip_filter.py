"""Round-trip filter on real LibriSpeech clips with Whisper tiny.en: kept/rejected by MER, and the
per-utterance token caps that bound looping outputs."""
import json
from pathlib import Path

import pytest

from twister_plugin.bin import prepare_data, roundtrip_filter
from twister_plugin.data.kaldi import read_kaldi_dir
from twister_plugin.decode import BatchedDecoder, DecoderConfig
from twister_plugin.testing.data import shared_data
from twister_plugin.whisper import load_whisper

ROOT = Path(__file__).resolve().parents[3]
TINY_EN = ROOT / "tools" / "whisper" / "tiny.en.pt"
pytestmark = pytest.mark.skipif(shared_data() is None or not TINY_EN.exists(),
                                reason="needs shared/data and tools/whisper/tiny.en.pt")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rt")
    src = shared_data() / "en" / "librispeech" / "manifest.tsv"
    assert prepare_data.main(["--manifest", str(src), "--out", str(tmp / "all")]) == 0
    dd = read_kaldi_dir(tmp / "all")
    keep = [u for u in dd.utt_ids if dd.utt2dur[u] < 30][:3]
    dd = dd.subset(keep)
    wrong = keep[2]  # a text that does not match its audio: must be rejected
    dd.text[wrong] = "completely different words that nobody said in this recording at all"
    from twister_plugin.data.kaldi import write_kaldi_dir
    write_kaldi_dir(dd, tmp / "synth")
    return tmp, keep


def test_keeps_matching_rejects_wrong_text(synth):
    tmp, keep = synth
    out = tmp / "out"
    assert roundtrip_filter.main(["--synth", str(tmp / "synth"), "--model", str(TINY_EN),
                                  "--out", str(out), "--device", "cpu", "--max_err", "30"]) == 0
    rows = {r["utt_id"]: r for r in map(json.loads, (out / "scores.jsonl").read_text().splitlines())}
    assert set(rows) == set(keep)
    assert rows[keep[2]]["kept"] is False and "roundtrip_err" in rows[keep[2]]["reasons"]
    assert rows[keep[0]]["kept"] and rows[keep[1]]["kept"], rows
    assert sorted(read_kaldi_dir(out / "data").utt_ids) == sorted(keep[:2])


def test_token_caps_follow_text_length(synth):
    tmp, _ = synth
    dd = read_kaldi_dir(tmp / "synth")
    dec = BatchedDecoder(load_whisper(TINY_EN), DecoderConfig())
    caps = roundtrip_filter.token_caps(dd, dec, 30.0)
    for u in dd.utt_ids:
        n = len(dec.tokenizer.encode(" " + dd.text[u]))
        assert caps[u] == int(2 * 1.3 * n) + 8 and caps[u] > 2 * n


def _rows(path: Path) -> dict:
    return {r["utt_id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_syllable_metric_keeps_homophone_text_on_real_mandarin(tmp_path):
    """Real S0150 speech whose text has its characters swapped for homophones (what the
    recogniser writes for well-spoken audio of unfamiliar words): MER counts every swap, SER
    (pinyin with tone) does not, and --metric ser judges by it."""
    from pypinyin import Style, lazy_pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    from twister_plugin.data.kaldi import write_kaldi_dir
    from twister_plugin.testing.decode import base_checkpoint

    if base_checkpoint() is None:
        pytest.skip("needs tools/whisper/base.pt")
    src = shared_data() / "zh" / "aishell_sample_S0150" / "manifest.tsv"
    assert prepare_data.main(["--manifest", str(src), "--out", str(tmp_path / "all")]) == 0
    dd = read_kaldi_dir(tmp_path / "all")
    keep = dd.utt_ids[20:22]
    dd = dd.subset(keep)
    tone3 = dict(style=Style.TONE3, neutral_tone_with_five=True)
    first_of = {}
    for code in range(0x4E00, 0x9FA6):  # monophonic characters, first of each syllable
        if "," not in pinyin_dict.get(code, ","):
            first_of.setdefault(lazy_pinyin(chr(code), **tone3)[0], chr(code))
    swapped = keep[1]
    text = dd.text[swapped]
    dd.text[swapped] = "".join(first_of.get(p, c) if "," not in pinyin_dict.get(ord(c), ",") else c
                               for c, p in zip(text, lazy_pinyin(text, **tone3)))
    assert sum(a != b for a, b in zip(text, dd.text[swapped])) >= len(text) // 2
    write_kaldi_dir(dd, tmp_path / "synth")
    out = tmp_path / "out"
    synth = str(tmp_path / "synth")
    assert roundtrip_filter.main(["--synth", synth, "--model", str(base_checkpoint()),
                                  "--out", str(out), "--device", "cpu", "--max_err", "40",
                                  "--metric", "ser"]) == 0
    rows = _rows(out / "scores.jsonl")
    r = rows[swapped]
    assert r["cer"] >= 50 and r["ser"] <= r["cer"] - 30, r
    for row in rows.values():  # judged by SER
        assert row["kept"] == (row["ser"] <= 40 and "duration" not in row["reasons"]), row
    report = json.loads((out / "report.json").read_text())
    assert report["metric"] == "ser" and report["kept"] == sum(x["kept"] for x in rows.values())
    # judged again from those hypotheses (no decoding), by MER this time
    out2 = tmp_path / "out2"
    assert roundtrip_filter.main(["--synth", synth, "--hyps", str(out / "scores.jsonl"),
                                  "--out", str(out2), "--max_err", "40"]) == 0
    again = _rows(out2 / "scores.jsonl")
    assert {u: (r["hyp"], r["cer"], r["ser"]) for u, r in again.items()} == \
        {u: (r["hyp"], r["cer"], r["ser"]) for u, r in rows.items()}
    assert not again[swapped]["kept"] and "roundtrip_err" in again[swapped]["reasons"]
    bad = tmp_path / "bad.jsonl"
    first = (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()[0]
    bad.write_text(first + "\n{not json\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"bad.jsonl:2: not a roundtrip_filter scores line"):
        roundtrip_filter.main(["--synth", synth, "--hyps", str(bad), "--out", str(out2)])
    with pytest.raises(SystemExit):  # neither --model nor --hyps
        roundtrip_filter.main(["--synth", synth, "--out", str(out2)])
