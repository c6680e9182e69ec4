"""Batched monotonic alignment search (MAS) in torch, on the device of its inputs.

Same recursion, constraints, tie-breaking and arithmetic as ESPnet's JETS ``viterbi_decode``
(``espnet2.gan_tts.jets.alignments``), whose numba search runs on the CPU one utterance at a
time after a device -> host copy. Here the batch and the text positions are vectorised and only
the frames are looped over (T_feats steps forward, T_feats steps back), so nothing leaves the
device. Contract per item b (lengths N = text_lengths[b], T = feats_lengths[b], N <= T):
every token gets >= 1 frame, the path is monotonic, starts at (token 0, frame 0) and ends at
(token N - 1, frame T - 1).

Shapes: B batch, T frames (T_feats), N text tokens (T_text).
``log_p_attn`` (B, T, N) log-probabilities; entries beyond an item's lengths are ignored.

Exactness: numba's first row is a running float32 sum (``log_prob[0, :j+1].sum()``), the rest
of the table float64 (``max(Q[i-1, j-1], Q[i, j-1]) + log_prob[i, j]``, Python ``max`` keeps
the first argument on ties); the backtrack prefers the lower token when ``Q`` ties. All of this
is reproduced operation for operation, so durations are bit-identical to ESPnet's.

Usage (timing, prints JSON; ESPnet's numba search is timed too):
    python -m twister_plugin.tts.mas --device cuda --batch 47 --text 60 --feats 400
"""
from __future__ import annotations

import torch


class AlignmentLengthError(ValueError):
    """Lengths that admit no monotonic alignment (or do not fit the matrix)."""


def _check(log_p_attn: torch.Tensor, text_lengths: torch.Tensor,
           feats_lengths: torch.Tensor) -> None:
    if log_p_attn.dim() != 3:
        raise AlignmentLengthError(f"monotonic_alignment_search: log_p_attn must be (B, T_feats, "
                                   f"T_text), got shape {tuple(log_p_attn.shape)}")
    B, T, N = log_p_attn.shape
    if text_lengths.shape != (B,) or feats_lengths.shape != (B,):
        raise AlignmentLengthError(
            f"monotonic_alignment_search: want ({B},) lengths, got text "
            f"{tuple(text_lengths.shape)}, feats {tuple(feats_lengths.shape)}")
    tl, fl = text_lengths.tolist(), feats_lengths.tolist()
    for b, (n, t) in enumerate(zip(tl, fl)):
        if not (1 <= n <= N and 1 <= t <= T and n <= t):
            raise AlignmentLengthError(
                f"monotonic_alignment_search: item {b} has {n} tokens and {t} frames (matrix "
                f"{T} frames x {N} tokens); need 1 <= tokens <= frames and both within the matrix")


def _forward(lp: torch.Tensor, n_text: torch.Tensor, n_feats: torch.Tensor) -> torch.Tensor:
    """lp (B, T, N) float32/64 -> from_prev (T, B, N) int8: 1 where, at frame j, token i's best
    predecessor (frame j - 1) is token i - 1, i.e. Q[i-1, j-1] >= Q[i, j-1]. Always 0 for
    token 0, for frame 0 and for frames past an item's end (so the backtrack stays put there).

    Q[i, j] = -inf for i > j needs no mask: it only ever adds -inf to finite values. Entries
    past an item's lengths are zeroed first (they only feed table cells that are never read).
    """
    B, T, N = lp.shape
    dev = lp.device
    inside = ((torch.arange(T, device=dev)[None, :, None] < n_feats[:, None, None])
              & (torch.arange(N, device=dev)[None, None, :] < n_text[:, None, None]))  # (B, T, N)
    lp = lp.masked_fill(~inside, 0.0)
    lpd = lp.double()
    row0 = lp[:, 0, 0].clone()  # (B,) running sum in lp's dtype, as numba's .sum()
    qq = torch.full((B, N + 1), float("-inf"), dtype=torch.float64, device=dev)  # [-inf, Q[:, j]]
    qq[:, 1] = row0
    from_prev = torch.zeros(T, B, N, dtype=torch.bool, device=dev)
    for j in range(1, T):
        step, stay = qq[:, :-1], qq[:, 1:]  # Q[i-1, j-1] (Q[-1] = -inf), Q[i, j-1]
        torch.ge(step, stay, out=from_prev[j])
        best = torch.maximum(step, stay)  # = numba's max(Q[i-1, j-1], Q[i, j-1])
        torch.add(best, lpd[:, j], out=stay)
        row0 += lp[:, j, 0]
        qq[:, 1] = row0  # token 0: float32 running sum, not the float64 recursion
    from_prev[:, :, 0] = False
    frame_ok = torch.arange(T, device=dev)[:, None] < n_feats[None, :]  # (T, B)
    return (from_prev & frame_ok[:, :, None]).to(torch.int8)


def _backtrack(from_prev: torch.Tensor, n_text: torch.Tensor) -> torch.Tensor:
    """from_prev (T, B, N) int8 -> token index per frame (B, T); frames past an item's end keep
    its last token (from_prev is 0 there)."""
    T, B, _ = from_prev.shape
    path = n_text.new_empty(T, B)
    path[T - 1] = n_text - 1
    for j in range(T - 2, -1, -1):
        back = from_prev[j + 1].gather(1, path[j + 1].unsqueeze(1)).squeeze(1)  # (B,)
        torch.sub(path[j + 1], back, out=path[j])
    return path.t()  # (B, T)


def monotonic_alignment_search(log_p_attn: torch.Tensor, text_lengths: torch.Tensor,
                               feats_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop-in for ESPnet's ``viterbi_decode`` (batched, on log_p_attn's device).

    log_p_attn (B, T_feats, T_text), text_lengths (B,), feats_lengths (B,) ->
    (durations (B, T_text) int64 summing to feats_lengths, zero past text_lengths;
     bin_loss () = mean over items of -mean over frames of log_p_attn on the path).
    """
    _check(log_p_attn, text_lengths, feats_lengths)
    device = log_p_attn.device
    n_text, n_feats = text_lengths.to(device).long(), feats_lengths.to(device).long()
    B, T, N = log_p_attn.shape
    lp = log_p_attn.detach()
    lp = lp if lp.dtype == torch.float64 else lp.float()  # numba sees float32 (or float64)
    with torch.no_grad():
        path = _backtrack(_forward(lp, n_text, n_feats), n_text)
    frame_ok = torch.arange(T, device=device).unsqueeze(0) < n_feats.unsqueeze(1)  # (B, T)
    ds = torch.zeros(B, N, dtype=torch.long, device=device)
    ds.scatter_add_(1, path, frame_ok.long())
    on_path = log_p_attn.gather(2, path.unsqueeze(-1)).squeeze(-1)  # (B, T)
    on_path = torch.where(frame_ok, on_path, on_path.new_zeros(()))
    bin_loss = -(on_path.sum(1) / n_feats.to(on_path.dtype)).sum() / B
    return ds, bin_loss


def bench_batch(batch: int, text: int, feats: int, device: str
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random alignment batch for timing: log_p_attn (B, feats, text), text lengths in
    [text/2, text], feature lengths in [feats/2, feats] (>= text length); item 0 at full size."""
    g = torch.Generator().manual_seed(0)
    tl = torch.randint(text // 2, text + 1, (batch,), generator=g)
    fl = torch.maximum(torch.randint(feats // 2, feats + 1, (batch,), generator=g), tl)
    tl[0], fl[0] = text, feats
    lp = torch.randn(batch, feats, text, generator=g).log_softmax(-1)
    return lp.to(device), tl.to(device), fl.to(device)


def _bench() -> None:
    import argparse
    import json
    import time

    from espnet2.gan_tts.jets.alignments import viterbi_decode

    p = argparse.ArgumentParser(description="Time batched torch MAS vs ESPnet's numba search.")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=47)
    p.add_argument("--text", type=int, default=60)
    p.add_argument("--feats", type=int, default=400)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    lp, tl, fl = bench_batch(a.batch, a.text, a.feats, a.device)
    out = dict(device=a.device, batch=a.batch, text=a.text, feats=a.feats)
    for name, fn in (("numba_s", viterbi_decode), ("torch_s", monotonic_alignment_search)):
        fn(lp, tl, fl)  # warm-up (numba compiles on first call)
        times = []
        for _ in range(a.repeats):
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            ds, _ = fn(lp, tl, fl)
            ds.sum().item()  # waits for the device
            times.append(time.perf_counter() - t0)
        out[name] = round(sorted(times)[len(times) // 2], 4)
    same = torch.equal(viterbi_decode(lp, tl, fl)[0].long(),
                       monotonic_alignment_search(lp, tl, fl)[0])
    print(json.dumps(dict(out, identical=same)))


if __name__ == "__main__":
    _bench()
