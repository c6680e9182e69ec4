"""Tiny VITS trained a few steps on real S0150 audio, then synthesis (CPU, ~1-2 min)."""
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from twister_plugin.bin import synthesize as synth_bin
from twister_plugin.bin import tts_prepare, tts_train
from twister_plugin.testing.tts import (
    S0150, SYNTH_IMPORTS_PROBE, assert_direct_load_matches_task, code_switched, read_manifest,
    rows_to_kaldi_dir, tiny_whisper_checkpoint)

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / ".." / "shared" / "data"
TINY = REPO / "egs2" / "twister" / "asr1" / "conf" / "tts" / "tiny.yaml"
SENTENCES = ["苹果表配apple pay", "2024年GDP增长了3.5%", "Hello world, this is Twister.",
             "😀"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if not (DATA / S0150 / "manifest.tsv").exists():
        pytest.skip("shared data not available")
    tmp = tmp_path_factory.mktemp("tts")
    rows = read_manifest(DATA, S0150)
    cs = code_switched(rows)[:6]
    plain = [r for r in rows if r not in cs][:14]
    rows_to_kaldi_dir(plain + cs, tmp / "data")  # manifest transcripts stand in for pseudo-labels
    whisper = tiny_whisper_checkpoint(tmp / "tiny_whisper.pt")
    assert tts_prepare.main(["--data", str(tmp / "data"), "--out", str(tmp / "dump"),
                             "--whisper", str(whisper), "--valid_count", "4"]) == 0
    assert tts_train.main(["--config", str(TINY), "--dump", str(tmp / "dump"),
                           "--output_dir", str(tmp / "exp"), "--device", "cpu"]) == 0
    return tmp


def test_training_wrote_checkpoints_and_artifacts(trained):
    exp = trained / "exp"
    for name in ("config.yaml", "checkpoint.pth", "latest.pth", "train.total_count.best.pth",
                 "tokens.txt", "frontend.yaml", "voices.npz"):
        assert (exp / name).exists(), name
    stats = json.loads((trained / "dump" / "stats.json").read_text())
    assert stats["utterances"] == 20 and stats["excluded"] == {}


def _check_outputs(out: Path, n: int) -> dict[str, float]:
    durs = dict(line.split() for line in (out / "utt2dur").read_text().splitlines())
    assert len(durs) == n
    for utt, path in (line.split(maxsplit=1) for line in (out / "wav.scp").read_text()
                      .splitlines()):
        audio, sr = sf.read(path)
        assert sr == 16000 and np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
        assert 0.05 < len(audio) / sr < 30 and abs(len(audio) / sr - float(durs[utt])) < 1e-2
    with gzip.open(out / "supervisions.jsonl.gz", "rt") as f:
        sups = [json.loads(x) for x in f]
    assert sorted(s["id"] for s in sups) == sorted(durs)
    assert (out / ".done").exists()
    return {u: float(d) for u, d in durs.items()}


def test_synthesis_sampled_voices_sharded_and_resumable(trained, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp_path / "synth"
    common = ["--model_dir", str(trained / "exp"), "--text", str(corpus), "--out", str(out),
              "--speakers", "sample", "--speed-range", "0.9,1.1", "--device", "cpu"]
    assert synth_bin.main(common + ["--shard", "1/2"]) == 0
    assert not (out / ".done").exists()  # shard 2 still missing
    assert synth_bin.main(common + ["--shard", "2/2"]) == 0
    durs = _check_outputs(out, 3)
    langs = dict(line.split() for line in (out / "utt2lang").read_text().splitlines())
    assert sorted(langs.values()) == ["en", "zh", "zh"]
    assert "line00000004 no_phones" in (out / "shards" / "2of2" / "skipped").read_text()
    spoken = (out / "text.spoken").read_text(encoding="utf-8")
    assert "二零二四年GDP增长了百分之三点五" in spoken
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "wav").glob("*.wav")}
    assert synth_bin.main(common + ["--shard", "1/2"]) == 0  # resume: nothing re-synthesised
    assert {p: p.stat().st_mtime_ns for p in (out / "wav").glob("*.wav")} == mtimes
    assert json.loads((out / "shards" / "1of2" / "stats.json").read_text())["resumed"] == 2
    assert _check_outputs(out, 3) == durs


def test_writer_threads_and_fsync_change_nothing_but_speed(trained, tmp_path, monkeypatch):
    """Wavs written by threads while the next batches are spoken, flushed once per shard = wavs
    written in turn and fsync'ed one by one, byte for byte."""
    import os

    synced: dict[str, list[str]] = {"fsync": [], "sync": []}
    real_fsync, real_sync = os.fsync, os.sync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced["fsync"].append(os.readlink(f"/proc/self/fd/{fd}")),
                                                 real_fsync(fd))[1])
    monkeypatch.setattr(os, "sync", lambda: (synced["sync"].append("sync"), real_sync())[1])
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES + ["设定二十九度", "今天天气很好"]) + "\n", encoding="utf-8")
    outs, counts = {}, {}
    for writers, fsync in ((0, "wav"), (3, "shard")):
        synced["fsync"].clear(), synced["sync"].clear()
        outs[writers] = out = tmp_path / f"w{writers}"
        assert synth_bin.main(["--model_dir", str(trained / "exp"), "--text", str(corpus), "--out", str(out),
                               "--batch_size", "1", "--writers", str(writers), "--fsync", fsync,
                               "--device", "cpu"]) == 0
        counts[fsync] = (sum(Path(f).parent.name == "wav" for f in synced["fsync"]), len(synced["sync"]))
    assert counts == {"wav": (5, 0), "shard": (0, 1)}  # 5 wavs fsync'ed one by one, or one flush
    durs = _check_outputs(outs[0], 5)
    assert _check_outputs(outs[3], 5) == durs
    for name in ("text", "utt2spk", "utt2lang", "shards/1of1/utt2frames", "shards/1of1/skipped"):
        assert (outs[0] / name).read_text() == (outs[3] / name).read_text(), name
    for wav in (outs[0] / "wav").glob("*.wav"):
        assert wav.read_bytes() == (outs[3] / "wav" / wav.name).read_bytes(), wav.name


def test_a_failed_wav_write_stops_the_shard_undone(trained, tmp_path):
    from twister_plugin.utils.fileio import OutputError

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("设定二十九度\n今天天气很好\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "wav").write_text("a file where the wav folder should be")
    with pytest.raises(OutputError, match="wav"):
        synth_bin.main(["--model_dir", str(trained / "exp"), "--text", str(corpus), "--out", str(out),
                        "--batch_size", "1", "--writers", "2", "--device", "cpu"])
    assert not (out / "shards" / "1of1" / ".done").exists() and not (out / ".done").exists()


def test_synthesis_seen_voices(trained, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("设定二十九度\n", encoding="utf-8")
    out = tmp_path / "seen"
    assert synth_bin.main(["--model_dir", str(trained / "exp"), "--text", str(corpus),
                           "--out", str(out), "--speakers", "seen", "--device", "cpu"]) == 0
    _check_outputs(out, 1)
    assert (out / "utt2spk").read_text().split() == ["synth-S0150-00000001", "synth-S0150"]


def test_training_resumes_from_checkpoint(trained):
    exp = trained / "exp"
    before = (exp / "2epoch.pth").stat().st_mtime_ns
    assert not (exp / "3epoch.pth").exists()
    assert tts_train.main(["--config", str(TINY), "--dump", str(trained / "dump"),
                           "--output_dir", str(exp), "--device", "cpu", "--max_epoch", "3"]) == 0
    assert (exp / "3epoch.pth").exists()
    assert (exp / "2epoch.pth").stat().st_mtime_ns == before  # epochs 1-2 were not redone


def test_synthesis_builds_the_model_espnet_builds_without_its_task(trained):
    assert_direct_load_matches_task(trained / "exp", "train.total_count.best.pth")
    p = subprocess.run([sys.executable, "-c", SYNTH_IMPORTS_PROBE, str(trained / "exp")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split("\n")[-2] == "[]"  # neither ESPnet's task module nor transformers imported
