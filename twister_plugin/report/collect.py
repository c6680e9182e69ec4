"""Read what the recipe left under ``exp/`` into plain records for the report.

The exp tree (rounds k = 1..N; every part may be missing while the loop is still running):

    exp/timing.tsv                                  round stage seconds (optional; header optional)
    exp/round<k>/eval/<system>/<set>/score/summary.json   system: zeroshot or round<k>
    exp/round<k>/eval/<system>/<set>/score/per_utt.tsv    (read by ``examples``)
    exp/round<k>/eval/<system>/<set>/text                 hypotheses (read by ``examples``)
    exp/round<k>/pseudo/report.json     total, kept, rejected {filter: count}, hours_kept
    exp/round<k>/synth/report.json      total, kept, per_speaker {spk: {total, kept}}, max_cer
    exp/round<k>/synth/scores.jsonl     one JSON object a line with the round-trip ``cer`` (%)
    exp/round<k>/asr_data/report.json   hours_real, hours_synth
    exp/round<k>/asr/{log/,}train.log   ESPnet log (``trainlog``)
    exp/round<k>/<stage>/.done          written last by each stage; mtimes give wall times

Producers are free to spell a field in any of the ways listed in ``ALIASES`` (a dotted name
reads a nested object). A missing file or field leaves ``None`` (the report says "not
available"); a file that exists but cannot be parsed raises :class:`ReportError` naming it.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from twister_plugin.report.trainlog import LossCurve, find_train_log, parse_train_log

ROUND_RE = re.compile(r"round(\d+)\Z")
STAGES = ("pseudo", "tts_dump", "tts", "synth", "asr_data", "asr", "eval")  # recipe order
ALIASES: dict[str, tuple[str, ...]] = {
    "total": ("total", "n_total", "n_in"),
    "kept": ("kept", "n_kept", "n_out"),
    "rejected": ("rejected_by", "rejected", "rejections", "per_filter", "reasons"),
    "hours_kept": ("hours_kept", "kept_hours"),
    "seconds_kept": ("seconds_kept", "kept_seconds"),
    "per_speaker": ("per_speaker", "speakers", "by_speaker"),
    "max_cer": ("max_cer", "cer_threshold", "threshold", "max_roundtrip_cer"),
    "hours_real": ("hours_real", "real_hours", "real.hours"),
    "hours_synth": ("hours_synth", "hours_synthetic", "synth_hours", "synthetic_hours",
                    "synth.hours", "synthetic.hours"),
    "seconds_real": ("seconds_real", "real_seconds", "real.seconds"),
    "seconds_synth": ("seconds_synth", "synth_seconds", "synth.seconds", "synthetic.seconds"),
    "cer": ("cer", "roundtrip_cer", "err_pct", "rate"),
}


class ReportError(ValueError):
    """An input of the report exists but is malformed; the message names the file."""


@dataclass
class Filtering:
    """A filter stage's counts (pseudo-labels or synthetic round trip)."""

    total: int | None  # utterances in
    kept: int | None  # utterances out
    rejected: dict[str, int] = field(default_factory=dict)  # filter name -> rejections
    hours_kept: float | None = None  # audio kept, hours
    per_speaker: dict[str, tuple[int, int]] = field(default_factory=dict)  # spk -> (total, kept)
    max_cer: float | None = None  # round-trip threshold, %

    @property
    def yield_pct(self) -> float | None:
        return 100.0 * self.kept / self.total if self.total and self.kept is not None else None


@dataclass
class Round:
    """Everything the report knows about one round; None = not available."""

    k: int
    dir: Path
    scores: dict[tuple[str, str], dict] = field(default_factory=dict)  # (system, set) -> summary
    pseudo: Filtering | None = None
    synth: Filtering | None = None
    roundtrip_cer: list[float] | None = None  # per synthetic utterance, %
    hours: tuple[float | None, float | None] | None = None  # (real, synthetic) hours
    loss: LossCurve | None = None

    @property
    def system(self) -> str:
        return f"round{self.k}"

    @property
    def test_sets(self) -> list[str]:
        return sorted({t for _, t in self.scores})


@dataclass
class StageTime:
    round: int  # 0: outside the rounds (data prep, weights)
    stage: str
    seconds: float
    source: str  # "timing.tsv" or ".done mtimes"


@dataclass
class Experiment:
    exp: Path
    rounds: list[Round]
    timing: list[StageTime]


def read_json(path: Path) -> dict | None:
    """A JSON object, None when the file is absent; ReportError when it is not a JSON object."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: want a JSON object, got {type(data).__name__}")
    return data


def read_jsonl(path: Path) -> list[dict] | None:
    """One JSON object a line (blank lines skipped); None when the file is absent."""
    if not path.is_file():
        return None
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ReportError(f"{path}:{n}: not valid JSON ({e})") from None
        if not isinstance(row, dict):
            raise ReportError(f"{path}:{n}: want a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def pick(d: dict, name: str, where: Path, kind: type | tuple = (int, float)):
    """The first alias of ``name`` present in ``d`` (None if none is), type-checked."""
    for alias in ALIASES.get(name, (name,)):
        value: object = d
        for part in alias.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ReportError(f"{where}: field {alias!r} is {value!r}, want {_kind_name(kind)}")
        return value
    return None


def _kind_name(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _counts(d: dict, where: Path) -> dict[str, int]:
    """``rejected`` as filter -> count; a list of {"name", "count"} objects is accepted too."""
    raw = pick(d, "rejected", where, (dict, list))
    if raw is None:
        return {}
    if isinstance(raw, list):
        try:
            raw = {str(r["name"]): r.get("count", r.get("rejected")) for r in raw}
        except (TypeError, KeyError):
            raise ReportError(f"{where}: rejected list items need 'name' and 'count'") from None
    bad = {k: v for k, v in raw.items() if isinstance(v, bool) or not isinstance(v, (int, float))}
    if bad:
        raise ReportError(f"{where}: rejection counts must be numbers, got {bad}")
    return {str(k): int(v) for k, v in raw.items()}


def _speakers(d: dict, where: Path) -> dict[str, tuple[int, int]]:
    raw = pick(d, "per_speaker", where, dict) or {}
    out = {}
    for spk, v in raw.items():
        if not isinstance(v, dict) or pick(v, "kept", where) is None:
            raise ReportError(f"{where}: per_speaker[{spk!r}] wants an object with total and kept")
        out[str(spk)] = (int(pick(v, "total", where) or 0), int(pick(v, "kept", where)))
    return out


def read_filtering(path: Path) -> Filtering | None:
    d = read_json(path)
    if d is None:
        return None
    hours = pick(d, "hours_kept", path)
    seconds = pick(d, "seconds_kept", path)
    if hours is None and seconds is not None:
        hours = seconds / 3600.0
    total, kept = pick(d, "total", path, int), pick(d, "kept", path, int)
    return Filtering(total=total, kept=kept, rejected=_counts(d, path), hours_kept=hours,
                     per_speaker=_speakers(d, path), max_cer=pick(d, "max_cer", path))


def read_roundtrip_cer(path: Path) -> list[float] | None:
    rows = read_jsonl(path)
    if rows is None:
        return None
    values = []
    for n, row in enumerate(rows, 1):
        v = pick(row, "cer", path)
        if v is None:
            raise ReportError(f"{path}: object {n} has no round-trip CER (one of {ALIASES['cer']})")
        if math.isfinite(v):
            values.append(float(v))
    return values


def read_hours(path: Path) -> tuple[float | None, float | None] | None:
    d = read_json(path)
    if d is None:
        return None
    out = []
    for kind in ("real", "synth"):
        h, s = pick(d, f"hours_{kind}", path), pick(d, f"seconds_{kind}", path)
        out.append(h if h is not None else (s / 3600.0 if s is not None else None))
    return (out[0], out[1]) if any(v is not None for v in out) else None


SUMMARY_FIELDS = ("set", "metric", "rate", "n_utts")


def read_scores(round_dir: Path, k: int) -> dict[tuple[str, str], dict]:
    """(system, test set) -> summary.json of ``round<k>/eval/<system>/<set>/score``."""
    out = {}
    for path in sorted(round_dir.glob("eval/*/*/score/summary.json")):
        system, test_set = path.parents[2].name, path.parents[1].name
        if system not in ("zeroshot", f"round{k}"):
            continue
        s = read_json(path)
        lacking = [f for f in SUMMARY_FIELDS if f not in s]
        if lacking:
            raise ReportError(f"{path}: summary.json lacks {lacking}")
        if s["rate"] is not None and not isinstance(s["rate"], (int, float)):
            raise ReportError(f"{path}: rate is {s['rate']!r}, want a number or null")
        out[(system, test_set)] = s
    return out


def read_round(round_dir: Path, k: int) -> Round:
    log = find_train_log(round_dir / "asr")
    return Round(
        k=k, dir=round_dir, scores=read_scores(round_dir, k),
        pseudo=read_filtering(round_dir / "pseudo" / "report.json"),
        synth=read_filtering(round_dir / "synth" / "report.json"),
        roundtrip_cer=read_roundtrip_cer(round_dir / "synth" / "scores.jsonl"),
        hours=read_hours(round_dir / "asr_data" / "report.json"),
        loss=parse_train_log(log) if log is not None else None)


def read_timing_tsv(path: Path) -> list[StageTime]:
    """``round stage seconds`` lines (tab or space separated; a header line is skipped)."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        cells = line.split()
        if not cells or (n == 1 and cells[0].lower() == "round"):
            continue
        try:
            if len(cells) != 3:
                raise ValueError(f"want 3 columns, got {len(cells)}")
            rnd = 0 if cells[0] in ("-", "") else int(cells[0])
            out.append(StageTime(rnd, cells[1], float(cells[2]), "timing.tsv"))
        except ValueError as e:
            raise ReportError(f"{path}:{n}: bad line {line!r} (want round stage seconds: {e})"
                              ) from None
    return out


def timing_from_done(exp: Path, rounds: list[Round]) -> list[StageTime]:
    """Stage wall time = mtime of its .done minus that of the stage done before it (the first
    stage of round 1 counts from ``<exp>/../data/.done``, written by data preparation)."""
    marks: list[tuple[int, str, float]] = []
    data_done = exp.parent / "data" / ".done"
    if data_done.is_file():
        marks.append((0, "data", data_done.stat().st_mtime))
    for r in rounds:
        for stage in STAGES:
            done = r.dir / stage / ".done"
            if done.is_file():
                marks.append((r.k, stage, done.stat().st_mtime))
    out = []
    for (_, _, t0), (k, stage, t1) in zip(marks, marks[1:]):
        if t1 >= t0:
            out.append(StageTime(k, stage, t1 - t0, ".done mtimes"))
    return out


def find_rounds(exp: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in exp.iterdir() if p.is_dir()
             and (m := ROUND_RE.match(p.name))] if exp.is_dir() else []
    return sorted(found)


def collect(exp: str | Path) -> Experiment:
    """Read every round under ``exp`` (an empty Experiment if there is none)."""
    exp = Path(exp)
    rounds = [read_round(p, k) for k, p in find_rounds(exp)]
    tsv = exp / "timing.tsv"
    timing = read_timing_tsv(tsv) if tsv.is_file() else timing_from_done(exp, rounds)
    return Experiment(exp=exp, rounds=rounds, timing=timing)
