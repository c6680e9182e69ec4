"""kill -9 (a real SIGKILL on a subprocess) during pseudo-labelling, synthesis and training;
the rerun resumes, its outputs equal an uninterrupted run's, and no partial file is taken as
finished."""
from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
import torch

from twister_plugin.data import read_manifest, write_kaldi_dir
from twister_plugin.testing.data import shared_data
from twister_plugin.testing.decode import ending_model, save_model, tones, write_wave_dir
from twister_plugin.testing.reliability import REPO, pseudo_conf, run_cli, start_cli, wait_for

PSEUDO_OUTPUTS = ["text", "scores.jsonl", "report.json", "report.txt", "data/wav.scp",
                  "data/text", "data/utt2spk", "data/spk2utt", "data/utt2lang", "data/utt2dur"]
ASR_CONF = REPO / "egs2" / "twister" / "asr1" / "conf" / "asr" / "finetune_test.yaml"


def kill9(proc) -> None:
    assert proc.poll() is None, "the process had already ended; nothing was interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


# ----------------------------------------------------------------------------- pseudo-label
@pytest.fixture(scope="module")
def pl(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash_pl")
    waves = {f"utt{i:02d}": w for i, w in enumerate(tones(30, seed=7))}
    data = write_wave_dir(root / "data", waves)
    model = save_model(ending_model(0), root / "tiny.pt")
    conf = pseudo_conf(root / "conf.yaml", block_size=2, max_new_tokens=16)
    args = ["--data", data, "--model", model, "--config", conf, "--device", "cpu"]
    ref = run_cli("twister_plugin.bin.pseudo_label", *args, "--out", root / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    return {"root": root, "args": args, "ref": root / "ref"}


def test_pseudo_label_killed_then_resumed_equals_one_shot(pl):
    out = pl["root"] / "killed"
    proc = start_cli("twister_plugin.bin.pseudo_label", *pl["args"], "--out", out,
                     log=pl["root"] / "killed.log")
    partial = out / "shards" / "1.partial"
    wait_for(proc, partial, "0*.jsonl")
    kill9(proc)
    blocks = sorted(partial.glob("0*.jsonl"))
    assert 1 <= len(blocks) < 15
    assert not (out / "shards/1.done").exists() and not (out / "shards/1.jsonl").exists()
    assert not (out / "report.json").exists() and not (out / "text").exists()
    for block in blocks:  # every block file that has its final name is whole
        recs = [json.loads(line) for line in block.read_text().splitlines()]
        assert len(recs) == 2 and all("text" in r for r in recs), block
    rerun = run_cli("twister_plugin.bin.pseudo_label", *pl["args"], "--out", out)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    n_done = 2 * len(blocks)
    assert (f"shard 1/1: resuming; {n_done} utterances of {len(blocks)} blocks are in "
            f"{partial}") in rerun.stderr
    assert not partial.exists()  # with any temp file the kill left there
    for name in PSEUDO_OUTPUTS:
        assert (out / name).read_bytes() == (pl["ref"] / name).read_bytes(), name


# ----------------------------------------------------------------------------- training
def s0150_dir(out: Path, n: int) -> Path:
    dd = read_manifest(shared_data() / "zh" / "aishell_sample_S0150" / "manifest.tsv")
    write_kaldi_dir(dd.subset(dd.utt_ids[120:120 + n]), out)
    return out


def train_args(data: Path, out: Path) -> list:
    return ["--config", ASR_CONF, "--train_data", data, "--valid_data", data, "--output_dir", out,
            "--ngpu", "0", "--max_epoch", "3", "--seed", "0"]


def epochs_trained(log: str) -> list[int]:
    return [int(m) for m in re.findall(r"(\d+)epoch results: \[train\]", log)]


@pytest.mark.skipif(shared_data() is None, reason="needs shared/data")
def test_training_killed_then_resumed_from_checkpoint(tmp_path):
    data = s0150_dir(tmp_path / "data", 4)
    out = tmp_path / "exp"
    proc = start_cli("twister_plugin.bin.asr_train", *train_args(data, out),
                     log=tmp_path / "killed.log")
    wait_for(proc, out, "latest.pth")  # epoch 1 saved (checkpoint.pth, then 1epoch.pth)
    kill9(proc)
    assert not (out / "3epoch.pth").exists()
    resumed = run_cli("twister_plugin.bin.asr_train", *train_args(data, out), "--resume", "true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"The training was resumed using {out / 'checkpoint.pth'}" in resumed.stderr
    done = epochs_trained(resumed.stderr)
    assert done[0] >= 2 and done[-1] == 3, done  # not started over at epoch 1
    assert torch.load(out / "checkpoint.pth", weights_only=False)["reporter"]["epoch"] == 3
    whole = run_cli("twister_plugin.bin.asr_train", *train_args(data, tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert epochs_trained(whole.stderr) == [1, 2, 3]
    a = torch.load(out / "3epoch.pth", weights_only=True)
    b = torch.load(tmp_path / "whole" / "3epoch.pth", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ----------------------------------------------------------------------------- synthesis
SYNTH_TABLES = ["wav.scp", "text", "text.spoken", "utt2spk", "utt2lang", "spk2utt"]


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    """A tiny VITS trained a few steps on 16 S0150 utterances (as test_tts_e2e.py does), a
    40-line corpus of S0150 transcripts, and one uninterrupted synthesis of it."""
    if shared_data() is None:
        pytest.skip("needs shared/data")
    from twister_plugin.bin import tts_prepare, tts_train
    from twister_plugin.testing.tts import (
        S0150, read_manifest as rows_of, rows_to_kaldi_dir, tiny_whisper_checkpoint,
    )

    root = tmp_path_factory.mktemp("crash_tts")
    rows = rows_of(shared_data(), S0150)
    rows_to_kaldi_dir(rows[:16], root / "data")
    whisper = tiny_whisper_checkpoint(root / "tiny_whisper.pt")
    assert tts_prepare.main(["--data", str(root / "data"), "--out", str(root / "dump"),
                             "--whisper", str(whisper), "--valid_count", "4"]) == 0
    conf = REPO / "egs2" / "twister" / "asr1" / "conf" / "tts" / "tiny.yaml"
    assert tts_train.main(["--config", str(conf), "--dump", str(root / "dump"),
                           "--output_dir", str(root / "exp"), "--device", "cpu"]) == 0
    corpus = root / "corpus.txt"
    corpus.write_text("".join(r["text"] + "\n" for r in rows[100:140]), encoding="utf-8")
    args = ["--model_dir", root / "exp", "--text", corpus, "--speakers", "sample",
            "--device", "cpu", "--batch_size", "2"]
    ref = run_cli("twister_plugin.bin.synthesize", *args, "--out", root / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    return {"root": root, "args": args, "ref": root / "ref"}


@pytest.fixture(scope="module")
def synth_killed(tts):
    out = tts["root"] / "killed"
    proc = start_cli("twister_plugin.bin.synthesize", *tts["args"], "--out", out,
                     log=tts["root"] / "killed.log")
    wait_for(proc, out / "wav", "*.wav")
    kill9(proc)
    from twister_plugin.tts.synth_io import wav_ok

    wavs = sorted(out.glob("wav/*.wav"))
    assert 1 <= len(wavs) < 40 and all(wav_ok(w) for w in wavs)  # final names: whole files
    assert not (out / ".done").exists() and not (out / "wav.scp").exists()
    assert not (out / "shards" / "1of1" / ".done").exists()
    before = {w.name: w.read_bytes() for w in wavs}
    rerun = run_cli("twister_plugin.bin.synthesize", *tts["args"], "--out", out)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    return {"out": out, "before": before, "log": rerun.stderr}


def test_synthesis_killed_then_resumed(tts, synth_killed):
    out, before = synth_killed["out"], synth_killed["before"]
    stats = json.loads((out / "shards" / "1of1" / "stats.json").read_text())
    # whole finished batches are kept; a batch cut by the kill is synthesised again with its own
    # seed, which rewrites its finished wavs byte for byte
    assert stats["resumed"] <= len(before) and stats["utterances"] == 40
    for name, data in before.items():
        assert (out / "wav" / name).read_bytes() == data
    assert (out / ".done").exists()
    assert sorted(p.name for p in (out / "wav").glob("*.wav")) == \
        sorted(p.name for p in (tts["ref"] / "wav").iterdir())
    # a wav being written at the kill stays as a hidden temp file (not cleaned up by the rerun,
    # never listed: the rerun wrote that sentence again under its final name)
    litter = [p.name for p in (out / "wav").iterdir() if not p.name.endswith(".wav")]
    assert all(n.startswith(".") and n.endswith(".tmp") for n in litter), litter
    assert not any(n in (out / "wav.scp").read_text() for n in litter)
    for name in SYNTH_TABLES:  # same sentences, voices, speeds and spoken forms
        mine = (out / name).read_text(encoding="utf-8").replace(str(out), str(tts["ref"]))
        assert mine == (tts["ref"] / name).read_text(encoding="utf-8"), name


def test_resumed_synthesis_audio_equals_uninterrupted_run(tts, synth_killed):
    out = synth_killed["out"]
    assert (out / "utt2dur").read_bytes() == (tts["ref"] / "utt2dur").read_bytes()
    for wav in sorted((tts["ref"] / "wav").iterdir()):
        assert (out / "wav" / wav.name).read_bytes() == wav.read_bytes(), wav.name
