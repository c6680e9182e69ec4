"""Score hypotheses against references: per-utterance errors and a per-set summary.

Edit distances come from jiwer (``process_words`` on the metric's tokens joined by spaces).
A reference without a hypothesis is scored as all deletions and counted (``n_missing_hyp``);
hypotheses without a reference are counted (``n_extra_hyp``) and logged, never scored.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import jiwer

from twister_plugin.data.kaldi import read_table, read_text
from twister_plugin.scoring.metrics import Metric, get_metric, pick_metric

logger = logging.getLogger(__name__)


@dataclass
class UttScore:
    utt_id: str
    ref: list[str]  # reference tokens
    hyp: list[str]  # hypothesis tokens
    n_sub: int
    n_del: int
    n_ins: int
    hyp_missing: bool  # no hypothesis line: scored as all deletions

    @property
    def n_ref(self) -> int:
        return len(self.ref)

    @property
    def errors(self) -> int:
        return self.n_sub + self.n_del + self.n_ins

    @property
    def rate(self) -> float:
        """Errors per reference token, in percent (inf for insertions into an empty reference)."""
        if self.n_ref == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.n_ref


@dataclass
class Summary:
    set: str  # test set name
    metric: str  # cer / wer / mer
    unit: str  # char / word / token
    n_utts: int  # scored utterances (= references)
    n_ref_tokens: int
    n_hyp_tokens: int
    n_sub: int
    n_del: int
    n_ins: int
    errors: int  # n_sub + n_del + n_ins
    rate: float | None  # percent; None when there are no reference tokens
    n_missing_hyp: int  # references without a hypothesis (counted as deletions)
    n_extra_hyp: int  # hypotheses without a reference (not scored)
    n_empty_ref: int  # references with no tokens after normalisation
    ref: str = ""  # reference file
    hyp: str = ""  # hypothesis file

    def to_dict(self) -> dict:
        return asdict(self)


def score(refs: dict[str, str], hyps: dict[str, str], metric: Metric, *, set_name: str = "",
          ) -> tuple[list[UttScore], Summary]:
    """Per-utterance scores (sorted by id) and the set summary for ``metric``."""
    ids = sorted(refs)
    missing = [u for u in ids if u not in hyps]
    extra = sorted(set(hyps) - set(refs))
    if missing:
        logger.warning("%d of %d references have no hypothesis (scored as deletions), e.g. %s",
                       len(missing), len(ids), missing[:5])
    if extra:
        logger.warning("%d hypotheses have no reference (not scored), e.g. %s", len(extra), extra[:5])
    ref_tok = [metric.tokens(refs[u]) for u in ids]
    hyp_tok = [metric.tokens(hyps.get(u, "")) for u in ids]
    alignments = jiwer.process_words([" ".join(t) for t in ref_tok],
                                     [" ".join(t) for t in hyp_tok]).alignments if ids else []
    utts = [UttScore(u, r, h, *_count(chunks), hyp_missing=u not in hyps)
            for u, r, h, chunks in zip(ids, ref_tok, hyp_tok, alignments)]
    return utts, summarize(utts, metric, set_name=set_name, n_extra_hyp=len(extra))


def _count(chunks: list) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) of one jiwer alignment."""
    counts = {"substitute": 0, "delete": 0, "insert": 0}
    for chunk in chunks:
        if chunk.type == "insert":
            counts["insert"] += chunk.hyp_end_idx - chunk.hyp_start_idx
        elif chunk.type in counts:
            counts[chunk.type] += chunk.ref_end_idx - chunk.ref_start_idx
    return counts["substitute"], counts["delete"], counts["insert"]


def summarize(utts: list[UttScore], metric: Metric, *, set_name: str = "", n_extra_hyp: int = 0,
              ) -> Summary:
    n_ref = sum(u.n_ref for u in utts)
    sub, dele, ins = (sum(getattr(u, k) for u in utts) for k in ("n_sub", "n_del", "n_ins"))
    return Summary(
        set=set_name, metric=metric.name, unit=metric.unit, n_utts=len(utts), n_ref_tokens=n_ref,
        n_hyp_tokens=sum(len(u.hyp) for u in utts), n_sub=sub, n_del=dele, n_ins=ins,
        errors=sub + dele + ins, rate=round(100.0 * (sub + dele + ins) / n_ref, 4) if n_ref else None,
        n_missing_hyp=sum(u.hyp_missing for u in utts), n_extra_hyp=n_extra_hyp,
        n_empty_ref=sum(u.n_ref == 0 for u in utts))


def score_files(ref: str | Path, hyp: str | Path, *, metric: str = "auto",
                utt2lang: str | Path | None = None, set_name: str | None = None,
                ) -> tuple[list[UttScore], Summary]:
    """Score Kaldi text files. ``metric="auto"`` picks from the references and utt2lang (by
    default the ``utt2lang`` beside ``ref``, if there is one); the set name defaults to the
    reference's folder name."""
    ref, hyp = Path(ref), Path(hyp)
    refs = read_text(ref, allow_empty=True)
    hyps = read_text(hyp, allow_empty=True)
    if utt2lang is None and (ref.parent / "utt2lang").is_file():
        utt2lang = ref.parent / "utt2lang"
    langs = read_table(utt2lang, fix_sort=True)[0] if utt2lang is not None else {}
    name = metric if metric != "auto" else pick_metric(refs.values(), langs.values())
    logger.info("scoring %s against %s with %s (requested %s; languages %s)", hyp, ref,
                name, metric, sorted(set(langs.values())) or "unknown")
    utts, summary = score(refs, hyps, get_metric(name), set_name=set_name or ref.parent.name)
    summary.ref, summary.hyp = str(ref), str(hyp)
    return utts, summary
