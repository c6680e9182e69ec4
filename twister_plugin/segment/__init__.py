"""Segmentation of long unlabeled recordings into <= 30 s speech segments for pseudo-labelling.

Input: a Kaldi dir of whole recordings (wav.scp, utt2spk, optional utt2lang; no segments).
Output (``segment_dir``): a Kaldi dir with ``segments`` (``<rec>-<start_ms:08d>-<end_ms:08d> rec
start end``), the same ``wav.scp``, ``utt2spk`` / ``utt2lang`` (of the recording), ``utt2dur``,
plus ``cuts.jsonl.gz`` (lhotse, one supervision per cut) and ``report.json``.

Each recording is read ``vad.chunk_s`` seconds at a time (only one chunk in memory); its
segments are cached in ``<out>/work/<rec>.json`` (with a hash of the config), so a rerun after a
crash skips finished recordings.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import yaml
from tqdm import tqdm

from twister_plugin.data import AudioError, DataDir, Segment, load_audio, probe_audio, to_lhotse
from twister_plugin.data.kaldi import is_pipe, write_kaldi_dir
from twister_plugin.segment.merge import MergeConfig, merge_regions
from twister_plugin.segment.vad import SAMPLE_RATE, VadConfig, make_vad, speech_regions
from twister_plugin.utils.config import section
from twister_plugin.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)

__all__ = ["MergeConfig", "SegmentConfig", "SegmentError", "VadConfig", "load_config",
           "segment_dir", "segment_recording", "segment_id"]


class SegmentError(ValueError):
    """Bad configuration or input data dir; the message names the file and the problem."""


@dataclass(frozen=True)
class SegmentConfig:
    language: str | None = "zh"  # utt2lang of recordings the input utt2lang does not cover (None: none)
    allow_pipes: bool = False  # accept wav.scp "cmd |" entries (they run shell commands)
    vad: VadConfig = field(default_factory=VadConfig)  # voice activity detection
    merge: MergeConfig = field(default_factory=MergeConfig)  # regions -> segments


def _section(cls: type, raw: object, where: str) -> object:
    return section(cls, raw, where, SegmentError)


def load_config(path: str | Path | None = None, **overrides: object) -> SegmentConfig:
    """Read ``conf/segment.yaml`` (None: defaults); ``overrides`` that are not None win."""
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise SegmentError(f"{path}: cannot read config ({e})") from None
        if not isinstance(raw, dict):
            raise SegmentError(f"{path}: want a mapping at the top level")
    raw = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    raw["vad"] = _section(VadConfig, raw.get("vad"), f"{path}: vad")
    raw["merge"] = _section(MergeConfig, raw.get("merge"), f"{path}: merge")
    return _section(SegmentConfig, raw, str(path))  # type: ignore[return-value]


def segment_id(rec: str, start: float, end: float) -> str:
    return f"{rec}-{int(round(start * 1000)):08d}-{int(round(end * 1000)):08d}"


def _chunks(entry: str, duration: float, cfg: SegmentConfig) -> Iterator:
    """(S,) float32 16-kHz pieces of ``chunk_s`` seconds (a pipe is run once, read whole)."""
    if is_pipe(entry):
        yield load_audio(entry, SAMPLE_RATE, allow_pipes=cfg.allow_pipes)
        return
    t = 0.0
    while t < duration:
        end = min(t + cfg.vad.chunk_s, duration)
        yield load_audio(entry, SAMPLE_RATE, start=t, end=end)
        t = end


def segment_recording(entry: str, cfg: SegmentConfig, vad=None) -> dict:
    """Segments of one recording: {duration, segments: [[start, end], ...], stats}."""
    info = probe_audio(entry, allow_pipes=cfg.allow_pipes)
    duration = info.num_samples / info.sample_rate
    vad = vad or make_vad(cfg.vad)
    probs = vad.probabilities(_chunks(entry, duration, cfg))  # (F,)
    regions, n_noise = speech_regions(probs, cfg.vad)
    spans, stats = merge_regions(regions, cfg.merge, duration, probs)
    speech = sum(e - s for s, e in regions)
    return {"duration": duration, "segments": [list(s) for s in spans],
            "stats": {"vad_regions": len(regions), "vad_speech_s": round(speech, 3),
                      "vad_noise_dropped": n_noise, **asdict(stats)}}


def _config_hash(cfg: SegmentConfig) -> str:
    return hashlib.sha1(json.dumps(asdict(cfg), sort_keys=True).encode()).hexdigest()[:12]


def segment_all(dd: DataDir, out: Path, cfg: SegmentConfig) -> dict[str, dict]:
    """Per-recording results, cached in ``out/work/<rec>.json`` (reused when the config matches)."""
    work, key = out / "work", _config_hash(cfg)
    vad, results = None, {}
    for rec, entry in tqdm(dd.wav_scp.items(), desc="segment", unit="rec"):
        cache = work / f"{rec}.json"
        if cache.exists():
            old = json.loads(cache.read_text(encoding="utf-8"))
            if old.get("config") == key and old.get("entry") == entry:
                results[rec] = old
                continue
        vad = vad or make_vad(cfg.vad)
        try:
            res = segment_recording(entry, cfg, vad)
        except AudioError as e:
            raise SegmentError(f"{dd.name}/wav.scp (recording {rec!r}): {e}") from None
        results[rec] = {"config": key, "entry": entry, **res}
        atomic_write_text(cache, json.dumps(results[rec]) + "\n")
    return results


def check_input(dd: DataDir) -> None:
    if dd.segments is not None:
        raise SegmentError(f"{dd.name}/segments: the input must be whole recordings (no segments "
                           "file); it is already segmented")


def build_dir(dd: DataDir, results: dict[str, dict], cfg: SegmentConfig) -> DataDir:
    """The segmented data dir: one utterance per segment, speaker / language of its recording."""
    segs, spk, lang, dur = {}, {}, {}, {}
    for rec, res in results.items():
        for start, end in res["segments"]:
            utt = segment_id(rec, start, end)
            segs[utt] = Segment(rec, start, end)
            spk[utt] = dd.utt2spk[rec]
            rec_lang = (dd.utt2lang or {}).get(rec, cfg.language)
            if rec_lang:
                lang[utt] = rec_lang
            dur[utt] = round(end - start, 3)
    if not segs:
        raise SegmentError(f"{dd.name}: no speech found in any of {len(results)} recordings")
    if lang and len(lang) != len(segs):
        raise SegmentError(f"{dd.name}/utt2lang: covers some recordings only; set `language` "
                           "in the config for the others")
    return DataDir(wav_scp=dict(dd.wav_scp), utt2spk=spk, segments=segs,
                   utt2lang=lang or None, utt2dur=dur, name=str(dd.name) + " (segmented)")


def make_report(results: dict[str, dict], seg_dd: DataDir, cfg: SegmentConfig) -> dict:
    lens = list(seg_dd.utt2dur.values())
    totals: dict[str, float] = {}
    for res in results.values():
        for k, v in res["stats"].items():
            totals[k] = round(totals.get(k, 0) + v, 3)
    return {"n_recordings": len(results),
            "hours_in": round(sum(r["duration"] for r in results.values()) / 3600, 4),
            "hours_segments": round(sum(lens) / 3600, 4), "n_segments": len(lens),
            "max_segment_s": round(max(lens), 3), "mean_segment_s": round(sum(lens) / len(lens), 3),
            **totals, "config": asdict(cfg)}


def segment_dir(dd: DataDir, out: str | Path, cfg: SegmentConfig) -> dict:
    """Segment every recording of ``dd`` and write the segmented dir to ``out``; the report."""
    check_input(dd)
    out = Path(out)
    results = segment_all(dd, out, cfg)
    seg_dd = build_dir(dd, results, cfg)
    write_kaldi_dir(seg_dd, out, allow_pipes=cfg.allow_pipes)
    cuts = to_lhotse(seg_dd, allow_pipes=cfg.allow_pipes)
    tmp = out / "cuts.tmp.jsonl.gz"
    cuts.to_file(tmp)
    tmp.replace(out / "cuts.jsonl.gz")
    report = make_report(results, seg_dd, cfg)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    logger.info("%d recordings, %.3f h -> %d segments, %.3f h (max %.2f s, mean %.2f s) in %s",
                report["n_recordings"], report["hours_in"], report["n_segments"],
                report["hours_segments"], report["max_segment_s"], report["mean_segment_s"], out)
    return report
