"""Training under a wall-time budget that adds up over resumed runs.

``run_with_budget`` runs a task's ``main(cmd=...)`` in a child process and stops it (SIGTERM)
once the time spent in this and earlier runs (kept in ``<output_dir>/train_time.json``) reaches
the budget. ESPnet saves a checkpoint and the best-model links at every epoch end, so a stop loses
at most the epoch in progress; a rerun continues (``--resume``) with what is left of the budget.
"""
from __future__ import annotations

import importlib
import json
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path

from twister_plugin.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)
STATE = "train_time.json"
POLL_S = 5.0


def _child(module: str, name: str, cmd: list[str]) -> None:
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    getattr(importlib.import_module(module), name).main(cmd=cmd)


def _exit_with_parent() -> None:
    """In the trainer process: stop (SIGTERM, as the budget does) when the parent that keeps the
    budget dies, e.g. killed by the user or a scheduler, so no orphan trains on unwatched."""
    parent = mp.parent_process()
    if parent is None:
        return
    parent.join()  # returns when the parent process has ended
    logger.warning("the budget process ended: stopping training")
    os.kill(os.getpid(), signal.SIGTERM)


def spent_seconds(output_dir: Path) -> float:
    """Training seconds already used in ``output_dir`` (0 when none recorded)."""
    f = output_dir / STATE
    if not f.exists():
        return 0.0
    try:
        return float(json.loads(f.read_text())["seconds"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{f}: unreadable training-time record ({e}); delete it to start over") from None


def _record(output_dir: Path, seconds: float, budget: float, stopped: bool) -> None:
    atomic_write_text(output_dir / STATE, json.dumps(
        dict(seconds=round(seconds, 1), budget_seconds=budget, stopped_by_budget=stopped)) + "\n")


def run_with_budget(task: type, cmd: list[str], output_dir: Path, budget_s: float) -> int:
    """Run ``task.main(cmd=cmd)`` until it ends or the cumulative budget is spent; exit code."""
    output_dir.mkdir(parents=True, exist_ok=True)
    before = spent_seconds(output_dir)
    if before >= budget_s:
        logger.info("training budget %.1f min already spent (%.1f min): nothing to do",
                    budget_s / 60, before / 60)
        return 0
    proc = mp.get_context("spawn").Process(target=_child, args=(task.__module__, task.__name__, cmd))
    start = time.monotonic()
    proc.start()
    stopped = False
    while proc.is_alive():
        proc.join(POLL_S)
        used = before + time.monotonic() - start
        if proc.is_alive() and used >= budget_s:
            logger.info("training budget %.1f min reached: stopping (checkpoints up to the last "
                        "finished epoch are kept)", budget_s / 60)
            proc.terminate()
            proc.join(60)
            if proc.is_alive():
                proc.kill()
                proc.join()
            stopped = True
        _record(output_dir, used, budget_s, stopped)
    if stopped:
        return 0
    if proc.exitcode != 0:
        logger.error("training exited with code %s", proc.exitcode)
        return 1
    return 0
