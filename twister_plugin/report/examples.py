"""Example utterances: reference, zero-shot hypothesis and round-k hypothesis, picked by the
largest improvement and the largest regression in errors (per_utt.tsv of both systems).

Texts are shown as written (Kaldi ``text`` files): the reference from ``<data>/<set>/text``
(or the ``ref`` file named in summary.json), hypotheses from ``eval/<system>/<set>/text``; when
a file is missing the scoring tokens of per_utt.tsv are shown instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import regex

from twister_plugin.data.kaldi import DataError, read_text
from twister_plugin.report.collect import ReportError, Round

NEED_COLUMNS = ("utt_id", "n_ref", "sub", "del", "ins", "ref", "hyp")
CJK_GAP = regex.compile(r"(?<=\p{Han}) (?=\p{Han})")


@dataclass
class UttErrors:
    n_ref: int  # reference tokens
    errors: int  # sub + del + ins
    ref: str  # scoring tokens, readable
    hyp: str


@dataclass
class Example:
    utt_id: str
    kind: str  # "improved" or "regressed"
    n_ref: int
    errors_before: int  # zero-shot
    errors_after: int  # round k
    ref: str
    before: str
    after: str


def read_per_utt(path: Path) -> dict[str, UttErrors] | None:
    """utt_id -> errors of a per_utt.tsv; None when absent; ReportError when malformed."""
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split("\t")
    lacking = [c for c in NEED_COLUMNS if c not in header]
    if lacking:
        raise ReportError(f"{path}:1: header lacks columns {lacking}")
    col = {c: header.index(c) for c in NEED_COLUMNS}
    out = {}
    for n, line in enumerate(lines[1:], 2):
        if not line:
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise ReportError(f"{path}:{n}: {len(cells)} columns, header has {len(header)}")
        try:
            errors = sum(int(cells[col[c]]) for c in ("sub", "del", "ins"))
            out[cells[col["utt_id"]]] = UttErrors(
                int(cells[col["n_ref"]]), errors, _readable(cells[col["ref"]]),
                _readable(cells[col["hyp"]]))
        except ValueError as e:
            raise ReportError(f"{path}:{n}: bad count ({e})") from None
    return out


def _readable(tokens: str) -> str:
    """Scoring tokens joined by spaces, without the spaces between Han characters."""
    return CJK_GAP.sub("", tokens)


def _texts(path: Path | None) -> dict[str, str]:
    if path is None or not path.is_file():
        return {}
    try:
        return read_text(path)
    except DataError as e:
        raise ReportError(str(e)) from None


def _ref_path(rnd: Round, test_set: str, data: Path | None) -> Path | None:
    if data is not None and (data / test_set / "text").is_file():
        return data / test_set / "text"
    ref = rnd.scores.get((rnd.system, test_set), {}).get("ref")
    if not ref:
        return None
    for base in (Path(), rnd.dir.parent.parent, rnd.dir.parent):  # cwd, recipe dir, exp
        if (base / ref).is_file():
            return base / ref
    return None


def pick_examples(rnd: Round, test_set: str, data: Path | None, n: int = 2,
                  ) -> list[Example] | None:
    """Up to ``n`` most improved and ``n`` most regressed utterances; None without scores."""
    dirs = {s: rnd.dir / "eval" / s / test_set for s in ("zeroshot", rnd.system)}
    before = read_per_utt(dirs["zeroshot"] / "score" / "per_utt.tsv")
    after = read_per_utt(dirs[rnd.system] / "score" / "per_utt.tsv")
    if before is None or after is None:
        return None
    common = sorted(set(before) & set(after))
    delta = {u: before[u].errors - after[u].errors for u in common}
    improved = sorted((u for u in common if delta[u] > 0), key=lambda u: (-delta[u], u))[:n]
    regressed = sorted((u for u in common if delta[u] < 0), key=lambda u: (delta[u], u))[:n]
    refs = _texts(_ref_path(rnd, test_set, data))
    hyp_b, hyp_a = (_texts(d / "text") for d in dirs.values())
    out = []
    for kind, ids in (("improved", improved), ("regressed", regressed)):
        for u in ids:
            b, a = before[u], after[u]
            out.append(Example(u, kind, b.n_ref, b.errors, a.errors, refs.get(u, b.ref),
                               hyp_b.get(u, b.hyp), hyp_a.get(u, a.hyp)))
    return out
