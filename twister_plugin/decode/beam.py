"""Batched beam search: several audios, several beams each, in one tensor.

Follows the rules of Whisper's ``BeamSearchDecoder`` (which only works for one audio at a
time): each beam proposes its ``beam + 1`` best tokens; per audio the candidates are ranked by
summed log-probability; candidates ending in EOT that rank above the ``beam``-th live one
become finished hypotheses (at most ``round(beam * patience)`` per audio); the ``beam`` best
live ones continue. An audio is done once it has enough finished hypotheses; at the maximum
length the live beams fill up the missing ones. The winner has the best
``sum_logprob / length`` (or GNMT's length penalty when ``length_penalty`` is set).
With a :class:`~twister_plugin.lm.fusion.ShallowFusion`, every score above is the fused one
(``Hypothesis.score``); ``sum_logprob`` stays Whisper's own (``Hyps.am`` tracks it).

Shapes as in :mod:`twister_plugin.decode.search`; C = g * (beam + 1) candidates per audio.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from twister_plugin.decode.search import Hyps, Hypothesis, SearchStrategy, am_sums, hypothesis

if TYPE_CHECKING:
    from twister_plugin.lm.fusion import ShallowFusion


class BeamSearch(SearchStrategy):
    def __init__(self, beam_size: int, eot: int, patience: float = 1.0,
                 length_penalty: float | None = None,
                 fusion: ShallowFusion | None = None) -> None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        if patience < 1.0:
            raise ValueError(f"patience must be >= 1.0 (fewer finished hypotheses than beams "
                             f"would depend on the other audios of the batch), got {patience}")
        if length_penalty is not None and not 0.0 <= length_penalty <= 1.0:
            raise ValueError(f"length_penalty must be in [0, 1] or None, got {length_penalty}")
        self.beam = beam_size
        self.group_size = beam_size
        self.eot = eot
        self.max_finished = round(beam_size * patience)
        self.length_penalty = length_penalty
        self.fusion = fusion
        self.finished: dict[int, list[Hypothesis]] = {}
        self.results: dict[int, Hypothesis] = {}

    def start(self, n_audio: int, device: torch.device | None = None) -> None:
        self.finished = {a: [] for a in range(n_audio)}
        self.results = {}
        if self.fusion is not None:
            self.fusion.start(n_audio, device)

    def step(self, logits: Tensor, hyps: Hyps) -> tuple[Hyps, Tensor | None, Tensor]:
        n_audio, n_rows, beam = len(hyps.audios), hyps.tokens.shape[0], self.beam
        logprobs, ranked = self._scores(logits)  # [R, V] each; ranked: fused when an LM is
        top_lp, top_tok = ranked.topk(beam + 1, dim=-1)  # [R, beam + 1]
        scores = (hyps.sums[:, None] + top_lp).reshape(n_audio, -1)  # [A, C]
        cand_tok = top_tok.reshape(n_audio, -1)
        cand_src = torch.arange(n_rows, device=logits.device)[:, None].expand_as(top_tok)
        cand_src = cand_src.reshape(n_audio, -1)
        # rank per audio; a stable sort keeps (beam, top-k) order among equal scores, as Whisper
        order = scores.argsort(dim=1, descending=True, stable=True)
        scores, cand_tok, cand_src = (t.gather(1, order) for t in (scores, cand_tok, cand_src))
        am = None  # [A, C] Whisper-only sums of the candidates, when fused
        if self.fusion is not None:
            am = (am_sums(hyps)[:, None] + logprobs.gather(1, top_tok)).reshape(n_audio, -1)
            am = am.gather(1, order)
        is_eot = cand_tok == self.eot
        live_upto = (~is_eot).cumsum(dim=1)  # live candidates at or before each position
        live = ~is_eot & (live_upto <= beam)  # exactly `beam` per audio (C - beam >= beam live)
        new_src = cand_src[live]  # [A * beam], audio-major, best first
        tokens = torch.cat([hyps.tokens[new_src], cand_tok[live][:, None]], dim=1)
        new = Hyps(tokens, scores[live], hyps.audios, None if am is None else am[live])
        done = self._collect_finished(hyps, scores, cand_src, is_eot & (live_upto < beam), am)
        return new, new_src, done

    def _collect_finished(self, hyps: Hyps, scores: Tensor, src: Tensor, ended: Tensor,
                          am: Tensor | None) -> Tensor:
        """Store EOT candidates ranked above the last kept beam; return ``done [A]``."""
        ended_cpu = ended.cpu()
        done = torch.zeros(len(hyps.audios), dtype=torch.bool)
        if ended_cpu.any():  # one copy per tensor, not one per finished row
            scores_cpu, src_cpu, tokens_cpu = scores.cpu(), src.cpu(), hyps.tokens.cpu()
            am_cpu = None if am is None else am.cpu()
            for i, audio in enumerate(hyps.audios):
                box = self.finished[audio]
                for j in ended_cpu[i].nonzero()[:, 0].tolist():  # best first
                    if len(box) >= self.max_finished:
                        break
                    row = src_cpu[i, j].item()
                    box.append(hypothesis(tokens_cpu[row].tolist(), scores_cpu[i, j].item(),
                                          None if am_cpu is None else am_cpu[i, j].item(), True))
                if len(box) >= self.max_finished:
                    self.results[audio] = self._best(box)
                    done[i] = True
        return done.to(scores.device)

    def finalize(self, hyps: Hyps) -> list[Hypothesis]:
        if hyps.audios:
            g = hyps.group
            sums, tokens = hyps.sums.cpu(), hyps.tokens.cpu()
            am = None if hyps.am is None else hyps.am.cpu()
            for i, audio in enumerate(hyps.audios):
                box = self.finished[audio]
                rows = sorted(range(i * g, i * g + g), key=lambda r: -sums[r].item())
                for row in rows:
                    if len(box) >= self.beam:
                        break
                    box.append(hypothesis(tokens[row].tolist(), sums[row].item(),
                                          None if am is None else am[row].item(), False))
                self.results[audio] = self._best(box)
        return [self.results[a] for a in sorted(self.results)]

    def _best(self, box: list[Hypothesis]) -> Hypothesis:
        def score(h: Hypothesis) -> float:
            n = max(len(h.tokens), 1)
            penalty = n if self.length_penalty is None else ((5 + n) / 6) ** self.length_penalty
            return h.rank_score / penalty

        return max(box, key=score)  # first of equal scores, as numpy's argmax
