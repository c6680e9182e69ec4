"""Whisper log-mel features for a batch, computed on the model's device.

``whisper.log_mel_spectrogram`` clamps at ``max - 8`` with the maximum over its whole input, so
calling it on a stacked batch would let one loud clip change the features of the others. Here
the same recipe (Whisper's own mel filters, STFT size and hop) runs on a padded batch with the
maximum taken per utterance, which gives exactly ``log_mel_spectrogram(pad_or_trim(audio))``
for every item.

Shapes: B batch, S samples (16 kHz), M mel bins (``model.dims.n_mels``), F frames (3000).
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
from whisper.audio import HOP_LENGTH, N_FFT, N_SAMPLES, SAMPLE_RATE, mel_filters

logger = logging.getLogger(__name__)


def pad_batch(waves: Sequence[np.ndarray | torch.Tensor],
              device: torch.device | str) -> torch.Tensor:
    """Stack mono 16-kHz waveforms into a zero-padded ``[B, N_SAMPLES]`` float32 tensor on ``device``.

    Only the real samples cross to the device (one concatenated copy); the padding is made there,
    so a batch of 5-s clips moves a sixth of the bytes a padded CPU batch would.
    """
    pieces = []
    for i, w in enumerate(waves):
        w = torch.as_tensor(w, dtype=torch.float32)
        if w.ndim != 1:
            raise ValueError(f"waveform {i}: want a mono 1-D array, got shape {tuple(w.shape)}")
        if w.shape[0] > N_SAMPLES:
            logger.warning("waveform %d is %.1f s long; only the first %d s are decoded",
                           i, w.shape[0] / SAMPLE_RATE, N_SAMPLES // SAMPLE_RATE)
            w = w[:N_SAMPLES]
        pieces.append(w)
    flat = torch.cat(pieces).to(device) if pieces else torch.zeros(0, device=device)  # [sum S_i]
    out = torch.zeros(len(pieces), N_SAMPLES, dtype=torch.float32, device=device)
    start = 0
    for i, w in enumerate(pieces):
        out[i, : w.shape[0]] = flat[start : start + w.shape[0]]
        start += w.shape[0]
    return out


def pad_or_trim_batch(audio: torch.Tensor, length: int = N_SAMPLES) -> torch.Tensor:
    """``[B, S]`` -> ``[B, length]``, zero-padded or cut at the end (training batches)."""
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return torch.nn.functional.pad(audio, (0, length - audio.shape[-1]))


def batch_log_mel(audio: torch.Tensor, n_mels: int) -> torch.Tensor:
    """Log-mel of ``audio [B, S]`` as ``[B, M, S // HOP_LENGTH]``, normalised per utterance."""
    window = torch.hann_window(N_FFT, device=audio.device)
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)  # [B, 201, F+1]
    power = stft[..., :-1].abs() ** 2  # [B, 201, F]
    mel = mel_filters(audio.device, n_mels) @ power  # [M, 201] @ [B, 201, F] -> [B, M, F]
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(1, 2), keepdim=True)  # [B, 1, 1]: per-utterance maximum
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0


def waves_to_mel(waves: Sequence[np.ndarray | torch.Tensor], n_mels: int,
                 device: torch.device | str) -> torch.Tensor:
    """Mono 16-kHz waveforms -> Whisper encoder input ``[B, M, 3000]`` on ``device``."""
    return batch_log_mel(pad_batch(waves, device), n_mels)
