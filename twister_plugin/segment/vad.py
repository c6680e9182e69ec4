"""Voice activity detection over a stream of audio chunks: frame speech probabilities, then regions.

Data contract: audio arrives as an iterable of ``(S,)`` float32 16-kHz mono chunks of any size
(S samples); a :class:`VadStrategy` turns it into ``(F,)`` float32 per-frame speech probabilities
in [0, 1], one frame = ``FRAME`` samples (32 ms). :func:`speech_regions` turns probabilities into
speech regions ``[(start s, end s), ...]`` with hysteresis and minimum speech / silence lengths.
Only the current chunk (and < one frame carried over) is held in memory; probabilities take
4 bytes a frame (450 kB for an hour).

Strategies: ``silero`` (Silero VAD, a small LSTM shipped inside the ``silero-vad`` wheel as a
TorchScript file; no download) and ``energy`` (log-energy above an adaptive noise floor; no model,
for clean audio or when silero-vad is not installed).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME = 512  # samples per VAD frame at 16 kHz (32 ms); what Silero VAD expects
FRAME_S = FRAME / SAMPLE_RATE


class VadError(ValueError):
    """Bad VAD configuration, or a VAD that cannot run (e.g. silero-vad not installed)."""


@dataclass(frozen=True)
class VadConfig:
    method: str = "silero"  # silero (neural, packaged model) or energy (no model)
    threshold: float = 0.5  # a frame with probability >= this starts / continues speech
    neg_threshold: float | None = None  # speech ends below this (None: threshold - 0.15)
    min_speech_s: float = 0.25  # shorter speech regions are noise, dropped (counted in the report)
    min_silence_s: float = 0.1  # a pause must last this long to end a region
    chunk_s: float = 60.0  # seconds of audio read at a time (memory bound per recording)
    energy_margin_db: float = 15.0  # energy: speech is this far above the noise floor (dB)

    def __post_init__(self) -> None:
        if self.method not in STRATEGIES:
            raise VadError(f"vad.method must be one of {sorted(STRATEGIES)}, got {self.method!r}")
        if not 0.0 < self.threshold < 1.0:
            raise VadError(f"vad.threshold must be in (0, 1), got {self.threshold}")
        if self.neg_threshold is not None and not 0.0 <= self.neg_threshold <= self.threshold:
            raise VadError(f"vad.neg_threshold must be in [0, threshold], got {self.neg_threshold}")
        if self.min_speech_s < 0 or self.min_silence_s < 0:
            raise VadError("vad.min_speech_s and vad.min_silence_s must be >= 0")
        if self.chunk_s < 1.0:
            raise VadError(f"vad.chunk_s must be >= 1 s, got {self.chunk_s}")

    @property
    def off_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(0.01, self.threshold - 0.15)


def frames_of(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Re-cut a stream of (S,) chunks into (N, FRAME) blocks; a last partial frame is zero-padded."""
    carry = np.zeros(0, dtype=np.float32)
    for chunk in chunks:
        buf = np.concatenate([carry, np.asarray(chunk, dtype=np.float32)])
        n = len(buf) // FRAME
        if n:
            yield buf[: n * FRAME].reshape(n, FRAME)  # (n*FRAME,) -> (n, FRAME)
        carry = buf[n * FRAME:]
    if len(carry):
        yield np.pad(carry, (0, FRAME - len(carry)))[None, :]  # (1, FRAME)


class VadStrategy:
    """Per-frame speech probabilities of one recording (state is reset per call)."""

    def probabilities(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        raise NotImplementedError


class SileroVad(VadStrategy):
    """Silero VAD (TorchScript model packaged in the silero-vad wheel; runs offline on CPU)."""

    def __init__(self) -> None:
        try:
            import torch
            from silero_vad import load_silero_vad
        except ImportError as e:
            raise VadError(f"vad.method silero needs the silero-vad package ({e}); "
                           "pip install silero-vad, or use vad.method: energy") from None
        n_threads = torch.get_num_threads()
        self.model = load_silero_vad(onnx=False)
        torch.set_num_threads(n_threads)  # silero_vad sets 1 thread at import; keep the caller's
        self.torch = torch

    def probabilities(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        torch = self.torch
        self.model.reset_states()
        out: list[float] = []
        with torch.inference_mode():
            for block in frames_of(chunks):  # (N, FRAME); the model is stateful: frame by frame
                for frame in torch.from_numpy(block):
                    out.append(float(self.model(frame, SAMPLE_RATE)))
        self.model.reset_states()
        return np.asarray(out, dtype=np.float32)


class EnergyVad(VadStrategy):
    """Frame log-energy against a noise floor (10th percentile of each chunk); no model."""

    def __init__(self, margin_db: float) -> None:
        self.margin_db = margin_db

    def probabilities(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        out = []
        for block in frames_of(chunks):  # (N, FRAME)
            db = 10.0 * np.log10(np.mean(block.astype(np.float64) ** 2, axis=1) + 1e-10)  # (N,)
            floor = np.percentile(db, 10) if len(db) >= 20 else db.min()
            # a logistic in dB: 0.5 exactly at floor + margin, ~0/1 a few dB either side
            out.append(1.0 / (1.0 + np.exp(-(db - floor - self.margin_db) / 2.0)))
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


STRATEGIES = {"silero": lambda cfg: SileroVad(), "energy": lambda cfg: EnergyVad(cfg.energy_margin_db)}


def make_vad(cfg: VadConfig) -> VadStrategy:
    return STRATEGIES[cfg.method](cfg)


def speech_regions(probs: np.ndarray, cfg: VadConfig) -> tuple[list[tuple[float, float]], int]:
    """(speech regions in seconds, number of too-short regions dropped) from (F,) probabilities.

    Hysteresis: speech starts at a frame >= threshold and ends after ``min_silence_s`` of frames
    below ``off_threshold``; regions shorter than ``min_speech_s`` are dropped.
    """
    min_sil = max(1, int(round(cfg.min_silence_s / FRAME_S)))
    regions: list[tuple[int, int]] = []
    start, quiet = None, 0
    for i, p in enumerate(probs):
        if start is None:
            if p >= cfg.threshold:
                start, quiet = i, 0
        elif p < cfg.off_threshold:
            quiet += 1
            if quiet >= min_sil:
                regions.append((start, i - quiet + 1))
                start = None
        else:
            quiet = 0
    if start is not None:
        regions.append((start, len(probs) - quiet))
    kept = [(a * FRAME_S, b * FRAME_S) for a, b in regions if (b - a) * FRAME_S >= cfg.min_speech_s]
    return kept, len(regions) - len(kept)
