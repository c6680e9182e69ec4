"""Batched torch monotonic alignment search vs ESPnet's numba ``viterbi_decode``: identical
durations and binarisation loss on random matrices (incl. ties and T_feats == T_text), batch ==
one by one, and TwisterFastSpeech gives the same durations/losses with either search."""
from pathlib import Path

import pytest
import torch
import yaml
from espnet2.gan_tts.jets.alignments import viterbi_decode

from twister_plugin.testing.tts import fastspeech_tiny_batch
from twister_plugin.tts.fastspeech import TwisterFastSpeech
from twister_plugin.tts.mas import AlignmentLengthError, monotonic_alignment_search

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / ".." / "shared" / "data"
TINY = REPO / "egs2" / "twister" / "asr1" / "conf" / "tts" / "fastspeech_tiny.yaml"


def _random_batch(seed: int, ties: bool = False, square: bool = False):
    """6 items, T_text in [1, 40], T_feats in [T_text, T_text + 260] (== T_text if square for
    half the batch): log_p_attn (B, T_feats, T_text) with NaN padding, lengths (B,)."""
    g = torch.Generator().manual_seed(seed)
    tl = torch.randint(1, 41, (6,), generator=g)
    fl = tl + torch.randint(0, 261, (6,), generator=g)
    if square:
        fl[:3] = tl[:3]
    lp = torch.randn(6, int(fl.max()), int(tl.max()), generator=g) * 3
    lp = lp.log_softmax(-1)
    if ties:  # coarse values: many equal scores exercise the tie-breaking
        lp = (lp * 2).round() / 2
    for b in range(6):  # padding must not matter
        lp[b, fl[b]:] = float("nan")
        lp[b, :, tl[b]:] = float("nan")
    return lp, tl, fl


@pytest.mark.parametrize("seed", range(8))
def test_durations_and_bin_loss_equal_espnet(seed):
    lp, tl, fl = _random_batch(seed, ties=seed % 2 == 1, square=seed % 4 < 2)
    ds_ref, bin_ref = viterbi_decode(lp, tl, fl)
    ds, bin_loss = monotonic_alignment_search(lp, tl, fl)
    assert ds.dtype == torch.int64 and ds.shape == (6, lp.size(2))
    assert torch.equal(ds, ds_ref.long())
    assert torch.allclose(bin_loss, bin_ref, rtol=1e-6, atol=1e-6)
    assert torch.equal(ds.sum(1), fl)
    mask = torch.arange(lp.size(2))[None] < tl[:, None]
    assert bool((ds[mask] >= 1).all()) and bool((ds[~mask] == 0).all())


def test_token0_running_sum_is_float32_like_numba():
    """numba sums token 0's scores in float32 (1 + 2e-8 -> 1), the rest in float64: a float64
    running sum would prefer 2 frames for token 0 here, ESPnet gives token 0 one frame."""
    lp = torch.tensor([[[1.0, -5.0], [2e-8, 1e-8], [-5.0, 0.0]]])  # (1, T_feats 3, T_text 2)
    tl, fl = torch.tensor([2]), torch.tensor([3])
    ref = viterbi_decode(lp, tl, fl)[0].long()
    assert ref.tolist() == [[1, 2]]
    assert torch.equal(monotonic_alignment_search(lp, tl, fl)[0], ref)


def test_square_items_get_one_frame_per_token():
    lp, tl, _ = _random_batch(3)
    ds, _ = monotonic_alignment_search(lp[:, : int(tl.max())], tl, tl)
    assert torch.equal(ds, (torch.arange(lp.size(2))[None] < tl[:, None]).long())


def test_batch_equals_items_one_by_one_and_float64_input():
    lp, tl, fl = _random_batch(11)
    ds, bin_loss = monotonic_alignment_search(lp, tl, fl)
    singles = []
    for b in range(6):
        one = lp[b: b + 1, : fl[b], : tl[b]]
        d, bl = monotonic_alignment_search(one, tl[b: b + 1], fl[b: b + 1])
        assert torch.equal(d[0], ds[b, : tl[b]])
        singles.append(bl)
    assert torch.allclose(bin_loss, torch.stack(singles).mean(), rtol=1e-6)
    lp64 = lp.double()  # numba then sums token 0 in float64 too
    assert torch.equal(monotonic_alignment_search(lp64, tl, fl)[0],
                       viterbi_decode(lp64, tl, fl)[0].long())


def test_bin_loss_backpropagates_like_espnet():
    lp, tl, fl = _random_batch(5)
    lp = torch.nan_to_num(lp, nan=-1e4)
    a, b = lp.clone().requires_grad_(), lp.clone().requires_grad_()
    monotonic_alignment_search(a, tl, fl)[1].backward()
    viterbi_decode(b, tl, fl)[1].backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-7)


def test_refused_inputs():
    lp, tl, fl = _random_batch(0)
    with pytest.raises(AlignmentLengthError, match="item 0"):
        monotonic_alignment_search(lp, tl, torch.where(torch.arange(6) == 0, tl - 1, fl))
    with pytest.raises(AlignmentLengthError, match="within the matrix"):
        monotonic_alignment_search(lp, tl + lp.size(2), fl + lp.size(1))
    with pytest.raises(AlignmentLengthError, match="tokens"):
        monotonic_alignment_search(lp, torch.zeros_like(tl), fl)
    with pytest.raises(AlignmentLengthError, match="shape"):
        monotonic_alignment_search(lp[0], tl, fl)
    with pytest.raises(AlignmentLengthError, match="lengths"):
        monotonic_alignment_search(lp, tl[:3], fl)
    conf = yaml.safe_load(TINY.read_text())["tts_conf"]
    with pytest.raises(ValueError, match="mas 'cuda'"):
        TwisterFastSpeech(idim=30, odim=80, **{**conf, "mas": "cuda"})


def test_fastspeech_same_alignment_and_losses_with_either_search():
    conf = {**yaml.safe_load(TINY.read_text())["tts_conf"], "spk_embed_dim": 8,
            "durations_prior": 0.0}  # this batch brings no durations: the beta-binomial prior
    text, tlens, feats, flens, spembs = fastspeech_tiny_batch(DATA, TINY)
    out = {}
    for mas in ("numba", "torch"):
        torch.manual_seed(0)
        model = TwisterFastSpeech(idim=30, odim=80, **{**conf, "mas": mas}).eval()
        hs = model.encode(text, tlens, spembs)
        ds, _, bin_loss = model.align(hs, feats, tlens, flens)
        torch.manual_seed(1)
        loss, stats, _ = model(text, tlens, feats, flens, spembs=spembs)
        out[mas] = (ds, bin_loss, loss, stats)
    (ds_n, bl_n, loss_n, st_n), (ds_t, bl_t, loss_t, st_t) = out["numba"], out["torch"]
    assert ds_t.dtype == ds_n.dtype == torch.int64 and torch.equal(ds_t, ds_n)
    assert torch.equal(ds_t.sum(1), flens)
    assert torch.allclose(bl_t, bl_n, rtol=1e-6) and torch.allclose(loss_t, loss_n, rtol=1e-6)
    assert st_t.keys() == st_n.keys()
    for k in st_n:
        assert st_t[k] == pytest.approx(st_n[k], rel=1e-5)
