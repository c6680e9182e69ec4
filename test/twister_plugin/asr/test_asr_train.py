"""asr_train through ESPnet's trainer on real S0150 audio: a 20-utterance overfit run whose loss
falls, and resume after an interrupted run (a test-size random Whisper, CPU)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from twister_plugin.testing.asr import SHARED, s0150_dir

ROOT = Path(__file__).resolve().parents[3]
CONF = ROOT / "egs2" / "twister" / "asr1" / "conf" / "asr" / "finetune_test.yaml"
pytestmark = pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data")


def train(data: Path, out: Path, *extra: str) -> str:
    cmd = [sys.executable, "-m", "twister_plugin.bin.asr_train", "--config", str(CONF), "--train_data", str(data),
           "--valid_data", str(data), "--output_dir", str(out), "--ngpu", "0", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stderr


def train_losses(log: str) -> list[float]:
    return [float(m) for m in re.findall(r"epoch results: \[train\].*? loss=([0-9.e+-]+)", log)]


def test_overfit_20_utterances(tmp_path):
    data = s0150_dir(tmp_path / "data", 20)
    log = train(data, tmp_path / "exp", "--max_epoch", "8", "--batch_size", "10",
                "--optim_conf", "lr=0.01", "--scheduler_conf", "warmup_steps=1")
    losses = train_losses(log)
    assert len(losses) == 8, log[-2000:]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.75 * losses[0], losses


def test_resume_after_interrupt(tmp_path):
    data = s0150_dir(tmp_path / "data", 4)
    out = tmp_path / "exp"
    train(data, out, "--max_epoch", "1")
    assert (out / "checkpoint.pth").exists()
    log = train(data, out, "--max_epoch", "2", "--resume", "true")
    assert f"resumed using {out / 'checkpoint.pth'}" in log, log[-2000:]
    assert "2epoch results" in log and "1epoch results" not in log  # epoch 1 was not trained again
    assert (out / "2epoch.pth").exists()
