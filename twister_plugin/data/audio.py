"""Load one utterance as float32 mono at a given rate, refusing bad audio with a clear message.

``load_audio`` decodes WAV/FLAC/OGG/... with soundfile (or the output of a Kaldi ``cmd |``
wav.scp entry, only when ``allow_pipes=True``), averages the channels to mono, resamples (soxr if
installed, else torchaudio) and returns a 1-D ``np.float32`` array of S samples. It raises
:class:`AudioError` naming the file and the problem for: a missing path, an empty file, a file
that is not audio, zero-length audio, a truncated file (WAV data chunk shorter than its header
says, FLAC that stops decoding early), NaN/Inf samples, a segment outside the audio, and audio
longer than ``max_seconds`` (its duration is given; audio is never silently cut).
"""
from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import soundfile as sf

from twister_plugin.data.kaldi import DataDir, is_pipe

SEGMENT_TOLERANCE_S = 0.02  # a Kaldi segment may end this far past the audio (rounding)


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file and the problem."""


def load_audio(path_or_entry: str | Path, sr: int = 16000, *, max_seconds: float | None = None,
               start: float = 0.0, end: float | None = None, allow_pipes: bool = False,
               ) -> np.ndarray:
    """Samples [start, end) s of a file or wav.scp entry as (S,) float32 mono at ``sr`` Hz."""
    name = str(path_or_entry)
    x, native_sr = _decode(_source(name, allow_pipes), name, start, end, max_seconds)
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argmax(bad))
        raise AudioError(f"{name}: {int(bad.sum())} NaN/Inf samples (first at sample {first}, "
                         f"{first / native_sr:.3f} s)")
    return resample(x, native_sr, sr)


class AudioInfo(NamedTuple):
    sample_rate: int  # Hz
    num_samples: int  # per channel
    channels: int


def probe_audio(path_or_entry: str | Path, *, allow_pipes: bool = False) -> AudioInfo:
    """Rate, length and channels of a file or wav.scp entry, with the checks of ``load_audio``
    that need no decoding (missing, empty, not audio, zero-length, truncated WAV)."""
    entry = str(path_or_entry)
    try:
        info = sf.info(_source(entry, allow_pipes))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{entry}: not a readable audio file ({_why(e)})") from None
    if info.frames <= 0:
        raise AudioError(f"{entry}: zero-length audio (no samples)")
    return AudioInfo(info.samplerate, info.frames, info.channels)


def load_utt(dd: DataDir, utt: str, sr: int = 16000, *, max_seconds: float | None = None,
             allow_pipes: bool = False) -> np.ndarray:
    """The audio of utterance ``utt`` of a data dir (its segment, if the dir has segments)."""
    ref = dd.audio(utt)
    try:
        return load_audio(ref.entry, sr, max_seconds=max_seconds, start=ref.start, end=ref.end,
                          allow_pipes=allow_pipes)
    except AudioError as e:
        raise AudioError(f"utterance {utt!r}: {e}") from None


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """(S,) float32 at sr_in -> (S * sr_out / sr_in,) float32 at sr_out."""
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    try:
        import soxr
    except ImportError:
        import torch
        import torchaudio.functional as AF

        y = AF.resample(torch.from_numpy(np.ascontiguousarray(x)), sr_in, sr_out).numpy()
    else:
        y = soxr.resample(x, sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(y, dtype=np.float32)


def _source(entry: str, allow_pipes: bool) -> BinaryIO | str:
    """What soundfile should open for ``entry``, after the checks that need no decoding."""
    if is_pipe(entry):
        if not allow_pipes:
            raise AudioError(f"{entry!r}: pipe entries run a shell command; refused unless "
                             "allow_pipes=True")
        data = _run_pipe(entry)
        _check_wav_complete(io.BytesIO(data), len(data), entry)
        return io.BytesIO(data)
    size = _check_file(Path(entry))
    with open(entry, "rb") as f:
        _check_wav_complete(f, size, entry)
    return entry


def _check_file(path: Path) -> int:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    return size


def _run_pipe(entry: str) -> bytes:
    cmd = entry.rstrip()[:-1]
    proc = subprocess.run(cmd, shell=True, capture_output=True, check=False)  # noqa: S602
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip()[-300:]
        raise AudioError(f"{entry!r}: command failed with exit code {proc.returncode}: {tail}")
    if not proc.stdout:
        raise AudioError(f"{entry!r}: command wrote no bytes")
    return proc.stdout


def _check_wav_complete(f: BinaryIO, size: int, name: str) -> None:
    """libsndfile quietly shortens a truncated WAV; compare the data chunk size with the file."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
        if chunk_id == b"data":
            if chunk_size != 0xFFFFFFFF and pos + 8 + chunk_size > size:
                raise AudioError(f"{name}: truncated WAV: data chunk says {chunk_size} bytes, the "
                                 f"file holds {size - pos - 8}")
            return
        pos += 8 + chunk_size + (chunk_size & 1)
    raise AudioError(f"{name}: truncated WAV: no data chunk in {size} bytes")


def _decode(source: BinaryIO | str, name: str, start: float, end: float | None,
            max_seconds: float | None) -> tuple[np.ndarray, int]:
    """(S,) float32 mono samples of [start, end) s at the file's own rate, and that rate."""
    try:
        f = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{name}: not a readable audio file ({_why(e)})") from None
    with f:
        rate, total = f.samplerate, f.frames
        if total <= 0:
            raise AudioError(f"{name}: zero-length audio (no samples)")
        first, last = _span(name, start, end, rate, total)
        seconds = (last - first) / rate
        if max_seconds is not None and seconds > max_seconds:
            raise AudioError(f"{name}: audio is {seconds:.2f} s long, more than max_seconds="
                             f"{max_seconds} (refused, never cut)")
        try:
            f.seek(first)
            x = f.read(last - first, dtype="float32", always_2d=True)  # (S, C)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError(f"{name}: decoding failed; truncated or corrupt file ({_why(e)})") from None
    if x.shape[0] < last - first:
        raise AudioError(f"{name}: truncated: header says {last - first} samples from sample "
                         f"{first}, only {x.shape[0]} decoded")
    return x.mean(axis=1), rate  # (S, C) -> (S,)


def _span(name: str, start: float, end: float | None, rate: int, total: int) -> tuple[int, int]:
    duration = total / rate
    if start < 0 or start >= duration:
        raise AudioError(f"{name}: segment start {start} s is outside the audio ({duration:.3f} s)")
    if end is None:
        return int(round(start * rate)), total
    if end <= start or end > duration + SEGMENT_TOLERANCE_S:
        raise AudioError(f"{name}: segment [{start}, {end}] s does not fit the audio "
                         f"({duration:.3f} s)")
    return int(round(start * rate)), min(total, int(round(end * rate)))


def _why(e: Exception) -> str:
    return str(e).strip().replace("\n", " ")[:200]
