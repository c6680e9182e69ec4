"""The chunked PyTorch path of fused_linear_cross_entropy against F.cross_entropy (CPU)."""
import math

import pytest
import torch
import torch.nn.functional as F

from twister_plugin.kernels import FusedCEInputError, FusedCEOptions, fused_linear_cross_entropy
from twister_plugin.kernels.fused_ce import default_chunk
from twister_plugin.kernels.reference import TorchEngine
from twister_plugin.testing.fused_ce import grads_of, make_ce_inputs, reference_ce, rel_err

IGNORE = -1


def run(x, reduction="sum", eps=0.1, grad_scale=0.7, **opts):
    opts.setdefault("backend", "torch")
    loss = fused_linear_cross_entropy(x.hidden, x.weight, x.targets, x.bias, IGNORE, eps,
                                      reduction, FusedCEOptions(**opts))
    (loss * grad_scale).backward()
    return loss.detach(), grads_of(x)


def assert_close(x, loss, grads, reduction="sum", eps=0.1, tol=2e-5, grad_scale=0.7):
    ref, ref_grads = reference_ce(x, IGNORE, eps, reduction, grad_scale, dtype=torch.float64)
    assert rel_err(loss, ref) < tol
    for g, r in zip(grads, ref_grads):
        assert (g is None) == (r is None)
        if r is not None:
            assert g.dtype == x.hidden.dtype
            assert rel_err(g, r) < tol


@pytest.mark.parametrize("n,d,v,chunk,bias", [
    (37, 16, 1003, 8, True),  # ragged: N not a multiple of the chunk, odd V
    (64, 8, 51865, 24, False),  # Whisper's vocabulary at a tiny hidden size
    (130, 24, 517, 64, True),
    (5, 4, 3, 16, False),  # one chunk larger than N
])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("grads_in_forward", [False, True])
def test_matches_cross_entropy(n, d, v, chunk, bias, reduction, grads_in_forward):
    x = make_ce_inputs(n, d, v, bias=bias, seed=n + v, ignore_index=IGNORE)
    loss, grads = run(x, reduction, chunk_size=chunk, grads_in_forward=grads_in_forward)
    assert_close(x, loss, grads, reduction)


@pytest.mark.parametrize("eps", [0.0, 1.0])
def test_smoothing_extremes(eps):
    x = make_ce_inputs(20, 8, 101, ignore_index=IGNORE)
    loss, grads = run(x, "mean", eps=eps, chunk_size=6)
    assert_close(x, loss, grads, "mean", eps=eps)


def test_chunk_size_does_not_change_the_result():
    results = []
    for chunk in (1, 7, 50):
        x = make_ce_inputs(50, 8, 211, ignore_index=IGNORE)
        results.append(run(x, chunk_size=chunk))
    for loss, grads in results[1:]:
        assert rel_err(loss, results[0][0]) < 1e-6
        assert all(rel_err(g, r) < 1e-5 for g, r in zip(grads[:2], results[0][1][:2]))


def test_all_ignored():
    x = make_ce_inputs(12, 8, 97, ignore_frac=1.0, ignore_index=IGNORE)
    loss, grads = run(x, "sum", chunk_size=5)
    assert loss.item() == 0.0
    assert all(g.abs().max().item() == 0.0 for g in grads[:2])
    # mean over no tokens: nan like PyTorch, but zero (not nan) gradients
    x = make_ce_inputs(12, 8, 97, ignore_frac=1.0, ignore_index=IGNORE)
    ref = F.cross_entropy(x.hidden @ x.weight.t(), x.targets, ignore_index=IGNORE,
                          label_smoothing=0.1)
    loss, grads = run(x, "mean", chunk_size=5)
    assert math.isnan(ref.item()) and math.isnan(loss.item())
    assert all(g.abs().max().item() == 0.0 for g in grads[:2])


def test_no_rows():
    x = make_ce_inputs(0, 8, 97, ignore_index=IGNORE)
    loss, grads = run(x, "sum")
    assert loss.item() == 0.0 and grads[0].shape == (0, 8)
    assert grads[1].abs().max().item() == 0.0


def test_extreme_logits():
    x = make_ce_inputs(40, 16, 301, hidden_scale=1e3, ignore_index=IGNORE)  # logits ~ 1e3..1e4
    loss, grads = run(x, "sum", chunk_size=16)
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads[:2])
    assert_close(x, loss, grads, tol=1e-4)  # fp32 arithmetic on logits ~1e4


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs(dtype):
    x = make_ce_inputs(45, 16, 1003, dtype, bias=True, ignore_index=IGNORE)
    loss, grads = run(x, "mean", chunk_size=16)
    assert loss.dtype == torch.float32  # computed in fp32 whatever the inputs
    assert_close(x, loss, grads, "mean", tol=1e-2 if dtype == torch.bfloat16 else 2e-3)


def test_mixed_dtypes_and_autocast():
    x = make_ce_inputs(30, 16, 257, ignore_index=IGNORE)
    h16 = x.hidden.detach().bfloat16().requires_grad_()
    loss = fused_linear_cross_entropy(h16, x.weight, x.targets, ignore_index=IGNORE)
    loss.backward()  # weight is cast to the hidden dtype, as Whisper's decoder does
    assert h16.grad.dtype == torch.bfloat16 and x.weight.grad.dtype == torch.float32
    x.weight.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = fused_linear_cross_entropy(x.hidden, x.weight, x.targets, ignore_index=IGNORE)
    loss.backward()
    assert x.hidden.grad.dtype == torch.float32 and x.weight.grad.dtype == torch.float32
    ref, _ = reference_ce(x, IGNORE, 0.0, "mean")
    assert rel_err(loss, ref) < 2e-2


def test_partial_grads_and_no_grad():
    x = make_ce_inputs(30, 16, 257, ignore_index=IGNORE)
    x.weight.requires_grad_(False)
    for eager in (False, True):
        x.hidden.grad = None
        loss, grads = run(x, "sum", chunk_size=8, grads_in_forward=eager)
        assert grads[1] is None
        ref, ref_grads = reference_ce(x, IGNORE, 0.1, "sum", 0.7)
        assert rel_err(grads[0], ref_grads[0]) < 2e-5
    with torch.no_grad():
        loss = fused_linear_cross_entropy(x.hidden, x.weight, x.targets, ignore_index=IGNORE)
    assert not loss.requires_grad


def test_backward_twice_in_eager_mode_is_refused():
    x = make_ce_inputs(10, 8, 50, ignore_index=IGNORE)
    opts = FusedCEOptions(backend="torch", grads_in_forward=True)
    loss = fused_linear_cross_entropy(x.hidden, x.weight, x.targets, ignore_index=IGNORE,
                                      options=opts)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward ran twice"):
        loss.backward()


def test_default_chunk_follows_the_workspace_budget():
    eng = TorchEngine()
    assert default_chunk(51865, torch.bfloat16, eng, 48.0) == 128  # fp32 workspace: 242 rows
    assert default_chunk(1003, torch.float32, eng, 1.0) == 256
    assert default_chunk(10**4, torch.float32, eng, 1.0) == 26
    assert default_chunk(10**9, torch.float32, eng, 1.0) == 16


@pytest.mark.parametrize("change,match", [
    (dict(hidden=torch.randn(4, 3)), "hidden size differs"),
    (dict(hidden=torch.randn(2, 4, 8)), r"hidden must be \(N, D\)"),
    (dict(targets=torch.zeros(5, dtype=torch.long)), r"targets must be \(N,\)"),
    (dict(targets=torch.zeros(4)), "integer class ids"),
    (dict(targets=torch.tensor([0, 1, 20, 2])), "target 20 at row 2 is outside"),
    (dict(targets=torch.tensor([0, -5, 1, 2])), "target -5 at row 1"),
    (dict(bias=torch.zeros(19)), r"bias must be \(V,\)"),
    (dict(reduction="none"), "reduction must be one of"),
    (dict(label_smoothing=1.5), r"label_smoothing must be in \[0, 1\]"),
    (dict(options=FusedCEOptions(backend="cuda")), "backend must be"),
])
def test_refused_inputs(change, match):
    args = dict(hidden=torch.randn(4, 8), weight=torch.randn(20, 8),
                targets=torch.tensor([0, 1, -1, 19]), ignore_index=-1)
    args.update(change)
    with pytest.raises(FusedCEInputError, match=match):
        fused_linear_cross_entropy(**args)
