"""Speed perturbation and additive noise for ASR training data (Kaldi dirs in, Kaldi dirs out).

Speed (Kaldi / ESPnet style): for every factor f != 1 each utterance gets a copy ``sp<f>-<utt>``
of speaker ``sp<f>-<spk>`` whose audio is the original played f times faster (pitch moves with
it, as sox ``speed``): the samples are read as if taken at f * sr and resampled to sr with
torchaudio, so the duration becomes d / f. Factor 1 keeps the originals. A copy longer than
``max_seconds`` (Whisper's window) is not made; the count is logged and returned.

Noise: a ``share`` of the utterances (drawn by seed) is replaced, same id, by the utterance plus
noise at an SNR drawn uniformly from ``snr_db``; the noise comes from ``source`` (a Kaldi dir with
wav.scp, or a text file of audio paths, one a line) at a random offset, looped when short, or,
without a source, is generated coloured noise (white, pink or brown, 1/f^a spectrum with a in
{0, 1, 2}). A mix that would clip is scaled down as a whole, which keeps the SNR. Every random
draw is seeded by (seed, utterance id), so results do not depend on order or on resuming.

Audio goes to ``<audio_dir>/<utt id>.flac`` (16-bit FLAC, written atomically); an existing file
is kept, so a rerun resumes. ``noise_map`` rows (utt, SNR dB, noise) say what was added.
"""
from __future__ import annotations

import logging
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from tqdm import tqdm

from twister_plugin.data.audio import load_audio, load_utt
from twister_plugin.data.concat import complete_frames
from twister_plugin.data.kaldi import DataDir, DataError, iter_lines, read_kaldi_dir
from twister_plugin.utils.fileio import atomic_open

logger = logging.getLogger(__name__)


class PerturbError(ValueError):
    """Bad perturbation options or noise input; the message names the option or file."""


@dataclass(frozen=True)
class SpeedOptions:
    factors: tuple[float, ...] = (1.0,)  # speed factors; 1.0 keeps the originals
    max_seconds: float = 30.0  # copies longer than this are not made
    sample_rate: int = 16000  # rate of the written audio

    def __post_init__(self) -> None:
        if not self.factors or any(not 0.5 <= f <= 2.0 for f in self.factors):
            raise PerturbError(f"speed factors must be in [0.5, 2], got {list(self.factors)}")
        if len(set(self.factors)) != len(self.factors):
            raise PerturbError(f"speed factors repeat: {list(self.factors)}")


@dataclass(frozen=True)
class NoiseOptions:
    share: float = 0.0  # fraction of utterances that get noise (0: off)
    snr_db: tuple[float, float] = (10.0, 30.0)  # SNR range in dB, drawn uniformly
    source: str | None = None  # Kaldi dir or list of audio paths; None: generated coloured noise
    seed: int = 0  # draws are seeded by (seed, utterance id)
    sample_rate: int = 16000  # rate of the written audio

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise PerturbError(f"noise share must be in [0, 1], got {self.share}")
        if len(self.snr_db) != 2:
            raise PerturbError(f"noise snr_db wants [low, high], got {list(self.snr_db)}")
        lo, hi = self.snr_db
        if not lo <= hi:
            raise PerturbError(f"noise snr_db range must be [low, high], got {list(self.snr_db)}")


class NoiseRow(NamedTuple):
    utt: str  # utterance id
    snr_db: float  # target SNR
    noise: str  # noise file path, or "coloured:<exponent>"


@dataclass
class PerturbStats:
    speed_copies: int = 0  # speed-perturbed utterances made
    speed_skipped: int = 0  # copies not made: longer than max_seconds
    noisy: int = 0  # utterances with added noise
    written: int = 0  # audio files written by this run
    reused: int = 0  # audio files found from an earlier run
    noise_rows: list[NoiseRow] = field(default_factory=list)


def _seed(seed: int, key: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(key.encode())) & 0xFFFFFFFF


def _write_flac(path: Path, x: np.ndarray, sr: int) -> None:
    with atomic_open(path, "wb") as f:
        sf.write(f, x, sr, format="FLAC", subtype="PCM_16")


# ----------------------------------------------------------------------------------- speed
def speed_prefix(factor: float) -> str:
    return f"sp{factor:g}-"


def change_speed(x: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """(S,) -> (about S / factor,) samples: ``x`` played ``factor`` times faster."""
    src = int(round(sr * factor))
    y = AF.resample(torch.from_numpy(np.ascontiguousarray(x, np.float32)), src, sr)
    return y.numpy().astype(np.float32)


def speed_perturb(dd: DataDir, audio_dir: str | Path, opts: SpeedOptions
                  ) -> tuple[DataDir, dict[str, tuple[str, float]], PerturbStats]:
    """``dd`` with speed copies; also new id -> (source id, factor) for every copy."""
    audio_dir, sr = Path(audio_dir), opts.sample_rate
    out = _empty_like(dd, "speed")
    origin: dict[str, tuple[str, float]] = {}
    stats = PerturbStats()
    if 1.0 in opts.factors:
        _copy_all(dd, out)
    todo = [(f, u) for f in opts.factors if f != 1.0 for u in dd.utt_ids]
    for f, u in tqdm(todo, desc="speed", unit="utt", disable=len(todo) < 50):
        new = speed_prefix(f) + u
        path = audio_dir / f"{new}.flac"
        n = complete_frames(path)
        if n is not None:
            stats.reused += 1
        else:
            y = change_speed(load_utt(dd, u, sr), sr, f)
            if len(y) > opts.max_seconds * sr:
                stats.speed_skipped += 1
                continue
            _write_flac(path, y, sr)
            n = len(y)
            stats.written += 1
        out.wav_scp[new] = str(path.absolute())
        out.utt2spk[new] = speed_prefix(f) + dd.utt2spk[u]
        if dd.text is not None:
            out.text[new] = dd.text[u]
        out.utt2lang[new] = (dd.utt2lang or {}).get(u, "zh")
        out.utt2dur[new] = n / sr
        origin[new] = (u, f)
        stats.speed_copies += 1
    if stats.speed_skipped:
        logger.warning("speed perturbation: %d copies longer than %s s not made",
                       stats.speed_skipped, opts.max_seconds)
    return _finish(out, dd), origin, stats


# ----------------------------------------------------------------------------------- noise
def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) float32 noise with power spectrum ~ 1/f^exponent, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    y = np.fft.irfft(spec / f ** (exponent / 2), n)
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, float]:
    """x + g * noise with 10 log10(P_x / P_gnoise) = snr_db, scaled down as a whole to peak
    0.99 if it would clip; returns (mix, that overall scale)."""
    px = float(np.mean(x.astype(np.float64) ** 2))
    pn = float(np.mean(noise.astype(np.float64) ** 2))
    if px <= 0 or pn <= 0:
        raise PerturbError("cannot set an SNR: the speech or the noise is all zeros")
    g = np.sqrt(px / (pn * 10 ** (snr_db / 10)))
    y = x + g * noise
    peak = float(np.max(np.abs(y)))
    scale = 0.99 / peak if peak > 0.99 else 1.0
    return (y * scale).astype(np.float32), scale


class NoiseSource:
    """Noise clips of a Kaldi dir or a path list, or coloured noise when there is none."""

    def __init__(self, source: str | None, sr: int):
        self.sr, self.paths = sr, read_noise_list(source) if source else []

    def pick(self, rng: np.random.Generator) -> str:
        """Which noise: a file path or ``coloured:<exponent>`` (the first draw of ``rng``)."""
        if not self.paths:
            return f"coloured:{int(rng.integers(0, 3))}"
        return self.paths[int(rng.integers(0, len(self.paths)))]

    def samples(self, what: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) samples of the picked noise."""
        if what.startswith("coloured:"):
            return coloured_noise(n, float(what.split(":")[1]), rng)
        z = load_audio(what, self.sr)
        start = int(rng.integers(0, len(z)))
        return np.tile(np.roll(z, -start), int(np.ceil(n / len(z))))[:n]  # looped from an offset


def read_noise_list(source: str | Path) -> list[str]:
    """Audio paths of a Kaldi dir (its wav.scp) or of a list file (one path a line)."""
    src = Path(source)
    if src.is_dir():
        return list(read_kaldi_dir(src, require_text=False).wav_scp.values())
    paths = []
    for n, line in iter_lines(src):
        p = line.strip()
        if not p:
            raise DataError(f"{src}:{n}: blank line (want one audio path a line)")
        if not Path(p).is_file():
            raise DataError(f"{src}:{n}: noise file {p!r} does not exist")
        paths.append(p)
    if not paths:
        raise DataError(f"{src}: no noise files listed")
    return paths


def add_noise(dd: DataDir, audio_dir: str | Path, opts: NoiseOptions) -> tuple[DataDir, PerturbStats]:
    """``dd`` with a ``share`` of its utterances replaced by noisy copies (same ids)."""
    audio_dir, sr = Path(audio_dir), opts.sample_rate
    stats = PerturbStats()
    out = _empty_like(dd, "noise")
    _copy_all(dd, out)
    picked = [u for u in dd.utt_ids if random.Random(_seed(opts.seed, "pick:" + u)).random() < opts.share]
    source = NoiseSource(opts.source, sr) if picked else None
    for u in tqdm(picked, desc="noise", unit="utt", disable=len(picked) < 50):
        rng = np.random.default_rng(_seed(opts.seed, u))
        snr = float(rng.uniform(*opts.snr_db))
        what = source.pick(rng)
        path = audio_dir / f"{u}.flac"
        n = complete_frames(path)
        if n is not None:
            stats.reused += 1
        else:
            x = load_utt(dd, u, sr)
            y, _ = mix_at_snr(x, source.samples(what, len(x), rng), snr)
            _write_flac(path, y, sr)
            stats.written += 1
            n = len(y)
        out.wav_scp[u] = str(path.absolute())
        out.utt2dur[u] = n / sr
        stats.noisy += 1
        stats.noise_rows.append(NoiseRow(u, snr, what))
    return _finish(out, dd), stats


def write_noise_map(rows: list[NoiseRow], path: str | Path) -> None:
    with atomic_open(path, "w") as f:
        for r in sorted(rows):
            f.write(f"{r.utt} {r.snr_db:.2f} {r.noise}\n")


# ----------------------------------------------------------------------------------- helpers
def _empty_like(dd: DataDir, what: str) -> DataDir:
    return DataDir(wav_scp={}, utt2spk={}, text={}, utt2lang={}, utt2dur={}, name=f"{dd.name}+{what}")


def _copy_all(dd: DataDir, out: DataDir) -> None:
    if dd.segments is not None:
        raise PerturbError(f"{dd.name}: segments are not supported by perturbation")
    durs = dd.utt2dur or {}
    for u in dd.utt_ids:
        out.wav_scp[u] = dd.wav_scp[u]
        out.utt2spk[u] = dd.utt2spk[u]
        if dd.text is not None:
            out.text[u] = dd.text[u]
        out.utt2lang[u] = (dd.utt2lang or {}).get(u, "zh")
        if u in durs:
            out.utt2dur[u] = durs[u]


def _finish(out: DataDir, dd: DataDir) -> DataDir:
    """Sorted copy; text only if the input had it, utt2dur only if complete."""
    dur = out.utt2dur if len(out.utt2dur) == len(out.wav_scp) else None
    return DataDir(out.wav_scp, out.utt2spk, out.text if dd.text is not None else None,
                   utt2lang=out.utt2lang, utt2dur=dur, name=out.name)
