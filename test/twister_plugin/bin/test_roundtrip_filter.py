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
