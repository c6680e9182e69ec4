"""Test helpers for the reliability tests: data dirs mixing good and broken audio, CLI runs in
subprocesses (so that they can be killed with SIGKILL), and waiting for a file to appear.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from twister_plugin.testing.data import shared_data

REPO = Path(__file__).resolve().parents[2]
S0150_GOOD = ("BAC009S0150W0002", "BAC009S0150W0003", "BAC009S0150W0004")

# pseudo_label config for the tiny random model: loose filters so that bad audio is the only
# reason a good file can be rejected, except max_duration (30 s, the default) for the long one
TINY_PSEUDO_CONF = """\
language: zh
batch_size: 2
block_size: {block_size}
on_bad_audio: {on_bad_audio}
decode:
  max_new_tokens: {max_new_tokens}
filters:
  logprob_threshold: -100
  min_language_prob: 0.0
  compression_ratio_threshold: 1000
  ngram_max_count: 1000
  suffix_min_units: 100000
  reject_unfinished: false
  no_speech_hard_threshold: 1.1
  no_speech_threshold: 1.1
  allowed_languages: [zh, en, my]
  zh_min_rate: 0.0
  zh_max_rate: 100000
"""


def pseudo_conf(path: Path, *, on_bad_audio: str = "skip", block_size: int = 64,
                max_new_tokens: int = 8) -> Path:
    path.write_text(TINY_PSEUDO_CONF.format(on_bad_audio=on_bad_audio, block_size=block_size,
                                            max_new_tokens=max_new_tokens), encoding="utf-8")
    return path


def s0150_audio(utt: str) -> Path:
    root = shared_data()
    if root is None:
        raise FileNotFoundError("shared/data is not beside the repository")
    return root / "zh" / "aishell_sample_S0150" / "audio" / f"{utt}.flac"


def write_scp_dir(out: Path, entries: dict[str, Path | str]) -> Path:
    """A Kaldi dir (wav.scp + utt2spk, one speaker per id) of the given audio paths."""
    out.mkdir(parents=True, exist_ok=True)
    ids = sorted(entries)
    (out / "wav.scp").write_text("".join(f"{u} {entries[u]}\n" for u in ids), encoding="utf-8")
    (out / "utt2spk").write_text("".join(f"{u} {u}\n" for u in ids), encoding="utf-8")
    return out


def cli_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: float = 300,
            ) -> subprocess.CompletedProcess:
    """``python -m <module> args`` to the end; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd or REPO,
                          env=cli_env(), capture_output=True, text=True, timeout=timeout)


def start_cli(module: str, *args: str, log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """``python -m <module> args`` in the background, stdout + stderr to ``log``."""
    f = open(log, "w")  # noqa: SIM115 (the child owns it)
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=cwd or REPO,
                            env=cli_env(), stdout=f, stderr=subprocess.STDOUT)


def wait_for(proc: subprocess.Popen, pattern_dir: Path, pattern: str, timeout: float = 240,
             ) -> list[Path]:
    """Poll until ``pattern_dir.glob(pattern)`` finds something while ``proc`` still runs."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = sorted(pattern_dir.glob(pattern)) if pattern_dir.exists() else []
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before {pattern} appeared")
        time.sleep(0.01)
    raise AssertionError(f"{pattern} did not appear in {pattern_dir} within {timeout} s")

