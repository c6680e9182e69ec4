"""Batched Whisper log-mel features with per-utterance normalisation.

openai-whisper's ``log_mel_spectrogram`` clamps at ``max - 8`` over the whole tensor, which mixes
utterances when given a batch; this computes the same features one utterance at a time, in batch.

Shapes: B batch, S samples (30 s = 480000 at 16 kHz), M mel bins (80/128), T frames (3000).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from whisper.audio import HOP_LENGTH, N_FFT, N_SAMPLES, mel_filters


def pad_or_trim_batch(audio: torch.Tensor, length: int = N_SAMPLES) -> torch.Tensor:
    """(B, S) -> (B, length), zero-padded or cut at the end."""
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return F.pad(audio, (0, length - audio.shape[-1]))


def log_mel_batch(audio: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """(B, S) float audio at 16 kHz -> (B, M, S // 160) log-mel, as whisper.log_mel_spectrogram
    computes it for each row alone."""
    audio = audio.float()
    window = torch.hann_window(N_FFT, device=audio.device)
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2  # (B, N_FFT//2+1, T)
    mel = mel_filters(audio.device, n_mels) @ power  # (B, M, T)
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(1, 2), keepdim=True)  # (B, 1, 1): per-utterance maximum
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0
