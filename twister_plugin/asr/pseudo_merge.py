"""Merge pseudo-label shards: apply the filters, write labels, scores, reports and a Kaldi dir.

Outputs under ``<out>/`` (all sorted by utterance id, written atomically):

    text           <utt> <label>   kept utterances only (zh labels in simplified characters)
    scores.jsonl   one record per utterance: every score, ``kept`` and the rejection ``reasons``
    report.json    counts per filter, kept / total, hours kept (+ the filter thresholds); when
                   the input had segments (long recordings cut by twister_plugin.bin.segment):
                   segmented_from_hours (the whole recordings), segments_hours, kept_hours
    report.txt     the same for people
    data/          Kaldi dir of the kept utterances: wav.scp, text, utt2spk, spk2utt, utt2lang,
                   utt2dur (+ segments when the input had them), ready for TTS and ASR training
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

from twister_plugin.asr.filters import FILTER_NAMES, apply_filters
from twister_plugin.asr.pseudo_label import (
    PseudoLabelConfig, PseudoLabelError, read_records, shard_paths, write_records,
)
from twister_plugin.data import AudioError, DataDir, Segment, probe_audio, write_kaldi_dir
from twister_plugin.utils.fileio import atomic_open, atomic_write_text, exclusive

logger = logging.getLogger(__name__)

BAD_AUDIO = "bad_audio"


def read_plan(out: Path, n_shards: int | None) -> dict:
    path = out / "shards" / "plan.json"
    if not path.exists():
        raise PseudoLabelError(f"{path}: no plan; run the shards first")
    plan = json.loads(path.read_text(encoding="utf-8"))
    if n_shards is not None and n_shards != plan["n_shards"]:
        raise PseudoLabelError(f"{path}: the shards were planned as {plan['n_shards']}, "
                               f"not {n_shards}")
    return plan


def all_done(out: str | Path, n_shards: int) -> bool:
    return all(shard_paths(Path(out), k)["done"].exists() for k in range(1, n_shards + 1))


def collect(out: Path, plan: dict) -> list[dict]:
    """Every record of every finished shard, checked against the plan."""
    n = plan["n_shards"]
    missing = [k for k in range(1, n + 1) if not shard_paths(out, k)["done"].exists()]
    if missing:
        raise PseudoLabelError(f"{out}/shards: shards {missing} of {n} are not done; run them "
                               "(a rerun resumes) before merging")
    records: dict[str, dict] = {}
    for k in range(1, n + 1):
        path = shard_paths(out, k)["final"]
        for rec in read_records(path):
            if rec["utt_id"] in records:
                raise PseudoLabelError(f"{path}: utterance {rec['utt_id']!r} is in two shards")
            records[rec["utt_id"]] = rec
    if len(records) != plan["n_utts"]:
        raise PseudoLabelError(f"{out}/shards: {len(records)} records, the plan has "
                               f"{plan['n_utts']} utterances")
    return [records[u] for u in sorted(records)]


def judge(rec: dict, cfg: PseudoLabelConfig, t2s) -> dict:
    """``rec`` with ``reasons``, ``kept`` and ``label`` (the text as written to ``text``)."""
    if "error" in rec:
        return {**rec, "reasons": [BAD_AUDIO], "kept": False, "label": ""}
    reasons = apply_filters(SimpleNamespace(**rec), rec["duration"], cfg.filters)
    label = " ".join(rec["text"].split())  # one line, single spaces
    if t2s is not None and rec["language"] == "zh":
        label = t2s.convert(label)
    return {**rec, "reasons": reasons, "kept": not reasons, "label": label}


def merge(out: str | Path, cfg: PseudoLabelConfig, n_shards: int | None = None) -> dict:
    """Merge the shards of ``out``; return the report. One merge at a time: the last two shards
    of a run may finish, and both merge, together."""
    out = Path(out)
    with exclusive(out / ".merge.lock"):
        return _merge(out, cfg, n_shards)


def _merge(out: Path, cfg: PseudoLabelConfig, n_shards: int | None) -> dict:
    plan = read_plan(out, n_shards)
    t2s = None
    if cfg.t2s:
        import opencc

        t2s = opencc.OpenCC("t2s")
    judged = [judge(r, cfg, t2s) for r in collect(out, plan)]
    write_records(out / "scores.jsonl", judged)
    kept = [r for r in judged if r["kept"]]
    with atomic_open(out / "text", "w") as f:
        for r in kept:
            f.write(f"{r['utt_id']} {r['label']}\n")
    report = {**make_report(judged, cfg), **segment_hours(judged, cfg.allow_pipes)}
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    atomic_write_text(out / "report.txt", report_text(report))
    if not kept:
        raise PseudoLabelError(f"{out}: no utterance passed the filters; see {out}/report.txt")
    write_kaldi_dir(kept_data_dir(kept, str(out / "data")), out / "data",
                    allow_pipes=cfg.allow_pipes)
    logger.info("kept %d of %d utterances (%.2f of %.2f h) -> %s", report["kept"],
                report["total"], report["hours_kept"], report["hours_total"], out)
    return report


def kept_data_dir(kept: list[dict], name: str) -> DataDir:
    has_segments = kept[0]["start"] is not None
    return DataDir(
        wav_scp={r["recording"]: r["audio"] for r in kept},
        utt2spk={r["utt_id"]: r["speaker"] for r in kept},
        text={r["utt_id"]: r["label"] for r in kept},
        segments={r["utt_id"]: Segment(r["recording"], r["start"], r["end"]) for r in kept}
        if has_segments else None,
        utt2lang={r["utt_id"]: r["language"] for r in kept},
        utt2dur={r["utt_id"]: r["duration"] for r in kept},
        name=name)


def make_report(judged: list[dict], cfg: PseudoLabelConfig) -> dict:
    names = (BAD_AUDIO,) + FILTER_NAMES
    any_reason = {n: 0 for n in names}
    only_reason = {n: 0 for n in names}
    languages: dict[str, int] = {}
    for r in judged:
        for reason in r["reasons"]:
            any_reason[reason] += 1
        if len(r["reasons"]) == 1:
            only_reason[r["reasons"][0]] += 1
        if r["kept"]:
            languages[r["language"]] = languages.get(r["language"], 0) + 1
    kept = [r for r in judged if r["kept"]]
    seconds = lambda rs: sum(r.get("duration", 0.0) for r in rs)  # noqa: E731
    return {
        "total": len(judged), "kept": len(kept), "rejected": len(judged) - len(kept),
        "kept_fraction": round(len(kept) / max(len(judged), 1), 4),
        "hours_total": round(seconds(judged) / 3600, 4),
        "hours_kept": round(seconds(kept) / 3600, 4),
        "rejected_by": any_reason, "rejected_only_by": only_reason,
        "kept_by_language": dict(sorted(languages.items())), "filters": asdict(cfg.filters),
    }


def segment_hours(judged: list[dict], allow_pipes: bool = False) -> dict:
    """Hours of the whole recordings the segments were cut from, of all segments, of the kept
    ones; {} when the input had no segments. A recording whose header cannot be read is
    counted in ``segmented_from_unreadable`` (its hours are missing from segmented_from_hours)."""
    segs = [r for r in judged if r.get("start") is not None]
    if not segs:
        return {}
    recordings = {r["recording"]: r["audio"] for r in segs}
    seconds, unreadable = 0.0, 0
    for rec, entry in recordings.items():
        try:
            info = probe_audio(entry, allow_pipes=allow_pipes)
        except AudioError as e:
            logger.warning("recording %r: length unknown for the report (%s)", rec, e)
            unreadable += 1
            continue
        seconds += info.num_samples / info.sample_rate
    hours = lambda rs: round(sum(r["end"] - r["start"] for r in rs) / 3600, 4)  # noqa: E731
    return {"segmented_recordings": len(recordings), "segmented_from_unreadable": unreadable,
            "segmented_from_hours": round(seconds / 3600, 4), "segments": len(segs),
            "segments_hours": hours(segs), "kept_hours": hours([r for r in segs if r["kept"]])}


def report_text(report: dict) -> str:
    lines = [
        f"kept {report['kept']} of {report['total']} utterances "
        f"({100 * report['kept_fraction']:.1f}%), "
        f"{report['hours_kept']:.3f} of {report['hours_total']:.3f} hours",
    ]
    if "segments_hours" in report:
        unread = report["segmented_from_unreadable"]
        lines.append(
            f"segments: {report['segmented_recordings']} long recordings "
            f"({report['segmented_from_hours']:.3f} h"
            + (f", {unread} of unknown length" if unread else "")
            + f") -> {report['segments']} segments ({report['segments_hours']:.3f} h), "
            f"{report['kept_hours']:.3f} h kept")
    lines += [
        "kept by language: " + (", ".join(f"{k} {v}" for k, v in report["kept_by_language"].items())
                                or "none"),
        "",
        f"{'filter':<20}{'rejected':>10}{'only reason':>13}  threshold(s)",
    ]
    thresholds = _thresholds(report["filters"])
    for name, n in report["rejected_by"].items():
        lines.append(f"{name:<20}{n:>10}{report['rejected_only_by'][name]:>13}  "
                     f"{thresholds.get(name, '')}")
    return "\n".join(lines) + "\n"


def _thresholds(f: dict) -> dict[str, str]:
    return {
        "no_speech": f"no_speech_prob > {f['no_speech_threshold']} and avg_logprob < "
                     f"{f['no_speech_logprob_threshold']}, or > {f['no_speech_hard_threshold']}",
        "avg_logprob": f"< {f['logprob_threshold']}",
        "compression_ratio": f"> {f['compression_ratio_threshold']}",
        "repeated_ngram": f"a {f['ngram_size']}-gram more than {f['ngram_max_count']} times",
        "repeated_suffix": f">= {f['suffix_min_repeats']} copies over "
                           f">= {f['suffix_min_units']} units",
        "unfinished": "no EOT before max_new_tokens" if f["reject_unfinished"] else "off",
        "rate_low": f"zh < {f['zh_min_rate']} units/s, en < {f['en_min_rate']} letters/s",
        "rate_high": f"zh > {f['zh_max_rate']} units/s, en > {f['en_max_rate']} letters/s",
        "language": f"detected not in {list(f['allowed_languages'])}",
        "language_prob": f"P(prompt language) < {f['min_language_prob']}",
        "too_long": f"> {f['max_duration']} s",
        "ctc_agreement": "off" if f.get("ctc_agreement_min") is None
                         else f"CTC log-likelihood per unit < {f['ctc_agreement_min']}",
    }
