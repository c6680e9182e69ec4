"""Label-free hallucination score: how well the CTC head agrees with the attention decoder.

For one utterance with CTC log-probs (F, V) of its own frames and the decoder's hypothesis:
  per_unit   log P_ctc(hypothesis units | audio) / max(U, 1)   (the filter's ``ctc_agreement``)
  per_frame  the same log-likelihood / F
  greedy     the CTC head's own best-path text
  cer        CER (percent) of the hypothesis against the CTC greedy text
A hypothesis that loops or invents text gets a low (very negative) score: the CTC path must
squeeze units the audio does not contain. A hypothesis with more units than frames cannot be
aligned at all and scores :data:`INFEASIBLE`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import Tensor

from twister_plugin.ctc.head import CtcHead, ctc_loss, pad_features, pad_targets
from twister_plugin.ctc.units import BLANK_ID, CtcUnits
from twister_plugin.scoring import get_metric, score

INFEASIBLE = -100.0  # per-unit / per-frame score of a hypothesis that cannot fit the frames


@dataclass(frozen=True)
class AgreementScore:
    per_unit: float  # CTC log-likelihood of the hypothesis per unit
    per_frame: float  # CTC log-likelihood of the hypothesis per frame
    greedy: str  # CTC best-path text
    cer: float | None  # CER (%) of the hypothesis vs the CTC greedy text; None: both empty
    n_units: int  # units of the hypothesis

    def to_dict(self) -> dict:
        return asdict(self)


def greedy_ids(log_probs: Tensor) -> list[int]:
    """Best-path units of (F, V) log-probs: argmax, repeats merged, blanks dropped."""
    best = log_probs.argmax(-1).tolist()
    return [b for k, b in enumerate(best) if b != BLANK_ID and (k == 0 or b != best[k - 1])]


def _cer(hyp: str, greedy: str) -> float | None:
    if not hyp.strip() and not greedy.strip():
        return None
    if not greedy.strip():
        return 100.0
    return score({"u": greedy}, {"u": hyp}, get_metric("cer"))[1].rate


@torch.no_grad()
def agreement_scores(head: CtcHead, units: CtcUnits, features: Sequence[Tensor],
                     hypotheses: Sequence[str], batch_size: int = 32) -> list[AgreementScore]:
    """One :class:`AgreementScore` per (F_i, D) encoder feature and hypothesis text."""
    if len(features) != len(hypotheses):
        raise ValueError(f"{len(features)} features but {len(hypotheses)} hypotheses")
    device = next(head.parameters()).device
    out: list[AgreementScore] = []
    for i in range(0, len(features), batch_size):
        feats, hyps = features[i : i + batch_size], hypotheses[i : i + batch_size]
        x, x_lens = pad_features(feats)  # (B, F, D)
        logp = head(x.to(device)).cpu()  # (B, F, V)
        ids = [units.encode(h) for h in hyps]
        y, y_lens = pad_targets(ids)  # (B, U)
        nll = ctc_loss(logp, x_lens, y, y_lens, reduction="none")  # (B,)
        for b, (h, u) in enumerate(zip(hyps, ids)):
            ll = -float(nll[b])
            finite = ll != float("-inf") and ll == ll
            greedy = units.decode(greedy_ids(logp[b, : x_lens[b]]))
            out.append(AgreementScore(
                per_unit=round(ll / max(len(u), 1), 5) if finite else INFEASIBLE,
                per_frame=round(ll / int(x_lens[b]), 5) if finite else INFEASIBLE,
                greedy=greedy, cer=_cer(h, greedy), n_units=len(u)))
    return out


def score_pseudo_dir(pseudo_out, head: CtcHead, units: CtcUnits, model, allow_pipes: bool = False) -> int:
    """Add ``ctc_agreement`` (per-unit score) to every record of ``<pseudo_out>/shards/*.jsonl``
    (rewritten atomically); re-merge afterwards (``pseudo_label --merge``) to filter on it."""
    from pathlib import Path

    from twister_plugin.asr.pseudo_label import read_records, write_records
    from twister_plugin.ctc.head import encoder_features
    from twister_plugin.data import load_audio

    shards = sorted((Path(pseudo_out) / "shards").glob("*.jsonl"))
    if not shards:
        raise FileNotFoundError(f"{pseudo_out}/shards: no finished shard (*.jsonl) to score")
    n = 0
    for path in shards:
        records = read_records(path)
        good = [r for r in records if "error" not in r]
        waves = [load_audio(r["audio"], 16000, start=r["start"] or 0.0, end=r["end"],
                            allow_pipes=allow_pipes) for r in good]
        scores = agreement_scores(head, units, encoder_features(model, waves), [r["text"] for r in good])
        for r, s in zip(good, scores):
            r["ctc_agreement"], r["ctc_cer"] = s.per_unit, s.cer
        write_records(path, records)
        n += len(good)
    return n
