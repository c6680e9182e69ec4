"""Batched forward-sum loss and beta-binomial alignment prior, on the device of their inputs.

Drop-ins for ESPnet JETS's ``ForwardSumLoss`` (``espnet2.gan_tts.jets.loss``: one
``F.ctc_loss`` per utterance) and ``AlignmentModule._generate_prior``
(``espnet2.gan_tts.jets.alignments``: scipy ``betabinom.logpmf`` per utterance on the host,
cached per (T_feats, T_text), copied to the device every step). Here both are one batched
torch call, so nothing leaves the device.

Shapes: B batch, T frames (T_feats), N text tokens (T_text).
``log_p_attn`` (B, T, N) log-probabilities; entries beyond an item's lengths are ignored.

Exactness:
- loss: ESPnet pads a blank column of log(1/e) in front, log-softmaxes each item's
  (T_b, N_b + 1) block, and averages ``F.ctc_loss(reduction="mean", zero_infinity=True)``
  (= nll / N_b for a batch of one) over the B items. ``reduction="mean"`` over the padded
  batch is exactly mean_b(nll_b / N_b); padding columns are set to -1e4 (exp() == 0 in float32,
  finite for ctc_loss's backward) before the softmax, so each item is normalised over its own
  N_b + 1 columns.
- prior: item b, frame t (0-based), token k: logpmf of BetaBinomial(n=N_b, a=t+1, b=T_b-t) at
  k (k < N_b, as ESPnet: k = N_b is never used), in float64 via lgamma, then float32 with -inf
  outside the item; scipy's betaln differs from the lgamma form in the last float64 digits
  only, well below float32 resolution.

Usage (CPU/GPU timing vs ESPnet, fwd+bwd, prints JSON):
    python -m twister_plugin.tts.align_loss --device cpu --batch 47 --text 60 --feats 400
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from espnet2.gan_tts.jets.alignments import AlignmentModule

BLANK_LOG_PROB = -1.0  # ESPnet's blank_prob = e^-1, log(e^-1)
# padding tokens: exp() is exactly 0 after the softmax (so each item is normalised over its own
# columns), yet finite (-inf there makes ctc_loss's backward NaN)
PAD_LOG_PROB = -1.0e4


class AlignLossInputError(ValueError):
    """Inputs with inconsistent shapes or lengths outside the matrix."""


def _check(name: str, log_p_attn: torch.Tensor | None, text_lengths: torch.Tensor,
           feats_lengths: torch.Tensor) -> None:
    if text_lengths.dim() != 1 or feats_lengths.shape != text_lengths.shape:
        raise AlignLossInputError(
            f"{name}: want (B,) text and feats lengths, got text {tuple(text_lengths.shape)}, "
            f"feats {tuple(feats_lengths.shape)}")
    if log_p_attn is not None:
        if log_p_attn.dim() != 3 or log_p_attn.size(0) != text_lengths.size(0):
            raise AlignLossInputError(
                f"{name}: log_p_attn must be (B={text_lengths.size(0)}, T_feats, T_text), got "
                f"shape {tuple(log_p_attn.shape)}")
        T, N = log_p_attn.shape[1:]
    else:
        T, N = int(feats_lengths.max()), int(text_lengths.max())
    for b, (n, t) in enumerate(zip(text_lengths.tolist(), feats_lengths.tolist())):
        if not (1 <= n <= N and 1 <= t <= T):
            raise AlignLossInputError(
                f"{name}: item {b} has {n} tokens and {t} frames (matrix {T} frames x {N} "
                "tokens); need both >= 1 and within the matrix")


def beta_binomial_prior(text_lengths: torch.Tensor, feats_lengths: torch.Tensor,
                        w: float = 1.0) -> torch.Tensor:
    """(B,) lengths -> log prior (B, max T, max N) float32 on text_lengths' device, -inf outside
    each item; equals ESPnet's ``AlignmentModule._generate_prior``."""
    _check("beta_binomial_prior", None, text_lengths, feats_lengths)
    dev = text_lengths.device
    n = text_lengths.to(dev, torch.float64)[:, None, None]  # (B, 1, 1)
    T_b = feats_lengths.to(dev, torch.float64)[:, None, None]  # (B, 1, 1)
    T, N = int(feats_lengths.max()), int(text_lengths.max())
    t = torch.arange(T, device=dev, dtype=torch.float64)[None, :, None]  # (1, T, 1)
    k = torch.arange(N, device=dev, dtype=torch.float64)[None, None, :]  # (1, 1, N)
    inside = (t < T_b) & (k < n)  # (B, T, N)
    a = w * (t + 1.0)  # (1, T, 1)
    b = (w * (T_b - t)).clamp(min=w)  # (B, T, 1); clamped only outside the item
    lg = torch.lgamma
    log_comb = lg(n + 1) - lg(k + 1) - lg((n - k).clamp(min=0.0) + 1)  # (B, 1, N)
    log_beta_num = lg(k + a) + lg(n - k + b) - lg(n + a + b)  # (B, T, N)
    log_beta_den = lg(a) + lg(b) - lg(a + b)  # (B, T, 1)
    prior = log_comb + log_beta_num - log_beta_den
    return prior.masked_fill(~inside, -math.inf).float()


def token_spans(durations: torch.Tensor, text_lengths: torch.Tensor,
                feats_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Durations (B, >= max N) -> (start, end) frame of each token (B, max N), float, on
    text_lengths' device: rescaled so that each item's tokens fill exactly its feats_lengths
    frames (a dump's durations may be off by a frame from the fbank); empty beyond its text."""
    dev = text_lengths.device
    N = int(text_lengths.max())
    d = durations[:, :N].to(dev, torch.float32).clamp(min=0)
    d = d.masked_fill(torch.arange(N, device=dev)[None] >= text_lengths[:, None], 0.0)
    ends = torch.cumsum(d, 1)  # (B, N)
    scale = feats_lengths.to(dev, torch.float32)[:, None] / ends[:, -1:].clamp(min=1e-6)
    return (ends - d) * scale, ends * scale


def span_prior(durations: torch.Tensor, text_lengths: torch.Tensor, feats_lengths: torch.Tensor,
               sigma: float) -> torch.Tensor:
    """Given durations (B, N) (e.g. Whisper's, ``twister_plugin.tts.whisper_align``) -> log prior
    (B, max T, max N), -inf outside each item: frame t prefers the tokens whose span (durations
    rescaled to the item's frames) holds it, falling off as a Gaussian of the distance to the span
    (``sigma`` frames); normalised over the item's tokens at each frame, like the beta-binomial."""
    _check("span_prior", None, text_lengths, feats_lengths)
    if sigma <= 0:
        raise AlignLossInputError(f"span_prior: sigma must be > 0, got {sigma}")
    dev = text_lengths.device
    T, N = int(feats_lengths.max()), int(text_lengths.max())
    starts, ends = token_spans(durations, text_lengths, feats_lengths)
    t = torch.arange(T, device=dev, dtype=torch.float32)[None, :, None] + 0.5  # frame centres
    dist = (starts[:, None, :] - t).clamp(min=0) + (t - ends[:, None, :]).clamp(min=0)
    score = -0.5 * (dist / sigma) ** 2  # (B, T, N)
    token_pad = torch.arange(N, device=dev)[None, None, :] >= text_lengths[:, None, None]
    frame_pad = torch.arange(T, device=dev)[None, :, None] >= feats_lengths[:, None, None]
    prior = torch.log_softmax(score.masked_fill(token_pad, -math.inf), dim=-1)
    return prior.masked_fill(token_pad | frame_pad, -math.inf)


class BatchedPriorAlignmentModule(AlignmentModule):
    """ESPnet's AlignmentModule (same parameters, same state_dict) whose prior is built by
    ``beta_binomial_prior`` on the lengths' device instead of scipy on the host, or is given for
    one call (``with module.given_prior(p): module(...)``, e.g. a ``span_prior``)."""

    _given: torch.Tensor | None = None

    @contextlib.contextmanager
    def given_prior(self, prior: torch.Tensor):
        self._given = prior
        try:
            yield self
        finally:
            self._given = None

    def _generate_prior(self, text_lengths: torch.Tensor, feats_lengths: torch.Tensor,
                        w: float = 1) -> torch.Tensor:
        if self._given is not None:
            return self._given
        return beta_binomial_prior(text_lengths, feats_lengths, w)


class BatchedForwardSumLoss(torch.nn.Module):
    """ESPnet's ForwardSumLoss in one ``F.ctc_loss`` call over the batch."""

    def forward(self, log_p_attn: torch.Tensor, ilens: torch.Tensor,
                olens: torch.Tensor) -> torch.Tensor:
        """log_p_attn (B, T, N), ilens = text lengths (B,), olens = feats lengths (B,) -> ()."""
        _check("BatchedForwardSumLoss", log_p_attn, ilens, olens)
        B, T, N = log_p_attn.shape
        dev = log_p_attn.device
        ilens, olens = ilens.to(dev).long(), olens.to(dev).long()
        frame_pad = torch.arange(T, device=dev)[None, :, None] >= olens[:, None, None]  # (B,T,1)
        text_pad = torch.arange(N, device=dev)[None, None, :] >= ilens[:, None, None]  # (B,1,N)
        lp = log_p_attn.masked_fill(frame_pad, 0.0).masked_fill(text_pad, PAD_LOG_PROB)
        lp = F.pad(lp, (1, 0), value=BLANK_LOG_PROB)  # (B, T, N + 1), blank = column 0
        lp = F.log_softmax(lp, dim=-1).transpose(0, 1)  # (T, B, N + 1) as ctc_loss wants
        targets = torch.arange(1, N + 1, device=dev).expand(B, N).contiguous()  # (B, N)
        return F.ctc_loss(lp, targets, input_lengths=olens, target_lengths=ilens,
                          reduction="mean", zero_infinity=True)


def _bench() -> None:
    import argparse
    import json
    import time

    from espnet2.gan_tts.jets.loss import ForwardSumLoss

    from twister_plugin.tts.mas import bench_batch

    p = argparse.ArgumentParser(description="Time batched vs ESPnet forward-sum loss + prior.")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=47)
    p.add_argument("--text", type=int, default=60)
    p.add_argument("--feats", type=int, default=400)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    lp0, tl, fl = bench_batch(a.batch, a.text, a.feats, a.device)

    def sync():
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(fn) -> float:
        times = []
        for _ in range(a.repeats):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return round(sorted(times)[len(times) // 2], 4)

    def loss_step(mod):
        lp = lp0.clone().requires_grad_()
        mod(lp, tl, fl).backward()

    esp_prior = AlignmentModule(8, 8, cache_prior=False)
    cached = AlignmentModule(8, 8)
    cached._generate_prior(tl.cpu(), fl.cpu())  # fill its cache
    out = dict(device=a.device, batch=a.batch, text=a.text, feats=a.feats,
               espnet_loss_s=timed(lambda: loss_step(ForwardSumLoss())),
               batched_loss_s=timed(lambda: loss_step(BatchedForwardSumLoss())),
               espnet_prior_uncached_s=timed(
                   lambda: esp_prior._generate_prior(tl.cpu(), fl.cpu()).to(a.device)),
               espnet_prior_cached_s=timed(
                   lambda: cached._generate_prior(tl.cpu(), fl.cpu()).to(a.device)),
               batched_prior_s=timed(lambda: beta_binomial_prior(tl, fl)))
    print(json.dumps(out))


if __name__ == "__main__":
    _bench()
