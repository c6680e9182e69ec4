"""The CTC head on the Whisper encoder, frozen-encoder features, and the head's files.

Data contract (B batch, F encoder frames of 20 ms, D encoder width, V unit classes incl. blank,
U units):
  features  list of (F_i, D) float tensors: encoder output of the audio's own frames only
            (``ceil(samples / 320)``, at most 1500), not the 30-s padding
  head      (B, F, D) -> log-probs (B, F, V), class 0 = blank
  targets   (B, U) long padded with -1, lengths (B,)

Files of a trained head (``exp/ctc``): ``head.pt`` ({"sizes", "state_dict", "units", "encoder"})
and ``units.model`` (sentencepiece).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from twister_plugin.decode.features import waves_to_mel
from twister_plugin.utils.fileio import atomic_open

SAMPLES_PER_FRAME = 320  # 16 kHz / 50 Hz: Whisper's encoder stride is 20 ms
FRAME_SECONDS = SAMPLES_PER_FRAME / 16000
MAX_FRAMES = 1500  # 30 s
HEAD_FILE, UNITS_FILE = "head.pt", "units.model"


def n_frames(n_samples: int | Tensor) -> int | Tensor:
    """Encoder frames that hold audio: ceil(samples / 320), at most 1500."""
    if isinstance(n_samples, Tensor):
        return torch.clamp(torch.div(n_samples + SAMPLES_PER_FRAME - 1, SAMPLES_PER_FRAME,
                                     rounding_mode="floor"), max=MAX_FRAMES)
    return min(math.ceil(n_samples / SAMPLES_PER_FRAME), MAX_FRAMES)


@dataclass
class HeadSizes:
    in_dim: int  # encoder width D
    n_classes: int  # units incl. blank (V)
    hidden_layers: int = 0  # 0: one Linear; 1-2: Linear+GELU blocks before the output Linear
    hidden_dim: int = 256  # width of the hidden layers
    dropout: float = 0.1  # dropout on the encoder features during training


class CtcHead(nn.Module):
    """(B, F, D) encoder output -> (B, F, V) CTC log-probabilities."""

    def __init__(self, sizes: HeadSizes) -> None:
        super().__init__()
        if not 0 <= sizes.hidden_layers <= 2:
            raise ValueError(f"hidden_layers must be 0, 1 or 2, got {sizes.hidden_layers}")
        self.sizes = sizes
        layers: list[nn.Module] = [nn.Dropout(sizes.dropout)]
        width = sizes.in_dim
        for _ in range(sizes.hidden_layers):
            layers += [nn.Linear(width, sizes.hidden_dim), nn.GELU()]
            width = sizes.hidden_dim
        layers.append(nn.Linear(width, sizes.n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.float()).log_softmax(-1)


def ctc_loss(log_probs: Tensor, frame_lens: Tensor, targets: Tensor, target_lens: Tensor,
             reduction: str = "mean_frames") -> Tensor:
    """CTC loss of (B, F, V) log-probs. ``mean_frames``: summed loss / summed frames (a stable
    training scale); ``none``: (B,) negative log-likelihoods; ``sum``: their sum."""
    nll = F.ctc_loss(log_probs.transpose(0, 1), targets.clamp(min=0), frame_lens, target_lens,
                     blank=0, reduction="none", zero_infinity=False)  # (B,)
    if reduction == "none":
        return nll
    finite = torch.where(torch.isfinite(nll), nll, torch.zeros_like(nll))  # infeasible: no grad
    if reduction == "sum":
        return finite.sum()
    return finite.sum() / frame_lens.sum().clamp(min=1)


def pad_features(feats: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """list of (F_i, D) -> (B, F, D) zero-padded, lengths (B,)."""
    lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    return nn.utils.rnn.pad_sequence(list(feats), batch_first=True), lens


def pad_targets(targets: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """list of unit id lists -> (B, U) padded with -1, lengths (B,)."""
    lens = torch.tensor([len(t) for t in targets], dtype=torch.long)
    out = torch.full((len(targets), max(1, int(lens.max()) if len(targets) else 1)), -1, dtype=torch.long)
    for i, t in enumerate(targets):
        out[i, : len(t)] = torch.as_tensor(list(t), dtype=torch.long)
    return out, lens


@torch.no_grad()
def encoder_features(model, waves: Sequence[np.ndarray | Tensor], batch_size: int = 8,
                     dtype: torch.dtype = torch.float32) -> list[Tensor]:
    """Frozen Whisper encoder output of each 16-kHz waveform: (F_i, D) on the CPU, ``dtype``."""
    model.eval()
    out: list[Tensor] = []
    device = next(model.parameters()).device
    enc_dtype = next(model.encoder.parameters()).dtype
    for i in tqdm(range(0, len(waves), batch_size), desc="encoder features", unit="batch", leave=False):
        chunk = waves[i : i + batch_size]
        mel = waves_to_mel(chunk, model.dims.n_mels, device)  # (B, M, 3000)
        enc = model.encoder(mel.to(enc_dtype))  # (B, 1500, D)
        for w, e in zip(chunk, enc):
            out.append(e[: n_frames(len(w))].to("cpu", dtype))
    return out


def save_head(head: CtcHead, out_dir: str | Path, units_path: str | Path, encoder: str) -> Path:
    """Write ``head.pt`` (the units model must already be ``out_dir/units.model``)."""
    path = Path(out_dir) / HEAD_FILE
    with atomic_open(path, "wb", encoding=None) as f:
        torch.save({"sizes": asdict(head.sizes), "state_dict": head.state_dict(),
                    "units": Path(units_path).name, "encoder": str(encoder)}, f)
    return path


def load_head(out_dir: str | Path, device: str | torch.device = "cpu"):
    """(CtcHead in eval mode, CtcUnits, the encoder path it was trained on) from ``out_dir``."""
    from twister_plugin.ctc.units import CtcUnits

    d = Path(out_dir)
    if not (d / HEAD_FILE).is_file():
        raise FileNotFoundError(f"{d / HEAD_FILE}: no trained CTC head (run twister_plugin.bin.ctc_train)")
    state = torch.load(d / HEAD_FILE, map_location="cpu", weights_only=True)
    head = CtcHead(HeadSizes(**state["sizes"]))
    head.load_state_dict(state["state_dict"])
    units = CtcUnits(d / state["units"])
    if units.n_classes != head.sizes.n_classes:
        raise ValueError(f"{d}: head has {head.sizes.n_classes} classes, units {units.n_classes}")
    return head.to(device).eval(), units, state["encoder"]
