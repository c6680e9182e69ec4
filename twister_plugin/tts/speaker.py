"""Speaker embeddings from Whisper's encoder (no speaker model to download) and the voice bank.

Embedding of one utterance (16 kHz mono float audio, at most 30 s):
    log-mel (n_mels, T) -> Whisper encoder on the unpadded length (positional table cut to T/2)
    -> mean over time (D,)                          D = n_audio_state (512 for base)
Raw embeddings are standardised per dimension with the training set's mean/std, then scaled to
unit length (``VoiceBank.normalise``); VITS learns its own projection of them (spk_embed_dim=D).

The voice bank (``voices.npz``) keeps, per training speaker: its sid, its mean embedding and up
to ``keep_per_speaker`` utterance embeddings; plus a Gaussian for unseen voices: mean of the
speaker means, between-speaker spread (from the centred speaker means, rank <= S-1) plus a
diagonal within-speaker variance, so one speaker still gives a non-degenerate sampler.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from twister_plugin.utils.fileio import atomic_open

WHISPER_SR = 16000
_MAX_FRAMES = 3000  # 30 s of 10 ms mel frames: the size of Whisper's positional table
_MIN_SAMPLES = 1600  # 0.1 s: shorter audio has too few frames to pool


class VoiceBankError(ValueError):
    """voices.npz is missing a field, or a speaker is not in it."""


class WhisperSpeakerEncoder:
    """Mean-pooled Whisper encoder output of one utterance."""

    def __init__(self, model, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.device = torch.device(device)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "cpu"
                        ) -> "WhisperSpeakerEncoder":
        from twister_plugin.whisper import load_whisper

        return cls(load_whisper(path, device=device), device)

    @property
    def dim(self) -> int:
        return self.model.dims.n_audio_state

    @torch.inference_mode()
    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """audio: (N,) float at 16 kHz -> (D,) float32."""
        import whisper

        if len(audio) < _MIN_SAMPLES:
            raise ValueError(f"audio too short for an embedding ({len(audio)} samples)")
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32), device=self.device)
        mel = whisper.log_mel_spectrogram(wav, n_mels=self.model.dims.n_mels)  # (n_mels, T)
        mel = mel[:, : min(_MAX_FRAMES, mel.shape[1] - mel.shape[1] % 2)]
        enc = self.model.encoder
        x = F.gelu(enc.conv1(mel[None].to(enc.conv1.weight.dtype)))
        x = F.gelu(enc.conv2(x)).permute(0, 2, 1)  # (1, T/2, D)
        x = x + enc.positional_embedding[: x.shape[1]]
        for block in enc.blocks:
            x = block(x)
        return enc.ln_post(x)[0].mean(0).float().cpu().numpy()


@dataclass
class VoiceBank:
    """Training speakers' embeddings + normalisation + unseen-voice Gaussian (see module doc)."""

    speakers: np.ndarray  # (S,) str speaker ids, sorted; sid = index
    spk_mean: np.ndarray  # (S, D) normalised mean embedding per speaker
    utt_emb: np.ndarray  # (M, D) normalised utterance embeddings kept for seen-voice synthesis
    utt_spk: np.ndarray  # (M,) int speaker index of each kept utterance embedding
    norm_mean: np.ndarray  # (D,) raw-embedding mean of the training set
    norm_std: np.ndarray  # (D,) raw-embedding std of the training set (floored)
    between: np.ndarray  # (S, D) (spk_mean - mu) / sqrt(max(S-1, 1))
    within_std: np.ndarray  # (D,) pooled within-speaker std of utterance embeddings

    @staticmethod
    def fit_norm(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = raw.mean(0)
        std = np.maximum(raw.std(0), 1e-3 * max(float(raw.std()), 1e-8))
        return mean.astype(np.float32), std.astype(np.float32)

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        return _unit((raw - self.norm_mean) / self.norm_std)

    @classmethod
    def build(cls, raw: np.ndarray, utt_speakers: Sequence[str], keep_per_speaker: int = 20,
              norm: tuple[np.ndarray, np.ndarray] | None = None) -> "VoiceBank":
        """raw: (N, D) raw embeddings; utt_speakers: speaker of each row."""
        norm_mean, norm_std = norm if norm is not None else cls.fit_norm(raw)
        emb = _unit((raw - norm_mean) / norm_std)
        speakers = np.array(sorted(set(utt_speakers)))
        spk_index = {s: i for i, s in enumerate(speakers)}
        idx = np.array([spk_index[s] for s in utt_speakers])
        spk_mean = np.stack([_unit(emb[idx == i].mean(0)) for i in range(len(speakers))])
        resid = emb - np.stack([emb[idx == i].mean(0) for i in range(len(speakers))])[idx]
        keep = np.concatenate([np.flatnonzero(idx == i)[:keep_per_speaker]
                               for i in range(len(speakers))])
        mu = spk_mean.mean(0)
        return cls(speakers=speakers, spk_mean=spk_mean.astype(np.float32),
                   utt_emb=emb[keep].astype(np.float32), utt_spk=idx[keep],
                   norm_mean=norm_mean, norm_std=norm_std,
                   between=((spk_mean - mu) / np.sqrt(max(len(speakers) - 1, 1))).astype(
                       np.float32),
                   within_std=np.sqrt((resid ** 2).mean(0)).astype(np.float32))

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One unseen voice: mu + between^T z + within_std * z', scaled to unit length."""
        mu = self.spk_mean.mean(0)
        z = rng.standard_normal(len(self.speakers))
        z2 = rng.standard_normal(mu.shape[0])
        return _unit(mu + z @ self.between + self.within_std * z2).astype(np.float32)

    def seen(self, speaker: str, rng: np.random.Generator) -> np.ndarray:
        """A kept utterance embedding of ``speaker`` (in-distribution for the model)."""
        rows = np.flatnonzero(self.utt_spk == self.sid(speaker))
        return self.utt_emb[rng.choice(rows)] if len(rows) else self.spk_mean[self.sid(speaker)]

    def sid(self, speaker: str) -> int:
        hits = np.flatnonzero(self.speakers == speaker)
        if not len(hits):
            raise VoiceBankError(f"speaker {speaker!r} not in the voice bank")
        return int(hits[0])

    def nearest_sid(self, emb: np.ndarray) -> int:
        return int(np.argmax(self.spk_mean @ emb))

    def save(self, path: str | os.PathLike) -> None:
        with atomic_open(path, "wb") as f:
            np.savez(f, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "VoiceBank":
        path = Path(path)
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in cls.__dataclass_fields__ if k not in z.files]
            if missing:
                raise VoiceBankError(f"{path}: missing {missing}")
            return cls(**{k: z[k] for k in cls.__dataclass_fields__})


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
