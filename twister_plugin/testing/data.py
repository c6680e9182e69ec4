"""Test helpers: locate the shared real data, write good and bad audio files, raw data dirs.

``write_audio_cases(tmp)`` writes one file per case below (plus a path that is never created) so
that tests of the audio loader, and later reliability tests, all use the same broken inputs:

    REFUSED  missing, empty, zero_length, truncated_flac, truncated_wav, random_bytes, nan_wav,
             inf_wav  (load_audio must raise AudioError naming the file)
    ACCEPTED good (16 kHz mono FLAC), stereo, sr8000, sr22050, sr44100, sr48000, float_wav
    LONG     ten_minutes (600 s FLAC; refused only when max_seconds is below its duration)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

REFUSED = ("missing", "empty", "zero_length", "truncated_flac", "truncated_wav", "random_bytes",
           "nan_wav", "inf_wav")
ACCEPTED = ("good", "stereo", "sr8000", "sr22050", "sr44100", "sr48000", "float_wav")
RATES = (8000, 22050, 44100, 48000)
CLIP_UTT = "BAC009S0150W0001"  # 2.43 s, 16 kHz, "设定二十九度"


def shared_data() -> Path | None:
    """``shared/data`` beside the repo root, or None when it is not there."""
    path = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    return path if path.is_dir() else None


def real_clip() -> tuple[np.ndarray, int]:
    """(S,) float32 samples and rate of one real utterance; a synthetic 2.4 s tone sweep when
    the shared data is absent."""
    root = shared_data()
    path = root / "zh" / "aishell_sample_S0150" / "audio" / f"{CLIP_UTT}.flac" if root else None
    if path is not None and path.is_file():
        x, sr = sf.read(path, dtype="float32")
        return x, sr
    sr = 16000
    t = np.arange(int(2.4 * sr)) / sr
    sweep = 0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t)
    return sweep.astype(np.float32), sr


def write_audio_cases(out_dir: str | Path, *, long_seconds: float | None = 600.0,
                      ) -> dict[str, Path]:
    """Write the REFUSED, ACCEPTED and (unless long_seconds is None) LONG cases; name -> path."""
    from twister_plugin.data.audio import resample

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x, sr = real_clip()
    p = {name: out / f"{name}.{ext}" for name, ext in [
        ("good", "flac"), ("missing", "flac"), ("empty", "wav"), ("zero_length", "wav"),
        ("truncated_flac", "flac"), ("truncated_wav", "wav"), ("random_bytes", "flac"),
        ("nan_wav", "wav"), ("inf_wav", "wav"), ("stereo", "flac"), ("float_wav", "wav")]}
    sf.write(p["good"], x, sr)
    p["empty"].write_bytes(b"")
    sf.write(p["zero_length"], np.zeros(0, np.float32), sr)
    flac = p["good"].read_bytes()
    p["truncated_flac"].write_bytes(flac[: len(flac) // 2])
    sf.write(out / "full.wav", x, sr)
    wav = (out / "full.wav").read_bytes()
    p["truncated_wav"].write_bytes(wav[: len(wav) // 2])
    p["random_bytes"].write_bytes(np.random.default_rng(0).bytes(5000))
    for name, value in (("nan_wav", np.nan), ("inf_wav", np.inf)):
        bad = x.copy()
        bad[len(bad) // 3] = value
        sf.write(p[name], bad, sr, subtype="FLOAT")
    sf.write(p["float_wav"], x, sr, subtype="FLOAT")
    sf.write(p["stereo"], np.stack([x, 0.5 * x], axis=1), sr)  # (S, 2)
    for rate in RATES:
        p[f"sr{rate}"] = out / f"sr{rate}.flac"
        sf.write(p[f"sr{rate}"], np.clip(resample(x, sr, rate), -1, 1), rate)
    if long_seconds is not None:
        p["ten_minutes"] = out / "ten_minutes.flac"
        reps = int(np.ceil(long_seconds * sr / len(x)))
        sf.write(p["ten_minutes"], np.tile(x, reps)[: int(long_seconds * sr)], sr)
    return p


def write_files(out_dir: str | Path, files: dict[str, str | bytes]) -> Path:
    """Write raw files (text or bytes) into ``out_dir``, e.g. a deliberately broken data dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (out / name).write_bytes(data)
    return out


def kaldi_files(n: int = 3, audio: str | Path = "a.flac") -> dict[str, str]:
    """Contents of a small valid data dir: utterances u1..un of speaker s1, all on ``audio``."""
    ids = [f"u{i}" for i in range(1, n + 1)]
    return {
        "wav.scp": "".join(f"{u} {audio}\n" for u in ids),
        "text": "".join(f"{u} 你好 hello {i}\n" for i, u in enumerate(ids)),
        "utt2spk": "".join(f"{u} s1\n" for u in ids),
        "utt2lang": "".join(f"{u} zh\n" for u in ids),
    }
