"""Fused linear + label-smoothed cross-entropy that never materialises the (N, V) logits.

    loss = F.cross_entropy(hidden @ weight.T + bias, targets, ignore_index=..,
                           label_smoothing=eps, reduction="sum" | "mean")

computed in fp32 (loss, log-sum-exp, matmul accumulation) from bf16 / fp16 / fp32 inputs.
Dimensions: N tokens (rows of ``hidden``), D hidden size, V vocabulary, C rows per chunk.

The rows are processed C at a time: only a (C, V) workspace of logits exists at once. Two
gradient schedules share one chunk loop (``run_chunks``):
  * grads in forward (default on CUDA, as Liger-Kernel does): the forward pass also turns each
    chunk's logits into their gradient and multiplies it into dH, dW (and db); backward only
    scales them by grad_output. 3 matmuls per chunk, no recomputation.
  * recompute (default on CPU): forward keeps only the per-row loss; backward runs the chunk
    loop again with grad_output folded in. 4 matmuls per chunk, less memory between passes.
Grads in forward wins on time (no 4th matmul) at the same peak memory, hence the CUDA default.
How a chunk is computed is an engine (``reference.TorchEngine``: fp32 torch ops, the CPU path;
``triton_ce.TritonEngine``: cuBLAS in the input dtype + a Triton row kernel, the CUDA path).

Reduction "mean" with every target ignored gives nan, like PyTorch, and zero gradients.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from twister_plugin.kernels.reference import LossSpec, TorchEngine
from twister_plugin.kernels.triton_ce import HAVE_TRITON, TritonEngine

REDUCTIONS = ("sum", "mean")


class FusedCEInputError(ValueError):
    """The inputs of fused_linear_cross_entropy do not fit together."""


@dataclass(frozen=True)
class FusedCEOptions:
    backend: str = "auto"  # "auto" (triton on CUDA when installed, else torch), "triton", "torch"
    chunk_size: int | None = None  # rows per chunk; None: from workspace_mb
    workspace_mb: float = 40.0  # size of the (C, V) logits workspace when chunk_size is None
    grads_in_forward: bool | None = None  # None: True for triton, False for torch
    fp32_weight_grad: bool = False  # triton: sum dW over chunks in fp32 (+ a (V, D) fp32 buffer)
    row_block: int | None = None  # triton row kernel: columns per tile (None: row_kernel_config)
    row_warps: int | None = None  # triton row kernel: num_warps (None: row_kernel_config)
    check_targets: bool = True  # raise on targets outside [0, V) (costs one device sync)


def fused_linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
    bias: torch.Tensor | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
    reduction: str = "mean", options: FusedCEOptions | None = None,
) -> torch.Tensor:
    """Scalar loss of ``hidden`` (N, D) projected by ``weight`` (V, D) (+ ``bias`` (V,)) against
    ``targets`` (N,) integer ids; differentiable w.r.t. hidden, weight and bias."""
    opts = options or FusedCEOptions()
    spec = LossSpec(int(ignore_index), float(label_smoothing), reduction)
    _check_shapes(hidden, weight, targets, bias, spec)
    hidden, weight, bias = _common_dtype(hidden, weight, bias)
    targets = targets.long()
    if opts.check_targets:
        _check_target_range(targets, weight.shape[0], spec.ignore_index)
    engine = make_engine(opts, hidden.device)
    eager = opts.grads_in_forward
    if eager is None:
        eager = engine.name == "triton"
    chunk = opts.chunk_size or default_chunk(weight.shape[0], hidden.dtype, engine,
                                             opts.workspace_mb)
    return _FusedLinearCE.apply(hidden.contiguous(), weight.contiguous(), bias,
                                targets.contiguous(), spec, engine, int(chunk), bool(eager))


def make_engine(opts: FusedCEOptions, device: torch.device) -> TorchEngine:
    backend = opts.backend
    if backend == "auto":
        backend = "triton" if device.type == "cuda" and HAVE_TRITON else "torch"
    if backend == "triton":
        return TritonEngine(accum_dtype=torch.float32 if opts.fp32_weight_grad else None,
                            block=opts.row_block, num_warps=opts.row_warps)
    if backend == "torch":
        return TorchEngine()
    raise FusedCEInputError(f"backend must be 'auto', 'triton' or 'torch', got {backend!r}")


def default_chunk(vocab: int, dtype: torch.dtype, engine: TorchEngine, workspace_mb: float) -> int:
    """Rows per chunk so that the (C, V) workspace stays under ``workspace_mb``: a multiple of
    128 once it is that large (cuBLAS picks poor kernels for some sizes, e.g. 448 rows ran the
    logits matmul at half the speed of 384 or 512 on an H100), at least 16 rows."""
    itemsize = torch.empty((), dtype=engine.compute_dtype or dtype).element_size()
    rows = int(workspace_mb * 2**20) // max(1, vocab * itemsize)
    return max(16, rows // 128 * 128 if rows >= 128 else rows)


def run_chunks(engine: TorchEngine, hidden: torch.Tensor, weight: torch.Tensor,
               bias: torch.Tensor | None, targets: torch.Tensor, spec: LossSpec, chunk: int,
               want: tuple[bool, bool, bool], scale: torch.Tensor):
    """The shared chunk loop. ``want`` = which of (dH, dW, db) to compute; ``scale`` (0-dim fp32)
    multiplies the logits gradient. Returns (loss per row (N,) fp32, dH, dW, db or None)."""
    n_rows, vocab = hidden.shape[0], weight.shape[0]
    grad = any(want)
    engine.setup(hidden, weight, bias)
    loss_rows = torch.empty(n_rows, dtype=torch.float32, device=hidden.device)
    work = engine.workspace(min(chunk, n_rows), hidden.device)  # (C, width)
    d_h = torch.empty(hidden.shape, dtype=engine.dtype, device=hidden.device) if want[0] else None
    d_w = d_b = None
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        h_c = hidden[start:stop]  # (C, D)
        logits = engine.logits(h_c, work[: stop - start])  # (C, width)
        span = slice(start, stop)
        engine.rows(span, logits, targets[span], loss_rows[span], spec, grad, scale)
        if want[0]:
            engine.grad_hidden(logits, d_h[start:stop])
        if want[1]:
            d_w = engine.grad_weight(d_w, logits, h_c)
        if want[2]:
            d_b = engine.grad_bias(d_b, logits)
    del work
    if want[1] and d_w is None:  # no rows at all
        d_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
    if want[2] and d_b is None:
        d_b = torch.zeros(vocab, dtype=torch.float32, device=weight.device)
    if grad:
        engine.finish(hidden, d_h, d_w, d_b)
    engine.release()
    return loss_rows, d_h, d_w, d_b


class _FusedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, spec, engine, chunk, eager):
        want = (ctx.needs_input_grad[0], ctx.needs_input_grad[1],
                bias is not None and ctx.needs_input_grad[2])
        device = hidden.device
        count = (targets != spec.ignore_index).sum().float()  # rows that count, as a tensor
        ctx.spec, ctx.engine, ctx.chunk, ctx.want, ctx.count = spec, engine, chunk, want, count
        ctx.eager = eager and any(want)
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        one = torch.ones((), dtype=torch.float32, device=device)
        with torch.autocast(device.type, enabled=False):
            if ctx.eager:
                loss_rows, *grads = run_chunks(engine, hidden, weight, bias, targets, spec, chunk,
                                               want, one)
                ctx.grads = grads
            else:
                loss_rows, *_ = run_chunks(engine, hidden, weight, bias, targets, spec, chunk,
                                           (False, False, False), one)
                ctx.save_for_backward(hidden, weight, bias, targets)
        total = loss_rows.sum()
        return total / count if spec.reduction == "mean" else total

    @staticmethod
    def backward(ctx, grad_out):
        scale = grad_out.detach().float().reshape(())
        if ctx.spec.reduction == "mean":  # all rows ignored: zero gradients, not 0 * inf
            scale = torch.where(ctx.count > 0, scale / ctx.count.clamp(min=1), 0.0)
        if ctx.eager:
            if ctx.grads is None:
                raise RuntimeError("fused_linear_cross_entropy: backward ran twice over the "
                                   "same graph; its gradients were computed once in forward")
            grads, ctx.grads = ctx.grads, None
            torch._foreach_mul_([g for g in grads if g is not None], scale)  # one vectorised pass
        else:
            hidden, weight, bias, targets = ctx.saved_tensors
            with torch.autocast(hidden.device.type, enabled=False):
                _, *grads = run_chunks(ctx.engine, hidden, weight, bias, targets, ctx.spec,
                                       ctx.chunk, ctx.want, scale)
        out = [None if g is None else g.to(dt) for g, dt in zip(grads, ctx.dtypes)]
        return out[0], out[1], out[2], None, None, None, None, None


def _check_shapes(hidden, weight, targets, bias, spec: LossSpec) -> None:
    if hidden.dim() != 2 or weight.dim() != 2:
        raise FusedCEInputError(f"hidden must be (N, D) and weight (V, D); got "
                                f"{tuple(hidden.shape)} and {tuple(weight.shape)}")
    if hidden.shape[1] != weight.shape[1]:
        raise FusedCEInputError(f"hidden size differs: hidden has D={hidden.shape[1]}, "
                                f"weight has D={weight.shape[1]}")
    if targets.dim() != 1 or targets.shape[0] != hidden.shape[0]:
        raise FusedCEInputError(f"targets must be (N,)=({hidden.shape[0]},); "
                                f"got {tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise FusedCEInputError(f"targets must hold integer class ids, got {targets.dtype}")
    if not (hidden.dtype.is_floating_point and weight.dtype.is_floating_point):
        raise FusedCEInputError(f"hidden and weight must be floating point, got {hidden.dtype}, "
                                f"{weight.dtype}")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != weight.shape[0]):
        raise FusedCEInputError(f"bias must be (V,)=({weight.shape[0]},); got {tuple(bias.shape)}")
    devices = {t.device for t in (hidden, weight, targets, bias) if t is not None}
    if len(devices) != 1:
        raise FusedCEInputError(f"all inputs must be on one device, "
                                f"got {sorted(map(str, devices))}")
    if spec.reduction not in REDUCTIONS:
        raise FusedCEInputError(f"reduction must be one of {REDUCTIONS}, got {spec.reduction!r}")
    if not 0.0 <= spec.label_smoothing <= 1.0:
        raise FusedCEInputError(f"label_smoothing must be in [0, 1], got {spec.label_smoothing}")


def _common_dtype(hidden, weight, bias):
    """Autocast's dtype when autocast is on (as F.linear would), else hidden's dtype (as
    Whisper's ``weight.to(x.dtype)`` does); the casts stay differentiable."""
    dev = hidden.device.type
    dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else hidden.dtype
    cast = (lambda t: t if t is None or t.dtype == dtype else t.to(dtype))
    return cast(hidden), cast(weight), cast(bias)


def _check_target_range(targets: torch.Tensor, vocab: int, ignore_index: int) -> None:
    bad = (targets != ignore_index) & ((targets < 0) | (targets >= vocab))
    if bool(bad.any()):
        pos = int(bad.nonzero()[0, 0])
        raise FusedCEInputError(f"target {int(targets[pos])} at row {pos} is outside [0, {vocab}) "
                                f"and is not ignore_index={ignore_index}")
