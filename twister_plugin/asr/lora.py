"""LoRA adapters for Whisper's attention projections, with a small, portable delta.

A refined model is moved as ``lora.pth`` (only adapter tensors, a few MB for base) and re-applied
to the same base checkpoint with ``apply_delta``.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``base(x) + scale * x A^T B^T`` with ``base`` frozen. A: (r, in), B: (out, r)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if rank <= 0:
            raise ValueError(f"LoRA rank must be positive, got {rank}")
        self.base = base
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = self.dropout(x) @ self.lora_a.to(x.dtype).T @ self.lora_b.to(x.dtype).T
        return self.base(x) + self.scale * delta


def add_lora(model: nn.Module, rank: int, alpha: float, targets: Iterable[str], dropout: float = 0.0) -> int:
    """Wrap every Linear attribute named in ``targets`` (e.g. query, value) inside attention
    modules; freeze all other parameters. Returns the number of wrapped layers."""
    targets = set(targets)
    wrapped = 0
    for module in list(model.modules()):
        for name in targets:
            child = getattr(module, name, None)
            if isinstance(child, nn.Linear):
                setattr(module, name, LoRALinear(child, rank, alpha, dropout))
                wrapped += 1
    if wrapped == 0:
        raise ValueError(f"no Linear layers named {sorted(targets)} to adapt")
    for pname, p in model.named_parameters():
        p.requires_grad_("lora_" in pname)
    return wrapped


def lora_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Only the adapter tensors (the portable delta)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if ".lora_" in k}


def apply_delta(model: nn.Module, delta: Dict[str, torch.Tensor]) -> None:
    """Load a LoRA delta into a model that has the same adapters (strict on the delta keys)."""
    own = model.state_dict()
    missing = [k for k in delta if k not in own]
    if missing:
        raise ValueError(f"delta has {len(missing)} tensors the model lacks, e.g. {missing[0]}")
    model.load_state_dict(delta, strict=False)


def merge_lora(model: nn.Module) -> None:
    """Fold every adapter into its base weight and put the plain Linear back."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                with torch.no_grad():
                    child.base.weight += child.scale * (child.lora_b @ child.lora_a).to(child.base.weight.dtype)
                setattr(module, name, child.base)
