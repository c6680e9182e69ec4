"""Chunked PyTorch engine for the fused linear + label-smoothed cross-entropy.

An *engine* says how one chunk of rows is processed; the chunk loop itself lives in
``fused_ce.run_chunks`` and is shared by every engine. Dimensions: N tokens, D hidden size,
V vocabulary, C rows in one chunk.

For one chunk the engine (1) writes the logits ``hidden[c] @ weight.T + bias`` into a (C, V)
workspace, (2) turns each row into its loss and, when asked, overwrites the row in place with
its gradient, (3) multiplies that gradient back into the hidden / weight / bias gradients.

``TorchEngine`` is the reference and CPU path: matmuls in fp32 (whatever the input dtype) and
the row loss in plain torch ops. ``triton_ce.TritonEngine`` subclasses it and swaps step (2)
for a Triton kernel and the matmul dtype for the input dtype.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LossSpec:
    ignore_index: int  # target id whose row has no loss and no gradient
    label_smoothing: float  # eps: loss = (1-eps) * nll + eps * mean over the V classes of -log p
    reduction: str  # "sum" or "mean" (mean over rows whose target is not ignore_index)


class TorchEngine:
    """Matmuls in ``compute_dtype`` (None: the input dtype) and the row loss in torch ops.

    ``accum_dtype`` is the dtype in which the weight gradient is summed over chunks
    (None: the compute dtype). The workspace holds the first ``width`` vocabulary columns (all
    V here; TritonEngine keeps a few tail columns aside, see ``finish``).
    """

    name = "torch"
    row_align = 1  # the workspace row stride is padded to a multiple of this many elements

    def __init__(self, compute_dtype: torch.dtype | None = torch.float32,
                 accum_dtype: torch.dtype | None = torch.float32):
        self.compute_dtype = compute_dtype
        self.accum_dtype = accum_dtype
        self.dtype = compute_dtype
        self.w: torch.Tensor | None = None
        self.b: torch.Tensor | None = None
        self.width = 0

    # -- set-up ---------------------------------------------------------------------------
    def setup(self, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.dtype = self.compute_dtype or hidden.dtype
        self.w = weight.to(self.dtype)  # (V, D); no copy when the dtype already matches
        self.b = None if bias is None else bias.to(self.dtype)
        self.width = weight.shape[0]

    def release(self) -> None:
        self.w = self.b = None

    def workspace(self, rows: int, device: torch.device) -> torch.Tensor:
        """A (rows, width) buffer whose row stride is padded to ``row_align`` elements."""
        stride = -(-self.width // self.row_align) * self.row_align
        return torch.empty(rows, stride, dtype=self.dtype, device=device)[:, : self.width]

    # -- one chunk ------------------------------------------------------------------------
    def logits(self, h_c: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """(C, D) hidden rows -> (C, width) logits written into ``out``."""
        h_c, w = h_c.to(self.dtype), self.w[: self.width]
        if self.b is None:
            return torch.mm(h_c, w.t(), out=out)
        return torch.addmm(self.b[: self.width], h_c, w.t(), out=out)

    def rows(self, span: slice, logits: torch.Tensor, targets: torch.Tensor,
             loss_out: torch.Tensor, spec: LossSpec, grad: bool, scale: torch.Tensor) -> None:
        """Per-row loss of rows ``span`` into ``loss_out`` (C,) fp32; with ``grad`` the logits
        become ``scale * (softmax - (1-eps) * onehot - eps/V)`` (zero rows where ignored)."""
        x = logits if logits.dtype == torch.float32 else logits.float()
        vocab = x.shape[1]
        eps = spec.label_smoothing
        valid = targets != spec.ignore_index
        safe = torch.where(valid, targets, 0)[:, None]  # (C, 1)
        lse = torch.logsumexp(x, dim=1)  # (C,)
        loss = lse - (1.0 - eps) * x.gather(1, safe)[:, 0] - eps * x.mean(dim=1)
        loss_out.copy_(torch.where(valid, loss, torch.zeros_like(loss)))
        if not grad:
            return
        g = x.sub_(lse[:, None]).exp_().sub_(eps / vocab)  # in place: x is logits or a copy
        g.scatter_add_(1, safe, torch.full_like(g[:, :1], -(1.0 - eps)))
        g.mul_(scale).masked_fill_(~valid[:, None], 0.0)
        if g is not logits:
            logits.copy_(g)

    def grad_hidden(self, dlogits: torch.Tensor, out: torch.Tensor) -> None:
        """(C, width) @ (width, D) -> (C, D) rows of the hidden gradient (in ``self.dtype``)."""
        _addmm_into(out, dlogits, self.w[: self.width], first=True)

    def grad_weight(self, acc: torch.Tensor | None, dlogits: torch.Tensor,
                    h_c: torch.Tensor) -> torch.Tensor:
        """acc (V, D) += dlogits.T @ h_c, summed in ``accum_dtype``; first chunk allocates it."""
        first = acc is None
        if first:
            acc = torch.empty(self.w.shape, dtype=self.accum_dtype or self.dtype, device=h_c.device)
        _addmm_into(acc[: self.width], dlogits.t(), h_c.to(self.dtype), first)
        return acc

    def grad_bias(self, acc: torch.Tensor | None, dlogits: torch.Tensor) -> torch.Tensor:
        """acc (V,) fp32 += column sums of the logits gradient."""
        if acc is None:
            acc = torch.zeros(self.w.shape[0], dtype=torch.float32, device=dlogits.device)
        acc[: self.width].add_(dlogits.sum(dim=0, dtype=torch.float32))
        return acc

    def finish(self, hidden: torch.Tensor, d_h, d_w, d_b) -> None:
        """After the last chunk: gradient parts not made chunk by chunk (none here)."""


def _addmm_into(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor, first: bool) -> None:
    """acc = a @ b (first) or acc += a @ b, with fp32 accumulation inside the product; acc may
    be fp32 while a, b are bf16 / fp16 (CUDA: one addmm with out_dtype, else a cast copy)."""
    beta = 0.0 if first else 1.0  # beta=0: acc's old (uninitialised) content is not read
    if acc.dtype == a.dtype:
        acc.addmm_(a, b, beta=beta)
    elif acc.is_cuda and acc.dtype == torch.float32:
        torch.addmm(acc, a, b, beta=beta, out_dtype=torch.float32, out=acc)
    elif first:
        acc.copy_(a @ b)
    else:
        acc.add_(a @ b)
