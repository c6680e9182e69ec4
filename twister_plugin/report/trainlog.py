"""Train and validation loss per epoch from an ESPnet training log.

ESPnet's reporter logs one line per epoch (other keys and the exact prefix vary):

    [host] 2025-01-01 12:00:00,000 (trainer:394) INFO: 3epoch results: [train] iter_time=0.1,
    loss_att=253.4, acc=0.5, loss=253.368, ..., time=1 hour, 2 minutes and 3 seconds,
    [valid] loss_att=251.218, acc=0.6, loss=251.218

Only ``loss=`` (not ``loss_att=`` etc.) of the ``[train]`` and ``[valid]`` parts is read. A
resumed run logs an epoch again: the last line for an epoch wins. Batch-progress lines
(``3epoch:train:1-10batch: ...``) are ignored.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

EPOCH_RE = re.compile(r"(\d+)epoch results: (.*)")
PART_RE = re.compile(r"\[(\w+)\] ")
LOSS_RE = re.compile(r"(?:^|[\s,])loss=([^,\s]+)")
LOG_NAMES = ("log/train.log", "train.log")  # under the ESPnet output dir, first match wins


@dataclass
class LossCurve:
    """Loss per epoch; a part missing for an epoch is NaN (keeps the lists aligned)."""

    path: Path  # the log it came from
    epochs: list[int] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    valid: list[float] = field(default_factory=list)


def find_train_log(asr_dir: Path) -> Path | None:
    """The first of ``LOG_NAMES`` under ``asr_dir`` that holds an epoch result line."""
    for name in LOG_NAMES:
        path = asr_dir / name
        if path.is_file() and "epoch results:" in path.read_text(encoding="utf-8",
                                                                  errors="replace"):
            return path
    return None


def _loss(part: str) -> float:
    m = LOSS_RE.search(part)
    if m is None:
        return math.nan
    try:
        return float(m.group(1))
    except ValueError:
        return math.nan


def parse_epoch_line(line: str) -> tuple[int, dict[str, float]] | None:
    """(epoch, {part: loss}) of one ``Nepoch results:`` line; None for any other line."""
    m = EPOCH_RE.search(line)
    if m is None:
        return None
    body = m.group(2)
    marks = list(PART_RE.finditer(body))
    parts = {}
    for a, b in zip(marks, marks[1:] + [None]):
        parts[a.group(1)] = _loss(body[a.end(): b.start() if b else len(body)])
    return int(m.group(1)), parts


def parse_train_log(path: Path) -> LossCurve | None:
    """Loss curve of ``path``; None when it has no epoch result line (training just started).

    The log is read with undecodable bytes replaced: a log is never a reason to fail a report.
    """
    by_epoch: dict[int, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parsed = parse_epoch_line(line)
        if parsed is not None:
            by_epoch[parsed[0]] = parsed[1]
    if not by_epoch:
        return None
    epochs = sorted(by_epoch)
    return LossCurve(path=path, epochs=epochs,
                     train=[by_epoch[e].get("train", math.nan) for e in epochs],
                     valid=[by_epoch[e].get("valid", math.nan) for e in epochs])
