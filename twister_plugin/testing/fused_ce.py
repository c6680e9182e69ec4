"""Test and benchmark helpers for the fused linear + cross-entropy kernels: random inputs and the
fp32 PyTorch reference (loss and gradients). N tokens, D hidden size, V vocabulary."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class CEInputs:
    hidden: torch.Tensor  # (N, D), requires grad
    weight: torch.Tensor  # (V, D), requires grad
    targets: torch.Tensor  # (N,) int64; ignored rows hold ignore_index
    bias: torch.Tensor | None  # (V,) or None


def make_ce_inputs(n: int, d: int, v: int, dtype: torch.dtype = torch.float32,
                   device: str | torch.device = "cpu", *, ignore_frac: float = 0.1,
                   ignore_index: int = -1, bias: bool = False, hidden_scale: float = 1.0,
                   seed: int = 0) -> CEInputs:
    """Unit-variance hidden rows, weight rows of norm ~2 (logit std ~2), ``ignore_frac`` of
    the targets set to ``ignore_index``."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=gen) * hidden_scale
    w = torch.randn(v, d, generator=gen) * (2.0 / d**0.5)
    y = torch.randint(0, v, (n,), generator=gen)
    y[torch.rand(n, generator=gen) < ignore_frac] = ignore_index
    b = torch.randn(v, generator=gen) * 0.5 if bias else None
    leaf = (lambda t: None if t is None else t.to(device=device, dtype=dtype).requires_grad_())
    return CEInputs(leaf(h), leaf(w), y.to(device), leaf(b))


def reference_ce(x: CEInputs, ignore_index: int, label_smoothing: float, reduction: str,
                 grad_scale: float = 1.0, dtype: torch.dtype = torch.float32):
    """(loss, [dH, dW, db]) of F.cross_entropy on ``dtype`` copies of the inputs; the backward
    pass starts from ``grad_scale``."""
    leaves = [None if t is None else t.detach().to(dtype).requires_grad_()
              for t in (x.hidden, x.weight, x.bias)]
    h, w, b = leaves
    logits = h @ w.t() + (b if b is not None else 0.0)
    loss = F.cross_entropy(logits, x.targets, ignore_index=ignore_index,
                           label_smoothing=label_smoothing, reduction=reduction)
    (loss * grad_scale).backward()
    return loss.detach(), [None if t is None else t.grad for t in leaves]


def grads_of(x: CEInputs) -> list[torch.Tensor | None]:
    return [None if t is None else t.grad for t in (x.hidden, x.weight, x.bias)]


def clear_grads(x: CEInputs) -> None:
    for t in (x.hidden, x.weight, x.bias):
        if t is not None:
            t.grad = None


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    """||a - ref|| / ||ref|| in fp64 (nan if either holds a nan)."""
    a, ref = a.detach().double(), ref.detach().double()
    return float((a - ref).norm() / ref.norm().clamp(min=1e-30))
