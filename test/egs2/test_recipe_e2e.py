"""The default recipe end to end on CPU: stages 1-9, a second run that does no work, and a run
killed (SIGKILL) in stage 6 that, rerun, completes with the same outputs.

Runs in a copy of egs2/twister/asr1 (the repo's data/ and exp/ are left alone); Whisper base comes
from tools/whisper (tools/get_whisper.sh base). Takes ~10 minutes on 2 cores.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twister_plugin.testing.recipe import copy_recipe, recipe_env
from twister_plugin.testing.report import chromium, screenshot

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs2" / "twister" / "asr1"
WHISPER = ROOT / "tools" / "whisper"
pytestmark = pytest.mark.skipif(not (WHISPER / "base.pt").exists(), reason="run tools/get_whisper.sh base")


def _copy(tmp: Path) -> Path:
    return copy_recipe(tmp)


def _env() -> dict:
    return recipe_env()


def _run(cwd: Path, *args: str, timeout: int = 900) -> str:
    cmd = ["./run.sh", "--whisper_dir", str(WHISPER), *args]
    p = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout + p.stderr


def _outputs(d: Path) -> dict[str, object]:
    """Decoding outputs byte for byte; synthesis (a CPU-trained TTS) by which utterances exist."""
    files = ["data/text/corpus.txt", "exp/round1/pseudo/text", "exp/round1/eval/zeroshot/test/text"]
    out: dict[str, object] = {f: (d / f).read_bytes() for f in files}
    scores = (d / "exp/round1/synth/scores.jsonl").read_text(encoding="utf-8").splitlines()
    out["synth ids"] = sorted(json.loads(line)["utt_id"] for line in scores)
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    d = _copy(tmp_path_factory.mktemp("recipe"))
    _run(d, "--tts_pick_sentences", "3")  # stage 5 also picks the TTS epoch by round trip
    return d


def test_stages_1_to_9(finished: Path):
    for marker in ["data/.done", "exp/round1/pseudo/.done", "exp/round1/tts/.done", "exp/round1/synth/.done",
                   "exp/round1/asr_data/.done", "exp/round1/asr/.done", "exp/round1/eval/.done"]:
        assert (finished / marker).exists(), marker
    assert "WER" in (finished / "RESULTS.md").read_text()
    assert (finished / "exp/report/index.html").exists()
    if chromium():  # the report of the default recipe renders offline in a headless browser
        img = screenshot(finished / "exp/report/index.html", finished / "shot.png", finished / "profile")
        assert img[..., :3].std() > 0.1
    assert (finished / "exp/round1/eval/round1/test/score/summary.json").exists()
    pick = json.loads((finished / "exp/round1/tts/tts_pick.json").read_text())
    assert pick["sentences"] == 3 and pick["candidates"]
    assert (finished / "exp/round1/tts/valid.roundtrip.best.pth").resolve().name == pick["best"]
    kept = (finished / "exp/round1/pseudo/text").read_text().splitlines()
    assert len(kept) >= 12  # espeak English: Whisper base keeps most of 24


def test_second_run_does_no_work(finished: Path):
    t0 = time.time()
    out = _run(finished)
    assert time.time() - t0 < 60
    for what in ["data", "pseudo", "tts_dump", "tts", "synth", "asr_data", "asr", "eval"]:
        assert f"skip: {'data' if what == 'data' else 'exp/round1/' + what} is done" in out


def test_kill_in_stage_6_then_resume(finished: Path, tmp_path: Path):
    d = _copy(tmp_path)
    _run(d, "--stop_stage", "5")
    proc = subprocess.Popen(["./run.sh", "--whisper_dir", str(WHISPER), "--stage", "6", "--stop_stage", "6"],
                            cwd=d, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    raw = d / "exp/round1/synth/raw"
    deadline = time.time() + 300
    while time.time() < deadline and not any(raw.rglob("*.wav")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (d / "exp/round1/synth/.done").exists()
    _run(d)
    assert _outputs(d) == _outputs(finished)


def test_round_2_scores_reuse_round_1s_zero_shot_decodes(finished: Path, tmp_path: Path):
    """Stage 9 of a later round decodes only the new model (one process for all its sets) and
    copies round 1's zero-shot decodes of the same checkpoint."""
    d = tmp_path / "r"
    shutil.copytree(finished, d, symlinks=True)
    shutil.copytree(d / "exp/round1/asr", d / "exp/round2/asr", symlinks=True)  # stands in for round 2's
    out = _run(d, "--rounds", "2", "--stage", "9", "--stop_stage", "9")
    assert out.count("asr_inference config:") == 1 and "exp/round2/asr" in out
    z1, z2 = (d / f"exp/round{k}/eval/zeroshot/test" for k in (1, 2))
    assert (z2 / "text").read_bytes() == (z1 / "text").read_bytes()
    assert (z2 / "score" / "summary.json").exists() and (d / "exp/round2/eval/.done").exists()
    r2 = (d / "exp/round2/eval/round2/test/text").read_bytes()
    assert r2 == (d / "exp/round1/eval/round1/test/text").read_bytes()  # same weights, same decode
    assert "round2/eval/round2/test" in (d / "RESULTS.md").read_text(encoding="utf-8")
