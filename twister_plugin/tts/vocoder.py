"""Training-free vocoder: batched Griffin-Lim from ESPnet ``fbank`` (LogMelFbank) log-mels.

Inverts exactly the features a model was trained on: the mel basis is rebuilt with the same
librosa call as ``espnet2.layers.log_mel.LogMel`` from the model's ``feats_extract_conf``;
log-mel -> mel amplitude (base ``log_base``) -> linear amplitude by the basis' pseudo-inverse
(clamped >= 0) -> ``torchaudio.transforms.GriffinLim`` (power 1: ESPnet's TTS fbank is of
|STFT| amplitudes, not power).

Shapes: B batch, T frames, M mel bins, F = n_fft // 2 + 1 linear bins, S samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import librosa
import torch
import torchaudio


class VocoderConfigError(ValueError):
    """The model's feature extraction is not one Griffin-Lim can invert."""


@dataclass(frozen=True)
class FbankConfig:
    fs: int = 16000  # sampling rate (Hz)
    n_fft: int = 1024  # FFT size
    hop_length: int = 256  # frame shift (samples)
    win_length: int | None = None  # window length (None: n_fft)
    window: str = "hann"  # STFT window (torch.<window>_window)
    n_mels: int = 80  # mel bins M
    fmin: float | None = 80  # lowest mel frequency (ESPnet LogMelFbank default)
    fmax: float | None = 7600  # highest mel frequency (ESPnet LogMelFbank default)
    htk: bool = False  # HTK mel formula instead of Slaney
    log_base: float | None = 10.0  # log base of the features (None: natural log)

    @classmethod
    def from_task_args(cls, feats_extract: str | None, conf: dict | None,
                       where: str = "config") -> "FbankConfig":
        """From a trained model's ``feats_extract`` / ``feats_extract_conf`` (config.yaml)."""
        if feats_extract != "fbank":
            raise VocoderConfigError(f"{where}: feats_extract is {feats_extract!r}; Griffin-Lim "
                                     "here inverts ESPnet 'fbank' log-mels only")
        conf = dict(conf or {})
        for key, want in (("center", True), ("normalized", False), ("onesided", True)):
            if conf.pop(key, want) != want:
                raise VocoderConfigError(f"{where}: feats_extract_conf.{key} must be {want}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(conf) - known)
        if unknown:
            raise VocoderConfigError(f"{where}: feats_extract_conf has unknown keys {unknown}")
        return cls(**conf)


@dataclass(frozen=True)
class GriffinLimConfig:
    n_iter: int = 48  # Griffin-Lim iterations
    momentum: float = 0.99  # fast Griffin-Lim momentum


class GriffinLimVocoder(torch.nn.Module):
    """log-mel (B, T, M) -> waveform (B, S), S = (T - 1) * hop_length."""

    def __init__(self, fbank: FbankConfig, gl: GriffinLimConfig = GriffinLimConfig()):
        super().__init__()
        self.fbank, self.gl = fbank, gl
        fmin = 0 if fbank.fmin is None else fbank.fmin
        fmax = fbank.fs / 2 if fbank.fmax is None else fbank.fmax
        basis = librosa.filters.mel(sr=fbank.fs, n_fft=fbank.n_fft, n_mels=fbank.n_mels,
                                    fmin=fmin, fmax=fmax, htk=fbank.htk)  # (M, F) as LogMel
        basis = torch.from_numpy(basis).double()
        self.register_buffer("inv_basis", torch.linalg.pinv(basis).float())  # (F, M)
        self.win_length = fbank.win_length or fbank.n_fft
        self.register_buffer("window", getattr(torch, f"{fbank.window}_window")(self.win_length))

    @property
    def fs(self) -> int:
        return self.fbank.fs

    @property
    def hop(self) -> int:
        return self.fbank.hop_length

    def linear(self, logmel: torch.Tensor) -> torch.Tensor:
        """(B, T, M) log-mel -> (B, F, T) linear amplitude."""
        base = self.fbank.log_base
        mel = logmel.exp() if base is None else torch.pow(base, logmel)
        return torch.clamp(mel @ self.inv_basis.T, min=0.0).transpose(1, 2)  # (B, F, T)

    @torch.inference_mode()
    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        if logmel.dim() != 3 or logmel.size(-1) != self.fbank.n_mels:
            raise VocoderConfigError(f"GriffinLimVocoder: want (B, T, {self.fbank.n_mels}) "
                                     f"log-mels, got {tuple(logmel.shape)}")
        spec = self.linear(logmel.float())
        length = (logmel.size(1) - 1) * self.fbank.hop_length
        if length <= 0:
            return spec.new_zeros(logmel.size(0), 0)
        return torchaudio.functional.griffinlim(
            spec, self.window, self.fbank.n_fft, self.fbank.hop_length, self.win_length,
            power=1.0, n_iter=self.gl.n_iter, momentum=self.gl.momentum, length=length,
            rand_init=False)  # (B, S)


def spectral_convergence(logmel_ref: torch.Tensor, logmel_est: torch.Tensor,
                         log_base: float | None = 10.0) -> float:
    """|| |A_ref| - |A_est| ||_F / || A_ref ||_F on the mel amplitudes of two (T, M) log-mels."""
    def amp(x):
        return x.exp() if log_base is None else torch.pow(log_base, x)

    t = min(logmel_ref.size(0), logmel_est.size(0))
    ref, est = amp(logmel_ref[:t].double()), amp(logmel_est[:t].double())
    return float(torch.linalg.norm(ref - est) / torch.linalg.norm(ref))
