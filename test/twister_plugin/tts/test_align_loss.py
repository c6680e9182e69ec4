"""Batched forward-sum loss and beta-binomial prior vs ESPnet JETS's ``ForwardSumLoss`` and
``AlignmentModule._generate_prior``: same values and gradients on random batches with random
lengths, and TwisterFastSpeech gives the same losses with ``align_loss: batched`` or ``espnet``
on real S0150 utterances."""
from pathlib import Path

import pytest
import torch
import yaml
from espnet2.gan_tts.jets.alignments import AlignmentModule
from espnet2.gan_tts.jets.loss import ForwardSumLoss

from twister_plugin.testing.tts import fastspeech_tiny_batch
from twister_plugin.tts.align_loss import (AlignLossInputError, BatchedForwardSumLoss,
                                           BatchedPriorAlignmentModule, beta_binomial_prior,
                                           span_prior)
from twister_plugin.tts.fastspeech import TwisterFastSpeech

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / ".." / "shared" / "data"
TINY = REPO / "egs2" / "twister" / "asr1" / "conf" / "tts" / "fastspeech_tiny.yaml"


def _lengths(seed: int, batch: int = 7):
    """Text lengths in [1, 40], feats lengths in [text, text + 200] (one item with T == N)."""
    g = torch.Generator().manual_seed(seed)
    tl = torch.randint(1, 41, (batch,), generator=g)
    fl = tl + torch.randint(0, 201, (batch,), generator=g)
    fl[1] = tl[1]
    return tl, fl, g


def _random_batch(seed: int):
    """log_p_attn (B, T_feats, T_text) with NaN padding (must not matter) + lengths (B,)."""
    tl, fl, g = _lengths(seed)
    lp = (torch.randn(len(tl), int(fl.max()), int(tl.max()), generator=g) * 3).log_softmax(-1)
    for b in range(len(tl)):
        lp[b, fl[b]:] = float("nan")
        lp[b, :, tl[b]:] = float("nan")
    return lp, tl, fl


def _loss_and_grad(module, lp, tl, fl):
    x = lp.clone().requires_grad_()
    loss = module(x, tl, fl)
    loss.backward()
    return loss, x.grad


@pytest.mark.parametrize("seed", range(6))
def test_loss_and_gradients_equal_espnet(seed):
    lp, tl, fl = _random_batch(seed)
    ref, ref_grad = _loss_and_grad(ForwardSumLoss(), torch.nan_to_num(lp, nan=0.0), tl, fl)
    loss, grad = _loss_and_grad(BatchedForwardSumLoss(), lp, tl, fl)
    assert torch.isfinite(loss) and bool(torch.isfinite(grad).all())
    assert torch.allclose(loss, ref, rtol=1e-5, atol=0)
    assert torch.allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)
    inside = ((torch.arange(lp.size(1))[None, :, None] < fl[:, None, None])
              & (torch.arange(lp.size(2))[None, None, :] < tl[:, None, None]))
    assert bool((grad[~inside] == 0).all())


def test_infeasible_item_counts_zero_like_espnet():
    """An item with fewer frames than tokens has infinite CTC loss: zero_infinity makes it 0
    (and its gradient 0) in both."""
    lp, tl, fl = _random_batch(1)
    fl = fl.clone()
    tl[2], fl[2] = 30, 10
    lp = torch.nan_to_num(lp, nan=-3.0)
    ref, ref_grad = _loss_and_grad(ForwardSumLoss(), lp, tl, fl)
    loss, grad = _loss_and_grad(BatchedForwardSumLoss(), lp, tl, fl)
    assert torch.allclose(loss, ref, rtol=1e-5) and torch.allclose(grad, ref_grad, atol=1e-7)
    assert bool((grad[2] == 0).all())


def test_loss_float64():
    lp, tl, fl = _random_batch(4)
    lp = torch.nan_to_num(lp, nan=0.0).double()
    ref, ref_grad = _loss_and_grad(ForwardSumLoss(), lp, tl, fl)
    loss, grad = _loss_and_grad(BatchedForwardSumLoss(), lp, tl, fl)
    assert loss.dtype == torch.float64
    assert torch.allclose(loss, ref, rtol=1e-10) and torch.allclose(grad, ref_grad, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_prior_equals_espnet(seed):
    tl, fl, _ = _lengths(seed)
    tl[0], fl[0] = 1, 1  # smallest item
    ref = AlignmentModule(4, 4, cache_prior=False)._generate_prior(tl, fl)
    prior = beta_binomial_prior(tl, fl)
    assert prior.dtype == ref.dtype == torch.float32 and prior.shape == ref.shape
    assert torch.equal(torch.isneginf(prior), torch.isneginf(ref))
    finite = torch.isfinite(ref)
    assert bool(torch.isfinite(prior[finite]).all())
    assert torch.allclose(prior[finite], ref[finite], rtol=1e-5, atol=1e-6)
    # each frame's prior is a distribution over k = 0..N (ESPnet drops k = N): sums to <= 1
    assert bool((prior.exp().sum(-1) <= 1 + 1e-5).all())


def test_aligner_same_output_and_state_dict():
    torch.manual_seed(0)
    ref = AlignmentModule(8, 5)
    new = BatchedPriorAlignmentModule(8, 5)
    new.load_state_dict(ref.state_dict())
    tl, fl, g = _lengths(7, batch=3)
    hs, ys = torch.randn(3, int(tl.max()), 8, generator=g), torch.randn(3, int(fl.max()), 5,
                                                                       generator=g)
    mask = torch.arange(int(tl.max()))[None] >= tl[:, None]
    a, b = ref(hs, ys, tl, fl, mask), new(hs, ys, tl, fl, mask)
    assert torch.equal(torch.isneginf(a), torch.isneginf(b))
    assert torch.allclose(a[torch.isfinite(a)], b[torch.isfinite(a)], rtol=1e-5, atol=1e-5)


def test_refused_inputs():
    lp, tl, fl = _random_batch(0)
    loss = BatchedForwardSumLoss()
    with pytest.raises(AlignLossInputError, match="item 0"):
        loss(lp, torch.where(torch.arange(7) == 0, 0, tl), fl)
    with pytest.raises(AlignLossInputError, match="within the matrix"):
        loss(lp, tl, fl + lp.size(1))
    with pytest.raises(AlignLossInputError, match="shape"):
        loss(lp[0], tl, fl)
    with pytest.raises(AlignLossInputError, match="lengths"):
        loss(lp, tl[:3], fl)
    with pytest.raises(AlignLossInputError, match="item 1"):
        beta_binomial_prior(tl, torch.where(torch.arange(7) == 1, 0, fl))
    with pytest.raises(AlignLossInputError, match="lengths"):
        beta_binomial_prior(tl[None], fl[None])
    conf = yaml.safe_load(TINY.read_text())["tts_conf"]
    with pytest.raises(ValueError, match="align_loss 'cuda'"):
        TwisterFastSpeech(idim=30, odim=80, **{**conf, "align_loss": "cuda"})


def test_fastspeech_same_losses_and_gradients_with_either_option():
    conf = {**yaml.safe_load(TINY.read_text())["tts_conf"], "spk_embed_dim": 8,
            "durations_prior": 0.0}  # the beta-binomial prior, which both options build
    text, tlens, feats, flens, spembs = fastspeech_tiny_batch(DATA, TINY)
    out = {}
    for option in ("espnet", "batched"):
        torch.manual_seed(0)
        model = TwisterFastSpeech(idim=30, odim=80, **{**conf, "align_loss": option})
        torch.manual_seed(1)
        loss, stats, _ = model(text, tlens, feats, flens, spembs=spembs)
        loss.backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        out[option] = (loss, stats, grads, model.state_dict().keys())
    (loss_e, st_e, gr_e, keys_e), (loss_b, st_b, gr_b, keys_b) = out["espnet"], out["batched"]
    assert keys_e == keys_b  # checkpoints load into either option
    assert torch.allclose(loss_b, loss_e, rtol=1e-5)
    assert st_b.keys() == st_e.keys()
    for k in st_e:
        assert st_b[k] == pytest.approx(st_e[k], rel=1e-5)
    assert st_e["align_loss"] > 0
    assert gr_b.keys() == gr_e.keys() and "aligner.t_conv1.weight" in gr_b
    for k in gr_e:
        assert torch.allclose(gr_b[k], gr_e[k], rtol=1e-4, atol=1e-6), k


def test_span_prior_prefers_the_tokens_whose_span_holds_the_frame():
    durs = torch.tensor([[2, 3, 5], [4, 4, 0]])
    tl, fl = torch.tensor([3, 2]), torch.tensor([10, 16])  # item 1: spans stretched x2
    prior = span_prior(durs, tl, fl, sigma=1.0)
    assert prior.shape == (2, 16, 3)
    assert prior[0].argmax(-1)[:10].tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    assert prior[1, :, :2].argmax(-1).tolist() == [0] * 8 + [1] * 8
    inside = torch.logsumexp(prior[0, :10], -1)  # a distribution over tokens at every frame
    torch.testing.assert_close(inside, torch.zeros(10))
    assert torch.isinf(prior[0, 10:]).all() and torch.isinf(prior[1, :, 2]).all()
    # a frame one frame away from a span costs -0.5 (1/sigma)^2 more than one inside it
    wide = span_prior(durs, tl, fl, sigma=4.0)
    assert float(wide[0, 0, 1] - wide[0, 0, 0]) > float(prior[0, 0, 1] - prior[0, 0, 0])
    with pytest.raises(AlignLossInputError, match="sigma"):
        span_prior(durs, tl, fl, sigma=0.0)
