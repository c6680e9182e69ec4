"""Segmentation of a long recording built from 20 AISHELL S0150 utterances joined by silences."""
from __future__ import annotations

import gzip
import json
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from twister_plugin.bin.segment import main
from twister_plugin.data import DataError, load_utt, read_kaldi_dir
from twister_plugin.segment import SegmentError, load_config, segment_dir, segment_recording
from twister_plugin.segment.merge import MergeConfig
from twister_plugin.testing.segment import build_long_recording, write_long_dir

REPO = Path(__file__).resolve().parents[3]
MANIFEST = REPO / ".." / "shared" / "data" / "zh" / "aishell_sample_S0150" / "manifest.tsv"
CONF = REPO / "egs2" / "twister" / "asr1" / "conf" / "segment.yaml"


@pytest.fixture(scope="module")
def long_rec(tmp_path_factory):
    if not MANIFEST.is_file():
        pytest.skip(f"{MANIFEST} not found")
    return build_long_recording(MANIFEST, tmp_path_factory.mktemp("long") / "long1.wav",
                                n_utts=20, silence=(0.5, 1.5), seed=0)


def edge_errors(rec, segments):
    """|segment edge - true join| for every utterance: its first overlapping segment's start
    against the utterance start, its last overlapping segment's end against the utterance end."""
    errs = []
    for a, b in rec.spans:
        over = [(s, e) for s, e in segments if s < b and e > a]
        assert over, f"utterance at [{a:.2f}, {b:.2f}] s has no segment"
        errs += [abs(over[0][0] - a), abs(over[-1][1] - b)]
    return errs


def coverage(rec, segments):
    """Fraction of the utterances' time that lies inside some segment."""
    inside = sum(max(0.0, min(b, e) - max(a, s)) for a, b in rec.spans for s, e in segments)
    return inside / sum(b - a for a, b in rec.spans)


def test_cli_end_to_end(long_rec, tmp_path):
    data = write_long_dir(long_rec, tmp_path / "long")
    out = tmp_path / "long_seg"
    report = main(["--data", str(data), "--out", str(out), "--config", str(CONF)])
    dd = read_kaldi_dir(out, require_text=False)  # validates every file
    assert set(dd.wav_scp) == {"long1"} and dd.segments and dd.utt2lang and dd.utt2dur
    segs = sorted((s.start, s.end) for s in dd.segments.values())
    assert all(e - s <= 30.0 for s, e in segs)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(segs, segs[1:])), "segments overlap"
    for utt, seg in dd.segments.items():
        assert utt == f"long1-{round(seg.start * 1000):08d}-{round(seg.end * 1000):08d}"
        assert dd.utt2spk[utt] == "S0150" and dd.utt2lang[utt] == "zh"
    assert len(load_utt(dd, dd.utt_ids[0])) == pytest.approx(dd.utt2dur[dd.utt_ids[0]] * 16000, abs=2)
    assert coverage(long_rec, segs) > 0.75  # default pad 0.2 s; AISHELL files open with silence
    edge_errors(long_rec, segs)  # every utterance has a segment
    assert report["n_segments"] == len(segs) and report["max_segment_s"] <= 30.0
    assert report["hours_in"] == pytest.approx(long_rec.duration / 3600, abs=1e-4)
    assert json.loads((out / "report.json").read_text())["n_segments"] == len(segs)
    with gzip.open(out / "cuts.jsonl.gz", "rt") as f:
        cuts = [json.loads(line) for line in f]
    assert sorted(c["id"] for c in cuts) == dd.utt_ids


def test_silero_boundaries_cut_at_every_pause(long_rec):
    """max_gap 0: one segment per utterance; pad 0.5 s spans the ~0.5 s of silence AISHELL
    files hold at each end, so segment edges fall on the joins."""
    cfg = load_config(CONF)
    cfg = replace(cfg, merge=MergeConfig(max_gap=0.0, pad=0.5, min_len=0.5))
    res = segment_recording(str(long_rec.wav), cfg)
    segs = res["segments"]
    assert 20 <= len(segs) <= 24
    assert all(e - s <= 30.0 for s, e in segs)
    errs = edge_errors(long_rec, segs)
    assert statistics.median(errs) < 0.2, sorted(errs)
    assert coverage(long_rec, segs) > 0.9


def test_energy_boundaries_on_digital_silence(long_rec):
    cfg = replace(load_config(CONF, vad={"method": "energy"}),
                  merge=MergeConfig(max_gap=0.0, pad=0.0, min_len=0.2))
    segs = segment_recording(str(long_rec.wav), cfg)["segments"]
    assert len(segs) == 20
    assert statistics.median(edge_errors(long_rec, segs)) < 0.05
    assert coverage(long_rec, segs) > 0.95


def test_merge_joins_pauses_up_to_max_len(long_rec):
    cfg = replace(load_config(CONF, vad={"method": "energy"}),
                  merge=MergeConfig(max_gap=2.0, pad=0.2, max_len=12.0))
    segs = segment_recording(str(long_rec.wav), cfg)["segments"]
    assert len(segs) < 20 and all(e - s <= 12.0 for s, e in segs)
    assert coverage(long_rec, segs) > 0.95


def test_rerun_uses_the_cache(long_rec, tmp_path, monkeypatch):
    data = write_long_dir(long_rec, tmp_path / "long")
    cfg = load_config(CONF, vad={"method": "energy"})
    first = segment_dir(read_kaldi_dir(data, require_text=False), tmp_path / "out", cfg)
    assert (tmp_path / "out" / "work" / "long1.json").is_file()
    import twister_plugin.segment as seg

    monkeypatch.setattr(seg, "make_vad", lambda cfg: pytest.fail("VAD ran again"))
    again = segment_dir(read_kaldi_dir(data, require_text=False), tmp_path / "out", cfg)
    assert again == first


# ----------------------------------------------------------------------------------- refusals
def test_missing_audio_is_refused(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "wav.scp").write_text(f"r1 {tmp_path / 'nope.wav'}\n")
    (data / "utt2spk").write_text("r1 s1\n")
    with pytest.raises(SegmentError, match=r"recording 'r1'.*nope.wav: no such file"):
        main(["--data", str(data), "--out", str(tmp_path / "o"), "--vad", "energy"])


def test_missing_data_dir_is_refused(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "o")])


def test_segmented_input_is_refused(long_rec, tmp_path):
    data = write_long_dir(long_rec, tmp_path / "long")
    (data / "segments").write_text("u1 long1 0 5\n")
    (data / "utt2spk").write_text("u1 S0150\n")
    (data / "utt2lang").unlink()
    with pytest.raises(SegmentError, match="must be whole recordings"):
        segment_dir(read_kaldi_dir(data, require_text=False), tmp_path / "o", load_config(None))


@pytest.mark.parametrize("text, match", [
    ("merge: {max_len: 60}\n", r"max_len must be in \[1, 30\]"),
    ("merge: {pad: -1}\n", "must be >= 0"),
    ("vad: {threshold: 2}\n", r"threshold must be in \(0, 1\)"),
    ("vad: {method: webrtc}\n", "vad.method must be one of"),
    ("vad: {frames: 3}\n", r"unknown option\(s\) \['frames'\]"),
    ("colour: red\n", r"unknown option\(s\) \['colour'\]"),
    ("- a\n- b\n", "want a mapping at the top level"),
    ("vad: [1, 2]\n", "want a mapping, got list"),
    ("merge: {max_len: 10, min_len: 12}\n", "min_len 12 must be below max_len"),
])
def test_bad_config_is_refused(tmp_path, text, match):
    conf = tmp_path / "segment.yaml"
    conf.write_text(text)
    with pytest.raises(SegmentError, match=match) as e:
        load_config(conf)
    assert str(conf) in str(e.value)


def test_unreadable_config_is_refused(tmp_path):
    with pytest.raises(SegmentError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")
