"""Stages 1-3 of the default recipe with TWISTER_CMD=slurm.pl on the local Slurm cluster
(tools/slurm/start.sh): pseudo-labelling runs as one Slurm array job JOB=1:4, and a stage whose
tasks fail stops run.sh with the failed task logs named, and a rerun redoes only the failed
task. Skips when no cluster answers.

Runs in a copy of egs2/twister/asr1. Jobs inherit the caller's environment (sbatch's default
--export=ALL), which is how the venv reaches them: in a copy, path.sh finds no tools/venv.
Whisper tiny.en (tools/get_whisper.sh tiny.en) and blocks of 6 utterances, so that each of the 4
tasks decodes 6 of the 24 default utterances. Takes ~70 s on 2 busy cores.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twister_plugin.testing.recipe import copy_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs2" / "twister" / "asr1"
WHISPER = ROOT / "tools" / "whisper"
NJ = 4
MODEL = "tiny.en"


def cluster_up() -> bool:
    if shutil.which("sinfo") is None or shutil.which("scontrol") is None:
        return False
    try:   # scontrol ping fails at once when no controller runs; sinfo would retry for 9 s
        if subprocess.run(["scontrol", "ping"], capture_output=True, timeout=10).returncode:
            return False
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and re.search(r"^(idle|mix|alloc)", r.stdout, re.M) is not None


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(not (WHISPER / f"{MODEL}.pt").exists(),
                       reason=f"run tools/get_whisper.sh {MODEL}"),
    pytest.mark.skipif(not cluster_up(), reason="no Slurm cluster (run tools/slurm/start.sh)"),
]


def _copy(tmp: Path) -> Path:
    return copy_recipe(tmp)


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parent
    env = dict(os.environ, VIRTUAL_ENV=str(venv.parent), PATH=f"{venv}:{os.environ['PATH']}",
               OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), TWISTER_CMD="slurm.pl")
    cmd = ["./run.sh", "--stop_stage", "3", "--nj", str(NJ), "--whisper_dir", str(WHISPER),
           "--whisper", MODEL, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _pseudo_conf(recipe: Path, tmp: Path, old: str, new: str) -> Path:
    """The recipe's pseudo-labelling config with one line changed."""
    conf = (recipe / "conf/pseudo_label.yaml").read_text()
    assert f"\n{old}" in conf
    path = tmp / "pseudo_label.yaml"
    path.write_text(conf.replace(f"\n{old}", f"\n{new}"))
    return path


def _task_logs(recipe: Path) -> list[Path]:
    return sorted((recipe / "exp/round1/pseudo/log").glob("pseudo.*.log"))


def test_array_job_failed_task_then_resume(tmp_path: Path):
    """Task 3's block holds a truncated WAV: only its log is named and nothing is merged; with
    the file restored, the rerun redoes task 3 only and merges all 4 shards."""
    recipe = _copy(tmp_path)
    r = _run(recipe, "--stop_stage", "1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    scp = (recipe / "data/unlabeled/wav.scp").read_text().splitlines()
    assert len(scp) == NJ * 6
    wav = Path(scp[14].split(maxsplit=1)[1])                       # in block 3: utts 13-18
    good = wav.read_bytes()
    wav.write_bytes(good[:100])
    conf = _pseudo_conf(recipe, tmp_path, "block_size: 256", "block_size: 6  ")
    conf.write_text(conf.read_text().replace("\non_bad_audio: skip ", "\non_bad_audio: error"))
    r = _run(recipe, "--pseudo_conf", str(conf))
    pseudo = recipe / "exp/round1/pseudo"
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "log is in exp/round1/pseudo/log/pseudo.3.log" in out and "1 / 4 failed" in out, out[-3000:]
    assert out.count("log is in") == 1
    assert "truncated WAV" in (pseudo / "log/pseudo.3.log").read_text()
    assert sorted(p.name for p in (pseudo / "shards").glob("*.done")) == ["1.done", "2.done", "4.done"]
    assert not (pseudo / ".done").exists() and not (pseudo / "text").exists()

    wav.write_bytes(good)
    r = _run(recipe, "--pseudo_conf", str(conf))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    logs = _task_logs(recipe)
    assert [p.name for p in logs] == [f"pseudo.{k}.log" for k in range(1, NJ + 1)]
    for k, log in enumerate(logs, 1):
        text = log.read_text()
        assert f"--shard {k}/{NJ}" in text.splitlines()[0]          # the header names its task
        assert "# Ended (code 0)" in text and (pseudo / "shards" / f"{k}.done").exists()
        assert ("already done" in text) == (k != 3)                    # finished shards kept
        assert len((pseudo / "shards" / f"{k}.jsonl").read_text().splitlines()) == 6
    # Submitted through sbatch: slurm.pl's batch script, with the array and the CI partition.
    script = (pseudo / "log/q/pseudo.sh").read_text()
    assert f"--array=1-{NJ}" in script and "--partition=debug" in script
    for f in [".done", "text", "report.txt", "report.json", "scores.jsonl", "data/wav.scp", "data/text"]:
        assert (pseudo / f).exists(), f
    assert len((pseudo / "scores.jsonl").read_text().splitlines()) == len(scp)
    kept = (pseudo / "text").read_text().splitlines()
    assert 12 <= len(kept) <= len(scp) and kept == (pseudo / "data/text").read_text().splitlines()


def test_failing_tasks_stop_the_stage(tmp_path: Path):
    recipe = _copy(tmp_path)
    bad = _pseudo_conf(recipe, tmp_path, "on_bad_audio: skip", "on_bad_audio: maybe")
    r = _run(recipe, "--pseudo_conf", str(bad))
    assert r.returncode != 0
    out = r.stdout + r.stderr
    for k in range(1, NJ + 1):
        assert f"log is in exp/round1/pseudo/log/pseudo.{k}.log" in out, out[-3000:]
    assert f"{NJ} / {NJ} failed" in out
    for log in _task_logs(recipe):
        text = log.read_text()
        assert "on_bad_audio must be skip or error, got 'maybe'" in text and "# Ended (code 1)" in text
    assert (recipe / "data/.done").exists()                       # stage 1 finished ...
    assert not (recipe / "exp/round1/pseudo/.done").exists()      # ... stage 3 did not
    assert not (recipe / "exp/round1/pseudo/text").exists()       # and nothing was merged
