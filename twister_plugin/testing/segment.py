"""Build a long recording from short utterances joined by silences, with the true joins.

Used by the segmentation tests and ``benchmarks/segment_long.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from twister_plugin.data import DataDir, load_audio, read_manifest

SAMPLE_RATE = 16000


@dataclass
class LongRecording:
    wav: Path  # the long 16-kHz WAV
    utts: list[str]  # utterance ids in order
    spans: list[tuple[float, float]]  # (start s, end s) of each utterance in the long file
    texts: list[str]  # transcripts in order
    duration: float  # seconds


def build_long_recording(manifest: Path, out_wav: Path, *, n_utts: int | None = None,
                         seconds: float | None = None, silence: tuple[float, float] = (0.5, 1.5),
                         seed: int = 0) -> LongRecording:
    """Join the first utterances of ``manifest`` (n_utts of them, or until ``seconds``) with
    random silences of ``silence`` s (uniform, seeded) into ``out_wav``; lead and tail silent."""
    dd: DataDir = read_manifest(manifest)
    rng = np.random.default_rng(seed)
    parts, spans, utts, texts, t = [], [], [], [], 0.0
    for utt in dd.utt_ids:
        if (n_utts is not None and len(utts) >= n_utts) or (seconds is not None and t >= seconds):
            break
        gap = np.zeros(int(rng.uniform(*silence) * SAMPLE_RATE), dtype=np.float32)
        x = load_audio(dd.wav_scp[utt], SAMPLE_RATE)
        parts += [gap, x]
        t += len(gap) / SAMPLE_RATE
        spans.append((t, t + len(x) / SAMPLE_RATE))
        t += len(x) / SAMPLE_RATE
        utts.append(utt)
        texts.append(dd.text[utt])
    parts.append(np.zeros(int(rng.uniform(*silence) * SAMPLE_RATE), dtype=np.float32))
    audio = np.concatenate(parts)
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out_wav, audio, SAMPLE_RATE, subtype="PCM_16")
    return LongRecording(out_wav, utts, spans, texts, len(audio) / SAMPLE_RATE)


def write_long_dir(rec: LongRecording, data_dir: Path, rec_id: str = "long1",
                   speaker: str = "S0150", language: str = "zh") -> Path:
    """A Kaldi dir (wav.scp, utt2spk, utt2lang) holding the one long recording."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "wav.scp").write_text(f"{rec_id} {rec.wav.absolute()}\n", encoding="utf-8")
    (data_dir / "utt2spk").write_text(f"{rec_id} {speaker}\n", encoding="utf-8")
    (data_dir / "utt2lang").write_text(f"{rec_id} {language}\n", encoding="utf-8")
    return data_dir
