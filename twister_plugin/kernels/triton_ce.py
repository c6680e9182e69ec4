"""Triton engine: cuBLAS matmuls in the input dtype + one Triton kernel for the row loss.

Per chunk of C rows (N tokens, D hidden, V vocabulary):
  logits   = hidden[c] @ W.T (+ b)         cuBLAS, fp32 accumulation, stored in the input dtype
  rows     = _ce_rows_kernel(logits)        Triton: online log-sum-exp in fp32 over V tiles, the
                                            row loss, then (second pass) the logits gradient
                                            written in place
  dH[c]    = dlogits @ W                    cuBLAS
  dW      += dlogits.T @ hidden[c]          cuBLAS addmm (in the weight dtype, or fp32 on request)

Alignment matters more than anything else here (measured on an H100, bf16, V=51865): when V is
not a multiple of 8, cuBLAS falls back to sm75-era kernels at ~100-140 TFLOP/s for all three
matmuls (Liger-Kernel and plain PyTorch hit this). So the vocabulary is split at the last multiple
of 8 (51864): the chunked matmuls see aligned sizes (nvjet sm90 kernels, 600-720 TFLOP/s) and the
< 8 tail columns are handled for all rows at once (one small matmul before the chunk loop, two
after it, see ``finish``). The workspace row stride is padded to a multiple of 64 elements so
that every row starts 16-byte aligned (vector loads in the row kernel, aligned leading dims).
The row kernel (BLOCK 8192, 16 warps: the best of a 4096-32768 x 4-32 warps sweep) takes ~97 us
for 1024 rows of 51865 bf16 logits, ~2.2 TB/s counting one read and one write.

The kernel runs in Triton's interpreter too (``TRITON_INTERPRET=1`` set before ``import triton``),
which is how the CPU-only CI tests it.
"""
from __future__ import annotations

import torch

from twister_plugin.kernels.reference import LossSpec, TorchEngine, _addmm_into

try:  # Triton is optional: without it the package falls back to the torch engine.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the environment
    triton = None

HAVE_TRITON = triton is not None


TAIL = 8  # tail columns live in an (N, 8) buffer: fewer than 8 of them, padded for alignment

if HAVE_TRITON:
    _LOG2E = tl.constexpr(1.4426950408889634)
    _LN2 = tl.constexpr(0.6931471805599453)

    @triton.jit
    def _ce_rows_kernel(
        main_ptr, main_stride, tail_ptr, tail_stride, targets_ptr, loss_ptr, scale_ptr,
        ignore_index, on_target, uniform,
        N_MAIN: tl.constexpr, N_TAIL: tl.constexpr, COMPUTE_GRAD: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        """One program per row; on_target = 1 - eps, uniform = eps / V, V = N_MAIN + N_TAIL.

        The row's logits are N_MAIN columns of the workspace and N_TAIL (< 8) columns of the
        tail buffer. Pass 1 streams the row once for the log-sum-exp (base 2: one exp2 per
        element, one max reduction per tile). With COMPUTE_GRAD, pass 2 re-reads it (mostly
        from L2) and writes ``scale * (softmax - (1-eps) onehot - eps/V)`` over the logits.
        The sum of the logits (smoothing term) is taken in whichever pass is last. Ignored rows
        only write zeros. N_MAIN is a compile-time constant: one compile per vocabulary, and
        Triton 3.6's interpreter (with NumPy 2.x) cannot loop over a run-time integer argument.
        """
        row = tl.program_id(0).to(tl.int64)
        main_row = main_ptr + row * main_stride
        tail_row = tail_ptr + row * tail_stride
        y = tl.load(targets_ptr + row)
        cols = tl.arange(0, BLOCK)
        tcols = tl.arange(0, 8)
        tmask = tcols < N_TAIL
        out_ty = main_ptr.dtype.element_ty
        if (y != ignore_index) & (y >= 0) & (y < N_MAIN + N_TAIL):
            # the target logit is read first: pass 2 overwrites it, and other warps of this
            # program may get there before a late warp would read it
            z_ptr = tl.where(y < N_MAIN, main_row + y, tail_row + (y - N_MAIN))
            z2 = tl.load(z_ptr).to(tl.float32) * _LOG2E
            run_max = -1.0e30
            run_sum = tl.zeros([BLOCK], dtype=tl.float32)
            run_tot = tl.zeros([BLOCK], dtype=tl.float32)  # sum of logits * log2(e)
            for start in range(0, N_MAIN, BLOCK):
                offs = start + cols
                mask = offs < N_MAIN
                x = tl.load(main_row + offs, mask=mask, other=float("-inf"))
                x = x.to(tl.float32) * _LOG2E
                new_max = tl.maximum(run_max, tl.max(x, axis=0))
                run_sum = run_sum * tl.exp2(run_max - new_max) + tl.exp2(x - new_max)
                run_max = new_max
                if not COMPUTE_GRAD:
                    run_tot += tl.where(mask, x, 0.0)
            x_t = tl.load(tail_row + tcols, mask=tmask, other=float("-inf"))
            x_t = x_t.to(tl.float32) * _LOG2E
            new_max = tl.maximum(run_max, tl.max(x_t, axis=0))
            total = (tl.sum(run_sum, axis=0) * tl.exp2(run_max - new_max)
                     + tl.sum(tl.exp2(x_t - new_max), axis=0))
            lse2 = new_max + tl.log2(total)  # log-sum-exp in base 2
            tail_tot = tl.sum(tl.where(tmask, x_t, 0.0), axis=0)
            if COMPUTE_GRAD:
                scale = tl.load(scale_ptr).to(tl.float32)
                tl.debug_barrier()  # every warp has read z2 and x_t before any overwrite
                for start in range(0, N_MAIN, BLOCK):
                    offs = start + cols
                    mask = offs < N_MAIN
                    x = tl.load(main_row + offs, mask=mask, other=0.0).to(tl.float32)
                    x = x * _LOG2E
                    run_tot += x
                    g = tl.exp2(x - lse2) - uniform - tl.where(offs == y, on_target, 0.0)
                    tl.store(main_row + offs, (g * scale).to(out_ty), mask=mask)
                g_t = (tl.exp2(x_t - lse2) - uniform
                       - tl.where(tcols + N_MAIN == y, on_target, 0.0))
                tl.store(tail_row + tcols, (g_t * scale).to(out_ty), mask=tmask)
            tot2 = tl.sum(run_tot, axis=0) + tail_tot
            loss = _LN2 * (lse2 - on_target * z2 - uniform * tot2)
            tl.store(loss_ptr + row, loss)
        else:
            if COMPUTE_GRAD:
                for start in range(0, N_MAIN, BLOCK):
                    offs = start + cols
                    zeros = tl.zeros([BLOCK], dtype=out_ty)
                    tl.store(main_row + offs, zeros, mask=offs < N_MAIN)
                tl.store(tail_row + tcols, tl.zeros([8], dtype=out_ty), mask=tmask)
            tl.store(loss_ptr + row, 0.0)


def row_kernel_config(width: int) -> tuple[int, int]:
    """(BLOCK, num_warps) for one row of ``width`` logits (8192 and 16 at Whisper's V)."""
    block = min(8192, triton.next_power_of_2(width))
    return block, max(1, min(16, block // 512))


class TritonEngine(TorchEngine):
    """Matmuls in the input dtype (cuBLAS on CUDA), row loss in ``_ce_rows_kernel``.

    ``accum_dtype`` None sums the weight gradient in the weight dtype (as Liger-Kernel does by
    default; each chunk's product is fp32-accumulated, then added once in that dtype);
    ``torch.float32`` keeps an fp32 sum (more memory: a (V, D) fp32 buffer). ``block`` and
    ``num_warps`` override the row kernel's tile and warps (``row_kernel_config``).
    """

    name = "triton"
    row_align = 64

    def __init__(self, accum_dtype: torch.dtype | None = None, block: int | None = None,
                 num_warps: int | None = None):
        if not HAVE_TRITON:
            raise RuntimeError("the triton engine needs the 'triton' package")
        super().__init__(compute_dtype=None, accum_dtype=accum_dtype)
        self.block = block
        self.num_warps = num_warps
        self.tail: torch.Tensor | None = None

    def setup(self, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        """Split the vocabulary at the last multiple of 8; the tail's logits, for every row,
        go to an (N, tail) buffer now (one small matmul instead of one per chunk)."""
        super().setup(hidden, weight, bias)
        vocab = weight.shape[0]
        self.width = vocab - vocab % 8 or vocab
        self.tail = None
        if self.width < vocab:
            w_t = self.w[self.width:]
            buf = torch.empty(hidden.shape[0], TAIL, dtype=self.dtype, device=hidden.device)
            self.tail = buf[:, : vocab - self.width]  # (N, tail)
            if self.b is None:
                torch.mm(hidden, w_t.t(), out=self.tail)
            else:
                torch.addmm(self.b[self.width:], hidden, w_t.t(), out=self.tail)

    def release(self) -> None:
        super().release()
        self.tail = None

    def rows(self, span: slice, logits: torch.Tensor, targets: torch.Tensor,
             loss_out: torch.Tensor, spec: LossSpec, grad: bool, scale: torch.Tensor) -> None:
        n_rows, width = logits.shape
        if n_rows == 0:
            return
        if logits.stride(1) != 1:
            raise ValueError("row kernel needs unit column stride")
        tail = logits if self.tail is None else self.tail[span]
        n_tail = 0 if self.tail is None else tail.shape[1]
        vocab = width + n_tail
        block, warps = row_kernel_config(width)
        _ce_rows_kernel[(n_rows,)](
            logits, logits.stride(0), tail, tail.stride(0), targets, loss_out, scale,
            spec.ignore_index, 1.0 - spec.label_smoothing, spec.label_smoothing / vocab,
            N_MAIN=width, N_TAIL=n_tail, COMPUTE_GRAD=grad, BLOCK=self.block or block,
            num_warps=self.num_warps or warps,
        )

    def finish(self, hidden: torch.Tensor, d_h, d_w, d_b) -> None:
        """Gradients through the tail columns, for all rows at once (the tail buffer now holds
        their logits gradient)."""
        if self.tail is None:
            return
        g, w_t = self.tail, self.w[self.width:]  # (N, tail), (tail, D)
        if d_h is not None:
            d_h.addmm_(g, w_t)
        if d_w is not None:
            _addmm_into(d_w[self.width:], g.t(), hidden.to(self.dtype), first=True)
        if d_b is not None:
            d_b[self.width:] = g.sum(dim=0, dtype=torch.float32)
