"""Diffable score files and the RESULTS.md table built from them (never edited by hand).

A score dir holds:
    per_utt.tsv   utt_id n_ref sub del ins err_pct hyp_missing ref hyp  (tokens space-joined)
    summary.json  the Summary fields (see twister_plugin.scoring.score.Summary)
    summary.txt   the same in one human-readable block
"""
from __future__ import annotations

import json
from pathlib import Path

from twister_plugin.scoring.score import Summary, UttScore
from twister_plugin.utils.fileio import atomic_open, atomic_write_text

PER_UTT_COLUMNS = ("utt_id", "n_ref", "sub", "del", "ins", "err_pct", "hyp_missing", "ref", "hyp")
RESULTS_COLUMNS = ("decode dir", "set", "metric", "rate %", "sub", "del", "ins", "ref tokens",
                   "utts", "missing hyp")


class ResultsError(ValueError):
    """A summary.json that cannot be read into the results table."""


def write_score_dir(out: str | Path, utts: list[UttScore], summary: Summary) -> None:
    out = Path(out)
    with atomic_open(out / "per_utt.tsv", "w") as f:
        f.write("\t".join(PER_UTT_COLUMNS) + "\n")
        for u in utts:
            cells = (u.utt_id, u.n_ref, u.n_sub, u.n_del, u.n_ins, f"{u.rate:.2f}",
                     int(u.hyp_missing), " ".join(u.ref), " ".join(u.hyp))
            f.write("\t".join(map(str, cells)) + "\n")
    atomic_write_text(out / "summary.json",
                      json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out / "summary.txt", summary_text(summary))


def summary_text(s: Summary) -> str:
    rate = "n/a" if s.rate is None else f"{s.rate:.2f} %"
    return (f"set: {s.set}\n"
            f"{s.metric.upper()} {rate} [ {s.errors} / {s.n_ref_tokens} {s.unit}s: {s.n_sub} sub, "
            f"{s.n_del} del, {s.n_ins} ins ]\n"
            f"utterances: {s.n_utts} (missing hypotheses: {s.n_missing_hyp}, extra hypotheses: "
            f"{s.n_extra_hyp}, empty references: {s.n_empty_ref})\n"
            f"ref: {s.ref}\nhyp: {s.hyp}\n")


SCORE_DIRS = ("score", "score_spoken")  # score_spoken: the recipe's mer_spoken of Mandarin sets


def find_summaries(root: str | Path) -> list[Path]:
    """Every ``*/score/summary.json`` (and ``*/score_spoken/summary.json``) under ``root``, sorted."""
    return sorted(p for p in Path(root).rglob("summary.json") if p.parent.name in SCORE_DIRS)


def results_table(root: str | Path) -> str:
    """RESULTS.md text: one row per score dir under ``root``."""
    root = Path(root)
    lines = ["# Results", "",
             f"Generated from `{root.as_posix()}/**/score/summary.json` by "
             f"`python -m twister_plugin.bin.score --results {root.as_posix()} --write ...`; "
             "do not edit by hand.", "",
             "| " + " | ".join(RESULTS_COLUMNS) + " |",
             "|" + "---|" * len(RESULTS_COLUMNS)]
    for path in find_summaries(root):
        s = _load_summary(path)
        rate = "n/a" if s["rate"] is None else f"{s['rate']:.2f}"
        cells = (path.parent.parent.relative_to(root).as_posix(), s["set"], s["metric"].upper(),
                 rate, s["n_sub"], s["n_del"], s["n_ins"], s["n_ref_tokens"], s["n_utts"],
                 s["n_missing_hyp"])
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


def write_results(root: str | Path, out: str | Path) -> int:
    """Write RESULTS.md atomically; the number of rows."""
    text = results_table(root)
    atomic_write_text(out, text)
    return len(find_summaries(root))


def _load_summary(path: Path) -> dict:
    try:
        s = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not a readable summary.json ({e})") from None
    need = ("set", "metric", "rate", "n_sub", "n_del", "n_ins", "n_ref_tokens", "n_utts",
            "n_missing_hyp")
    lacking = [k for k in need if not isinstance(s, dict) or k not in s]
    if lacking:
        raise ResultsError(f"{path}: summary.json lacks {lacking}")
    return s
