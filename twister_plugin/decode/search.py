"""Search strategies for :class:`twister_plugin.decode.batched.BatchedDecoder`.

Data contract of one step (R rows, audio-major: the ``g`` rows of audio ``a`` are rows
``a*g .. a*g+g-1``; A active audios; n tokens sampled so far; V vocabulary):

    logits        [R, V]  float32, already filtered (suppressed tokens are -inf)
    hyps.tokens   [R, n]  long, sampled tokens (no prompt)
    hyps.sums     [R]     float32, summed log-probabilities of those tokens
    hyps.audios   list[int] of length A: the batch index of each active audio

``step`` returns the new hypotheses (rows in the same audio-major layout, possibly a different
``g``), ``src`` (for each new row, the old row it extends; None when row i extends row i) and a
bool ``done [A]``: audios whose result is final and that can leave the batch. A strategy keeps
the final results itself, keyed by batch index, and hands them over in ``finalize``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from twister_plugin.lm.fusion import ShallowFusion


@dataclass
class Hyps:
    tokens: Tensor  # [R, n] long
    sums: Tensor  # [R] float32
    audios: list[int]  # A batch indices
    am: Tensor | None = None  # [R] Whisper-only sums when an LM is fused (``sums`` are then fused)

    @property
    def group(self) -> int:
        return self.tokens.shape[0] // len(self.audios)

    def keep(self, keep_audio: Tensor) -> Tensor:
        """Drop the audios where ``keep_audio [A]`` is False; return the kept row indices."""
        g = self.group
        kept = keep_audio.nonzero()[:, 0]  # [A']
        rows = (kept[:, None] * g + torch.arange(g, device=kept.device)).flatten()  # [A' * g]
        self.tokens, self.sums = self.tokens[rows], self.sums[rows]
        if self.am is not None:
            self.am = self.am[rows]
        self.audios = [self.audios[i] for i in kept.tolist()]
        return rows


@dataclass
class Hypothesis:
    tokens: list[int]  # sampled tokens, without EOT
    sum_logprob: float
    finished: bool  # False when the maximum length stopped it before EOT
    score: float | None = None  # fused (LM) score that ranked it; None: sum_logprob did

    @property
    def rank_score(self) -> float:
        return self.sum_logprob if self.score is None else self.score


class SearchStrategy:
    """Base class: how to pick next tokens and when an audio is done."""

    group_size: int = 1  # rows per audio after the first step

    def start(self, n_audio: int, device: torch.device | None = None) -> None:
        raise NotImplementedError

    def step(self, logits: Tensor, hyps: Hyps) -> tuple[Hyps, Tensor | None, Tensor]:
        raise NotImplementedError

    def finalize(self, hyps: Hyps) -> list[Hypothesis]:
        """The best hypothesis of every audio of the batch (index = batch index)."""
        raise NotImplementedError

    fusion: ShallowFusion | None = None  # LM shallow fusion; None: Whisper's scores alone

    def advance(self, src: Tensor | None, hyps: Hyps) -> None:
        """After rows were re-ordered/dropped (``src`` as the decoder's cache), before the next
        step: bring the fusion LM's per-row state along and feed it the new tokens."""
        if self.fusion is not None:
            self.fusion.advance(src, hyps.tokens)

    def _scores(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """Whisper's log-probs ``[R, V]`` and the ranking scores ``[R, V]`` (the same tensor
        without an LM, the fused scores with one)."""
        logprobs = F.log_softmax(logits.float(), dim=-1)
        return logprobs, logprobs if self.fusion is None else self.fusion.fuse(logprobs)


def am_sums(hyps: Hyps) -> Tensor:
    """Whisper-only sums ``[R]`` of fused hypotheses (zeros before the first token)."""
    return hyps.am if hyps.am is not None else torch.zeros_like(hyps.sums)


def hypothesis(tokens: list[int], rank: float, am: float | None, finished: bool) -> Hypothesis:
    """``sum_logprob`` stays Whisper's own; the fused ``rank`` goes to ``score`` (``am`` given)."""
    return Hypothesis(tokens, rank, finished) if am is None else Hypothesis(tokens, am, finished, rank)


class Greedy(SearchStrategy):
    """Arg-max at every step (Whisper's temperature-0 ``GreedyDecoder``); with an LM, arg-max
    of the fused score (``score``; ``sum_logprob`` stays Whisper's)."""

    def __init__(self, eot: int, fusion: ShallowFusion | None = None) -> None:
        self.eot = eot
        self.fusion = fusion
        self.results: dict[int, Hypothesis] = {}

    def start(self, n_audio: int, device: torch.device | None = None) -> None:
        self.results = {}
        if self.fusion is not None:
            self.fusion.start(n_audio, device)

    def step(self, logits: Tensor, hyps: Hyps) -> tuple[Hyps, Tensor | None, Tensor]:
        logprobs, ranked = self._scores(logits)
        next_tokens = (logits if self.fusion is None else ranked).argmax(dim=-1)  # [R]
        sums = hyps.sums + ranked.gather(1, next_tokens[:, None])[:, 0]
        am = None
        if self.fusion is not None:
            am = am_sums(hyps) + logprobs.gather(1, next_tokens[:, None])[:, 0]
        tokens = torch.cat([hyps.tokens, next_tokens[:, None]], dim=1)
        done = next_tokens == self.eot  # [R] == [A] (one row per audio)
        rows = done.nonzero()[:, 0]
        if rows.numel():
            self._store(rows.tolist(), tokens[rows, :-1], sums[rows], None if am is None else am[rows],
                        hyps.audios, True)
        return Hyps(tokens, sums, hyps.audios, am), None, done

    def _store(self, rows: list[int], tokens: Tensor, sums: Tensor, am: Tensor | None,
               audios: list[int], finished: bool) -> None:
        """Results of ``rows`` (their tokens / sums / am given in that order): one device-to-host
        copy per tensor, not one per row (a copy waits for the GPU; under a busy host CPU each
        wait costs far more than the copy)."""
        toks, rank = tokens.tolist(), sums.tolist()
        ams = [None] * len(rows) if am is None else am.tolist()
        for row, t, r, a in zip(rows, toks, rank, ams):
            self.results[audios[row]] = hypothesis(t, r, a, finished)

    def finalize(self, hyps: Hyps) -> list[Hypothesis]:
        if hyps.audios:
            self._store(list(range(len(hyps.audios))), hyps.tokens, hyps.sums, hyps.am, hyps.audios, False)
        return [self.results[a] for a in sorted(self.results)]
