"""Train the CTC head alone on a frozen Whisper encoder: features are computed once, then the
head (a few hundred thousand weights) trains in seconds to minutes.

``fit_head(features, targets, sizes, cfg)`` is the loop; ``train_ctc(texts, waves, model, out,
cfg)`` does the whole job: units from the texts, features, head, files under ``out``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from twister_plugin.ctc.head import (
    UNITS_FILE, CtcHead, HeadSizes, ctc_loss, encoder_features, n_frames, pad_features,
    pad_targets, save_head,
)
from twister_plugin.ctc.units import CtcUnits, UnitsConfig, train_units
from twister_plugin.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadTrainConfig:
    epochs: int = 30  # passes over the training utterances
    batch_size: int = 32  # utterances per step
    lr: float = 2e-3  # AdamW learning rate (cosine decay to 5% over all steps)
    weight_decay: float = 0.01  # AdamW weight decay
    hidden_layers: int = 0  # 0: Linear head; 1-2: small GELU layers before it
    hidden_dim: int = 256  # width of those layers
    dropout: float = 0.1  # dropout on the encoder features
    seed: int = 0  # shuffling and initialisation
    device: str = "cpu"  # where the head trains (features stay on the CPU until batched)
    units: UnitsConfig = field(default_factory=UnitsConfig)  # sentencepiece options


def _order(n: int, batch_size: int, gen: torch.Generator) -> list[list[int]]:
    perm = torch.randperm(n, generator=gen).tolist()
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def fit_head(features: Sequence[torch.Tensor], targets: Sequence[Sequence[int]], sizes: HeadSizes,
             cfg: HeadTrainConfig) -> tuple[CtcHead, list[float]]:
    """Train a head on (F_i, D) features and unit-id targets; return it and the epoch losses
    (CTC negative log-likelihood per frame, training utterances)."""
    if len(features) != len(targets) or not features:
        raise ValueError(f"want as many targets as features (> 0), got {len(targets)} and {len(features)}")
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    head = CtcHead(sizes).to(cfg.device).train()
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-len(features) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(s, steps) / max(steps, 1))))
    history: list[float] = []
    for _ in tqdm(range(cfg.epochs), desc="ctc head", unit="epoch", leave=False):
        total, frames = 0.0, 0
        for batch in _order(len(features), cfg.batch_size, gen):
            x, x_lens = pad_features([features[i] for i in batch])  # (B, F, D)
            y, y_lens = pad_targets([targets[i] for i in batch])  # (B, U)
            logp = head(x.to(cfg.device))  # (B, F, V)
            loss = ctc_loss(logp, x_lens.to(cfg.device), y.to(cfg.device), y_lens.to(cfg.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * int(x_lens.sum())
            frames += int(x_lens.sum())
        history.append(total / max(frames, 1))
    return head.eval(), history


def train_ctc(texts: Sequence[str], waves: Sequence[np.ndarray], model, out: str | Path,
              cfg: HeadTrainConfig, encoder_name: str = "", features: Sequence[torch.Tensor] | None = None,
              ) -> tuple[CtcHead, CtcUnits, dict]:
    """Units + features (unless given: :func:`encoder_features` of ``waves``) + head; writes
    ``units.model``, ``head.pt``, ``train.json`` in ``out``."""
    out = Path(out)
    units = CtcUnits(train_units(texts, out / UNITS_FILE, cfg.units))
    targets = [units.encode(t) for t in texts]
    feats = list(features) if features is not None else encoder_features(model, waves)
    feasible = [i for i, (f, t) in enumerate(zip(feats, targets)) if len(t) <= f.shape[0]]
    if len(feasible) < len(feats):
        logger.warning("%d of %d utterances have more units than frames; left out of training",
                       len(feats) - len(feasible), len(feats))
    sizes = HeadSizes(in_dim=feats[0].shape[-1], n_classes=units.n_classes,
                      hidden_layers=cfg.hidden_layers, hidden_dim=cfg.hidden_dim, dropout=cfg.dropout)
    head, history = fit_head([feats[i] for i in feasible], [targets[i] for i in feasible], sizes, cfg)
    save_head(head, out, out / UNITS_FILE, encoder_name)
    info = {"n_utts": len(feasible), "n_left_out": len(feats) - len(feasible),
            "n_classes": units.n_classes, "frames": int(sum(n_frames(len(w)) for w in waves)),
            "loss_per_frame": [round(x, 5) for x in history], "config": asdict(cfg)}
    atomic_write_text(out / "train.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    logger.info("CTC head: %d utts, %d classes, loss/frame %.3f -> %.3f; wrote %s", len(feasible),
                units.n_classes, history[0], history[-1], out)
    return head, units, info
