"""The Triton row kernel (and the Triton engine's vocabulary split) in Triton's interpreter.

TRITON_INTERPRET=1 must be set before triton is imported, so ``test_in_interpreter`` reruns this
file in a subprocess with it; the other tests here only run in that subprocess. Every op of the
kernel runs in the interpreter except ``range`` over a run-time integer argument (Triton 3.6 with
NumPy 2.x: "only 0-dimensional arrays can be converted to Python scalars"), which is why the
vocabulary width is a compile-time constant of the kernel.
"""
import os
import re
import subprocess
import sys

import pytest
import torch

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
inner = pytest.mark.skipif(not INTERPRETED, reason="runs inside test_in_interpreter")
IGNORE = -1


@pytest.mark.skipif(INTERPRETED, reason="outer test")
def test_in_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ passed, 1 skipped in ", summary), summary  # only this test skipped


def _engines():
    from twister_plugin.kernels.reference import LossSpec, TorchEngine
    from twister_plugin.kernels.triton_ce import TritonEngine
    return LossSpec, TorchEngine, TritonEngine


def _inputs(n, d, v, dtype=torch.float32, **kw):
    from twister_plugin.testing.fused_ce import make_ce_inputs
    x = make_ce_inputs(n, d, v, dtype, ignore_index=IGNORE, **kw)
    return x.hidden.detach(), x.weight.detach(), None if x.bias is None else x.bias.detach(), x


@inner
@pytest.mark.parametrize("n,d,v,chunk,block", [
    (37, 16, 1003, 8, 256),  # 1000 columns in the workspace + a 3-column tail
    (20, 8, 64, 7, 16),  # V a multiple of 8: no tail
    (9, 8, 5, 4, 8),  # V < 8: no split
])
@pytest.mark.parametrize("grad", [True, False])
def test_row_kernel_matches_torch_engine(n, d, v, chunk, block, grad):
    from twister_plugin.kernels.fused_ce import run_chunks
    LossSpec, TorchEngine, TritonEngine = _engines()
    h, w, b, x = _inputs(n, d, v, bias=True, hidden_scale=3.0, seed=v)
    x.targets[: min(n, 3)] = torch.tensor([v - 1, v - 2, 0])[: min(n, 3)]  # tail / first columns
    spec = LossSpec(IGNORE, 0.1, "sum")
    scale = torch.tensor(0.3)
    want = (grad, grad, grad)
    ref = run_chunks(TorchEngine(), h, w, b, x.targets, spec, chunk, want, scale)
    out = run_chunks(TritonEngine(block=block, num_warps=1), h, w, b, x.targets, spec, chunk, want,
                     scale)
    for got, exp in zip(out, ref):
        assert (got is None) == (exp is None)
        if exp is not None:
            assert ((got.float() - exp).norm() / exp.norm()) < 1e-5


@inner
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 3e-3),
                                       (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("eager", [True, False])
def test_public_function_on_the_triton_backend(dtype, tol, reduction, eager):
    from twister_plugin.kernels import FusedCEOptions, fused_linear_cross_entropy
    from twister_plugin.testing.fused_ce import grads_of, reference_ce, rel_err
    _, _, _, x = _inputs(29, 16, 517, dtype, bias=True)
    opts = FusedCEOptions(backend="triton", chunk_size=8, grads_in_forward=eager, row_block=128)
    loss = fused_linear_cross_entropy(x.hidden, x.weight, x.targets, x.bias, IGNORE, 0.1,
                                      reduction, opts)
    (loss * 2.0).backward()
    ref, ref_grads = reference_ce(x, IGNORE, 0.1, reduction, 2.0)
    assert rel_err(loss, ref) < tol
    for g, r in zip(grads_of(x), ref_grads):
        assert g.dtype == dtype and rel_err(g, r) < tol


@inner
def test_all_ignored_extreme_logits_and_fp32_weight_grad():
    from twister_plugin.kernels import FusedCEOptions, fused_linear_cross_entropy
    from twister_plugin.testing.fused_ce import grads_of, reference_ce, rel_err
    opts = FusedCEOptions(backend="triton", chunk_size=6, row_block=64)
    _, _, _, x = _inputs(13, 8, 203, ignore_frac=1.0)
    loss = fused_linear_cross_entropy(x.hidden, x.weight, x.targets, None, IGNORE, 0.1, "mean",
                                      opts)
    loss.backward()
    assert torch.isnan(loss) and all(g.abs().max() == 0 for g in grads_of(x)[:2])
    _, _, _, x = _inputs(13, 8, 203, hidden_scale=1e3)
    opts = FusedCEOptions(backend="triton", chunk_size=6, row_block=64, fp32_weight_grad=True)
    loss = fused_linear_cross_entropy(x.hidden, x.weight, x.targets, None, IGNORE, 0.1, "sum", opts)
    loss.backward()
    ref, ref_grads = reference_ce(x, IGNORE, 0.1, "sum", dtype=torch.float64)
    assert rel_err(loss, ref) < 1e-5
    assert all(rel_err(g, r) < 1e-4 for g, r in zip(grads_of(x)[:2], ref_grads[:2]))
