from pathlib import Path

import kaldiio
import numpy as np
import pytest

from twister_plugin.data.kaldi import DataError
from twister_plugin.testing.tts import (
    S0150, read_manifest, tiny_whisper_checkpoint, rows_to_kaldi_dir)
from twister_plugin.tts.prepare import PrepareConfig, prepare
from twister_plugin.tts.speaker import WhisperSpeakerEncoder
from twister_plugin.tts.symbols import SymbolTable

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if not (DATA / S0150 / "manifest.tsv").exists():
        pytest.skip("shared data not available")
    tmp = tmp_path_factory.mktemp("prep")
    rows = read_manifest(DATA, S0150)[:8]
    rows[3] = {**rows[3], "text": "😀"}  # a label the frontend cannot read
    # two pseudo-speakers so sids and the voice bank have more than one entry
    split = rows[4]["utt_id"]
    rows_to_kaldi_dir(rows, tmp / "data", speaker_of=lambda r: "A" if r["utt_id"] < split else "B")
    enc = WhisperSpeakerEncoder.from_checkpoint(tiny_whisper_checkpoint(tmp / "w.pt"))
    cfg = PrepareConfig(valid_count=2, whisper=str(tmp / "w.pt"), durations="whisper")
    stats = prepare(tmp / "data", tmp / "dump", cfg, encoder=enc)
    return tmp, enc, stats, rows


def test_dump_contents(setup):
    tmp, _, stats, rows = setup
    dump = tmp / "dump"
    assert stats["utterances"] == 7 and stats["excluded"] == {"no_phones": 1}
    assert rows[3]["utt_id"] in (dump / "excluded").read_text()
    assert stats["frontend"]["unknown_chars"] == {"😀": 1}
    train = (dump / "text").read_text().splitlines()
    valid = (dump / "valid" / "text").read_text().splitlines()
    assert len(train) == 5 and len(valid) == 2
    table = SymbolTable.read(dump / "tokens.txt")
    for line in train + valid:
        utt, *phones = line.split()
        assert phones and not table.missing(phones)
    embs = dict(kaldiio.load_scp(str(dump / "spembs.scp")))
    assert len(embs) == 5
    for e in embs.values():
        assert e.shape == (64,) and abs(np.linalg.norm(e) - 1) < 1e-4
    sids = dict(line.split() for line in (dump / "utt2sid").read_text().splitlines())
    assert set(sids.values()) == {"0", "1"}
    shapes = dict(line.split() for line in (dump / "speech_shape").read_text().splitlines())
    assert all(16000 * 0.5 < int(v) < 16000 * 20 for v in shapes.values())
    assert (dump / ".done").exists() and (dump / "voices.npz").exists()
    for split in (dump, dump / "valid"):  # frames per phone, filling the fbank's frames
        durs = {u: list(map(int, d)) for u, *d in
                (line.split() for line in (split / "durations").read_text().splitlines())}
        phones = {u: p for u, *p in (line.split() for line in (split / "text").read_text().splitlines())}
        samples = dict(line.split() for line in (split / "speech_shape").read_text().splitlines())
        assert durs.keys() == phones.keys()
        for utt, d in durs.items():
            assert len(d) == len(phones[utt]) and min(d) >= 1
            assert sum(d) == int(samples[utt]) // 256 + 1
    assert stats["durations"]["source"] == "whisper"
    assert stats["durations"]["unaligned_utterances"] == 0  # every label was timed by Whisper


def test_dev_set_with_reference(setup):
    tmp, enc, _, rows = setup
    rows_to_kaldi_dir(read_manifest(DATA, S0150)[20:23], tmp / "dev", speaker_of=lambda r: "B")
    cfg = PrepareConfig(ref=str(tmp / "dump"), valid_count=0)
    prepare(tmp / "dev", tmp / "dev_dump", cfg, encoder=enc)
    sids = (tmp / "dev_dump" / "utt2sid").read_text().split()[1::2]
    assert sids == ["1", "1", "1"]  # speaker B keeps the training sid


def test_refused_inputs(setup):
    tmp, enc, _, _ = setup
    rows_to_kaldi_dir(read_manifest(DATA, S0150)[30:32], tmp / "new", speaker_of=lambda r: "C")
    with pytest.raises(DataError, match="not in the reference dump"):
        prepare(tmp / "new", tmp / "new_dump", PrepareConfig(ref=str(tmp / "dump")), encoder=enc)
    (tmp / "broken").mkdir()
    (tmp / "broken" / "wav.scp").write_text("u1 /nonexistent.wav\n")
    (tmp / "broken" / "utt2spk").write_text("u1 s\n")
    (tmp / "broken" / "text").write_text("u1 你好\nu2 多余\n")
    with pytest.raises(DataError, match="text"):
        prepare(tmp / "broken", tmp / "broken_dump", PrepareConfig(), encoder=enc)
    with pytest.raises(DataError, match="leaves no training data"):
        prepare(tmp / "data", tmp / "x", PrepareConfig(valid_count=50), encoder=enc)
