"""Speech regions of one recording -> segments for Whisper (each at most ``max_len`` s).

Steps, all in seconds of recording time:
  1. split: a region longer than ``max_len - 2 * pad`` is cut at its least speech-like frame
     (lowest VAD probability) in the second half of the allowed span, again until it fits;
  2. merge: neighbours closer than ``max_gap`` are joined while the padded result fits max_len;
  3. pad: each segment grows by ``pad`` on each side, but never past the recording or past the
     middle of the pause to its neighbour (segments never overlap);
  4. min_len: segments still shorter than ``min_len`` are dropped (counted in the report).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twister_plugin.segment.vad import FRAME_S

Span = tuple[float, float]  # (start s, end s)


class MergeError(ValueError):
    """Bad merge configuration."""


@dataclass(frozen=True)
class MergeConfig:
    max_len: float = 30.0  # longest segment (s); Whisper hears 30 s
    max_gap: float = 1.0  # join speech regions separated by pauses up to this (s); 0: cut at every pause
    pad: float = 0.2  # silence kept before and after each segment (s)
    min_len: float = 0.5  # shorter segments (after padding) are dropped (s)

    def __post_init__(self) -> None:
        if not 1.0 <= self.max_len <= 30.0:
            raise MergeError(f"merge.max_len must be in [1, 30] s (Whisper hears 30 s), got {self.max_len}")
        if self.max_gap < 0 or self.pad < 0 or self.min_len < 0:
            raise MergeError(f"merge.max_gap, pad and min_len must be >= 0, got {self.max_gap}, "
                             f"{self.pad}, {self.min_len}")
        if 2 * self.pad >= self.max_len / 2:
            raise MergeError(f"merge.pad {self.pad} s leaves too little of max_len {self.max_len} s")
        if self.min_len >= self.max_len:
            raise MergeError(f"merge.min_len {self.min_len} must be below max_len {self.max_len}")


@dataclass
class MergeStats:
    n_split: int = 0  # cuts made inside over-long regions
    n_short: int = 0  # segments dropped for min_len
    short_seconds: float = 0.0  # their total length


def split_long(region: Span, limit: float, probs: np.ndarray | None, stats: MergeStats) -> list[Span]:
    """Cut a region into pieces of at most ``limit`` s at low-probability frames."""
    out: list[Span] = []
    start, end = region
    while end - start > limit:
        lo, hi = start + limit / 2, start + limit
        cut = hi
        if probs is not None and len(probs):
            a = min(int(np.ceil(lo / FRAME_S)), len(probs) - 1)
            b = min(int(hi / FRAME_S), len(probs))
            if b > a:
                cut = (a + int(np.argmin(probs[a:b]))) * FRAME_S  # frame start, inside [lo, hi)
        cut = min(max(cut, lo), hi)
        out.append((start, cut))
        start = cut
        stats.n_split += 1
    out.append((start, end))
    return out


def merge_regions(regions: list[Span], cfg: MergeConfig, duration: float,
                  probs: np.ndarray | None = None) -> tuple[list[Span], MergeStats]:
    """Segments of one recording of ``duration`` s from its sorted speech regions."""
    stats = MergeStats()
    limit = cfg.max_len - 2 * cfg.pad - 0.002  # room for rounding to milliseconds
    pieces = [p for r in sorted(regions) for p in split_long(r, limit, probs, stats)]
    merged: list[Span] = []
    for s, e in pieces:
        if merged and s - merged[-1][1] <= cfg.max_gap and e - merged[-1][0] <= limit:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return _pad_and_filter(merged, cfg, duration, stats), stats


def _pad_and_filter(spans: list[Span], cfg: MergeConfig, duration: float,
                    stats: MergeStats) -> list[Span]:
    out: list[Span] = []
    for i, (s, e) in enumerate(spans):
        left = 0.0 if i == 0 else (spans[i - 1][1] + s) / 2
        right = duration if i == len(spans) - 1 else (e + spans[i + 1][0]) / 2
        s2, e2 = max(left, s - cfg.pad, 0.0), min(right, e + cfg.pad, duration)
        if e2 - s2 < cfg.min_len:
            stats.n_short += 1
            stats.short_seconds += e2 - s2
            continue
        out.append((round(s2, 3), round(e2, 3)))
    return out
