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

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Hyps:
    tokens: Tensor  # [R, n] long
    sums: Tensor  # [R] float32
    audios: list[int]  # A batch indices

    @property
    def group(self) -> int:
        return self.tokens.shape[0] // len(self.audios)

    def keep(self, keep_audio: Tensor) -> Tensor:
        """Drop the audios where ``keep_audio [A]`` is False; return the kept row indices."""
        g = self.group
        kept = keep_audio.nonzero()[:, 0]  # [A']
        rows = (kept[:, None] * g + torch.arange(g, device=kept.device)).flatten()  # [A' * g]
        self.tokens, self.sums = self.tokens[rows], self.sums[rows]
        self.audios = [self.audios[i] for i in kept.tolist()]
        return rows


@dataclass
class Hypothesis:
    tokens: list[int]  # sampled tokens, without EOT
    sum_logprob: float
    finished: bool  # False when the maximum length stopped it before EOT


class SearchStrategy:
    """Base class: how to pick next tokens and when an audio is done."""

    group_size: int = 1  # rows per audio after the first step

    def start(self, n_audio: int) -> None:
        raise NotImplementedError

    def step(self, logits: Tensor, hyps: Hyps) -> tuple[Hyps, Tensor | None, Tensor]:
        raise NotImplementedError

    def finalize(self, hyps: Hyps) -> list[Hypothesis]:
        """The best hypothesis of every audio of the batch (index = batch index)."""
        raise NotImplementedError


class Greedy(SearchStrategy):
    """Arg-max at every step (Whisper's temperature-0 ``GreedyDecoder``)."""

    def __init__(self, eot: int) -> None:
        self.eot = eot
        self.results: dict[int, Hypothesis] = {}

    def start(self, n_audio: int) -> None:
        self.results = {}

    def step(self, logits: Tensor, hyps: Hyps) -> tuple[Hyps, Tensor | None, Tensor]:
        next_tokens = logits.argmax(dim=-1)  # [R]
        logprobs = F.log_softmax(logits.float(), dim=-1)
        sums = hyps.sums + logprobs.gather(1, next_tokens[:, None])[:, 0]
        tokens = torch.cat([hyps.tokens, next_tokens[:, None]], dim=1)
        done = next_tokens == self.eot  # [R] == [A] (one row per audio)
        for row in done.nonzero()[:, 0].tolist():
            self.results[hyps.audios[row]] = Hypothesis(
                tokens[row, :-1].tolist(), sums[row].item(), True)
        return Hyps(tokens, sums, hyps.audios), None, done

    def finalize(self, hyps: Hyps) -> list[Hypothesis]:
        for row, audio in enumerate(hyps.audios):
            self.results[audio] = Hypothesis(hyps.tokens[row].tolist(), hyps.sums[row].item(),
                                             False)
        return [self.results[a] for a in sorted(self.results)]
