"""Pseudo-labelling with Whisper: configuration, shard plan and resumable shard runs.

Plan: the sorted utterance ids are cut into blocks of ``block_size``; shard k of N takes a
contiguous run of whole blocks (blocks ``(k-1)*B//N .. k*B//N - 1`` of B). Inside a block the
utterances are decoded in length-sorted batches, so how an utterance is batched does not depend
on N: with the same batch_size and device, a sharded run (interrupted and resumed or not) gives
the same outputs as a one-shot run, byte for byte.

Files under ``<out>/shards/``:

    plan.json            n_shards, block_size, n_utts, sha1 of the ids (a rerun must match)
    k.partial/<b>.jsonl  records of block b, written atomically when the block is done; a kill
                         loses at most the block in progress, a rerun skips the blocks there
    k.jsonl              all records of shard k, sorted by id (written atomically)
    k.done               written last; a rerun skips shard k (and loads no model)

A record is one JSON line per utterance: ids, audio reference, duration, and every score of
:class:`twister_plugin.decode.DecodeResult` (no tokens), or ``error`` for audio that failed to
load. Filters are applied at merge time (:mod:`twister_plugin.asr.pseudo_merge`), so thresholds
can change without decoding again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import yaml
from tqdm import tqdm

from twister_plugin.asr.filters import FilterConfig
from twister_plugin.data import AudioError, DataDir, load_utt, probe_audio
from twister_plugin.decode import BatchedDecoder, DecodeResult, DecoderConfig, length_sorted_batches
from twister_plugin.utils.config import section
from twister_plugin.utils.fileio import atomic_open, atomic_write_text
from twister_plugin.utils.log import process_seconds

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SCORE_DIGITS = 6  # decimals kept for scores and durations in the records


class PseudoLabelError(ValueError):
    """Bad configuration, a plan that does not match the output folder, or missing shards."""


@dataclass(frozen=True)
class PseudoLabelConfig:
    language: str = "zh"  # prompt language (zh, en, ...) or auto (detect) where utt2lang is silent
    use_utt2lang: bool = True  # force the language utt2lang gives, where the data has one
    batch_size: int = 16  # utterances per decoder batch
    block_size: int = 256  # utterances per sort/checkpoint block; shards are whole blocks
    on_bad_audio: str = "skip"  # skip: log, count and leave the utterance out; error: stop
    allow_pipes: bool = False  # accept wav.scp "cmd |" entries (they run shell commands)
    t2s: bool = True  # write zh labels in simplified characters (OpenCC t2s)
    decode: DecoderConfig = field(default_factory=DecoderConfig)  # decoder options
    filters: FilterConfig = field(default_factory=FilterConfig)  # label-free filter thresholds

    def __post_init__(self) -> None:
        if self.on_bad_audio not in ("skip", "error"):
            raise PseudoLabelError(f"on_bad_audio must be skip or error, got {self.on_bad_audio!r}")
        if self.batch_size < 1 or self.block_size < 1:
            raise PseudoLabelError(f"batch_size and block_size must be >= 1, got "
                                   f"{self.batch_size} and {self.block_size}")

    def prompt_language(self, utt2lang: str | None) -> str | None:
        """The forced language of one utterance, or None to detect it."""
        if self.use_utt2lang and utt2lang:
            return utt2lang
        return None if self.language == "auto" else self.language


def _section(cls: type, raw: object, where: str) -> object:
    return section(cls, raw, where, PseudoLabelError, lists_as_tuples=True)


def load_config(path: str | Path | None, **overrides: object) -> PseudoLabelConfig:
    """Read ``conf/pseudo_label.yaml`` (None: defaults); ``overrides`` that are not None win."""
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise PseudoLabelError(f"{path}: cannot read config ({e})") from None
        if not isinstance(raw, dict):
            raise PseudoLabelError(f"{path}: want a mapping at the top level")
    raw = dict(raw)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    raw["decode"] = _section(DecoderConfig, raw.get("decode"), f"{path}: decode")
    raw["filters"] = _section(FilterConfig, raw.get("filters"), f"{path}: filters")
    return _section(PseudoLabelConfig, raw, str(path))  # type: ignore[return-value]


# ----------------------------------------------------------------------------------- plan
def blocks_of(ids: list[str], block_size: int) -> list[list[str]]:
    ids = sorted(ids)
    return [ids[i : i + block_size] for i in range(0, len(ids), block_size)]


def shard_blocks(n_blocks: int, shard: int, n_shards: int) -> range:
    """Block indices of shard ``shard`` (1-based) of ``n_shards``."""
    if not 1 <= shard <= n_shards:
        raise PseudoLabelError(f"shard {shard}/{n_shards}: want 1 <= k <= N")
    return range((shard - 1) * n_blocks // n_shards, shard * n_blocks // n_shards)


def plan_of(ids: list[str], n_shards: int, block_size: int) -> dict:
    digest = hashlib.sha1("\n".join(sorted(ids)).encode("utf-8")).hexdigest()
    return {"n_shards": n_shards, "block_size": block_size, "n_utts": len(ids), "ids_sha1": digest}


def check_plan(out: Path, plan: dict) -> None:
    """Write ``shards/plan.json`` or check that an earlier run used the same plan."""
    path = out / "shards" / "plan.json"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != plan:
            diff = {k: (old.get(k), plan[k]) for k in plan if old.get(k) != plan[k]}
            raise PseudoLabelError(
                f"{path}: this output folder was started with another plan {diff} (earlier, now); "
                "use the same data, --shard N and block_size, or a new --out")
    else:
        atomic_write_text(path, json.dumps(plan, indent=2, sort_keys=True) + "\n")


def shard_paths(out: Path, shard: int) -> dict[str, Path]:
    d = out / "shards"
    return {"done": d / f"{shard}.done", "final": d / f"{shard}.jsonl",
            "partial": d / f"{shard}.partial"}


def read_records(path: Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise PseudoLabelError(f"{path}:{n}: not a JSON record ({e.msg})") from None
    return out


def write_records(path: Path, records: list[dict]) -> None:
    with atomic_open(path, "w") as f:
        for rec in sorted(records, key=lambda r: r["utt_id"]):
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------------- records
def _audio_fields(dd: DataDir, utt: str) -> dict:
    ref = dd.audio(utt)
    seg = dd.segments[utt] if dd.segments is not None else None
    return {"utt_id": utt, "recording": seg.recording if seg else utt, "audio": ref.entry,
            "start": ref.start if seg else None, "end": ref.end if seg else None,
            "speaker": dd.utt2spk[utt]}


def make_record(dd: DataDir, utt: str, n_samples: int, result: DecodeResult) -> dict:
    r = round
    return {**_audio_fields(dd, utt), "duration": r(n_samples / SAMPLE_RATE, SCORE_DIGITS),
            "text": result.text, "language": result.language,
            "detected_language": result.detected_language,
            "language_prob": r(result.language_prob, SCORE_DIGITS),
            "no_speech_prob": r(result.no_speech_prob, SCORE_DIGITS),
            "avg_logprob": r(result.avg_logprob, SCORE_DIGITS),
            "compression_ratio": r(result.compression_ratio, SCORE_DIGITS),
            "finished": result.finished, "n_tokens": len(result.tokens)}


def error_record(dd: DataDir, utt: str, error: str) -> dict:
    return {**_audio_fields(dd, utt), "error": error}


def estimated_seconds(dd: DataDir, utt: str, allow_pipes: bool) -> float:
    """Duration for length sorting: utt2dur, the segment, or the audio header."""
    if dd.utt2dur is not None:
        return dd.utt2dur[utt]
    ref = dd.audio(utt)
    if ref.end is not None:
        return ref.end - ref.start
    info = probe_audio(ref.entry, allow_pipes=allow_pipes)
    return info.num_samples / info.sample_rate - ref.start


# ----------------------------------------------------------------------------------- shards
def run_shard(dd: DataDir, out: str | Path, shard: int, n_shards: int, cfg: PseudoLabelConfig,
              make_decoder: Callable[[], BatchedDecoder]) -> None:
    """Decode shard ``shard`` of ``n_shards`` into ``out/shards/`` (resuming; skipped if done).

    ``make_decoder`` is called only when there is something left to decode.
    """
    out = Path(out)
    size = min(cfg.block_size, -(-len(dd.utt_ids) // n_shards) or 1)  # every shard gets work
    blocks = blocks_of(dd.utt_ids, size)
    mine = shard_blocks(len(blocks), shard, n_shards)
    check_plan(out, plan_of(dd.utt_ids, n_shards, size))
    paths = shard_paths(out, shard)
    if paths["done"].exists():
        logger.info("shard %d/%d is already done (%s); skipping", shard, n_shards, paths["done"])
        return
    block_file = {b: paths["partial"] / f"{b:06d}.jsonl" for b in mine}
    todo = [b for b in mine if not block_file[b].exists()]
    n_done = sum(len(blocks[b]) for b in mine if b not in todo)
    if n_done:
        logger.info("shard %d/%d: resuming; %d utterances of %d blocks are in %s", shard,
                    n_shards, n_done, len(mine) - len(todo), paths["partial"])
    decoder = make_decoder() if todo else None
    t0, ready = time.perf_counter(), process_seconds()  # decoding only (benchmarks/multi_gpu.py reads work_s)
    with tqdm(total=sum(len(blocks[b]) for b in mine), initial=n_done, unit="utt",
              desc=f"pseudo-label {shard}/{n_shards}") as bar:
        for b in todo:  # each block is written when done: a kill loses at most one block
            write_records(block_file[b], _decode_block(dd, blocks[b], decoder, cfg, bar))
    records = [r for b in mine for r in read_records(block_file[b])]
    write_records(paths["final"], records)
    atomic_write_text(paths["done"], f"{len(records)}\n")
    shutil.rmtree(paths["partial"], ignore_errors=True)  # with any temp file a kill left there
    bad = sum("error" in r for r in records)
    logger.info("shard %d/%d: %d utterances (%d bad audio) -> %s; work_s=%.2f ready_s=%s", shard, n_shards,
                len(records), bad, paths["final"], time.perf_counter() - t0, ready)


def _bad_audio(dd: DataDir, utt: str, err: AudioError, cfg: PseudoLabelConfig) -> dict:
    if cfg.on_bad_audio == "error":
        raise err
    logger.warning("bad audio, left out (on_bad_audio: skip): %s", err)
    return error_record(dd, utt, str(err))


def _language(code: str | None) -> str | None:
    """zh-CN / zh_cn -> zh (Whisper's codes have no region)."""
    return code.replace("_", "-").split("-")[0].lower() if code else None


def _decode_block(dd: DataDir, block: list[str], decoder: BatchedDecoder,
                  cfg: PseudoLabelConfig, bar: tqdm) -> list[dict]:
    """Records of one block: length-sorted batches, audio of the next batch read meanwhile."""
    records: list[dict] = []
    seconds: dict[str, float] = {}
    for utt in block:
        try:
            seconds[utt] = estimated_seconds(dd, utt, cfg.allow_pipes)
        except AudioError as e:
            records.append(_bad_audio(dd, utt, AudioError(f"utterance {utt!r}: {e}"), cfg))
            bar.update(1)
    good = [u for u in block if u in seconds]
    batches = [[good[i] for i in b]
               for b in length_sorted_batches([seconds[u] for u in good], cfg.batch_size)]
    with ThreadPoolExecutor(max_workers=1) as pool:  # reads audio while the model decodes
        pending = [pool.submit(_load_batch, dd, utts, cfg.allow_pipes) for utts in batches[:1]]
        for n in range(len(batches)):
            if n + 1 < len(batches):
                pending.append(pool.submit(_load_batch, dd, batches[n + 1], cfg.allow_pipes))
            loaded, bad = pending[n].result()
            for utt, err in bad:
                records.append(_bad_audio(dd, utt, err, cfg))
            bar.update(len(bad))
            if loaded:
                records.extend(_decode_batch(dd, loaded, decoder, cfg))
                bar.update(len(loaded))
    return records


def _decode_batch(dd: DataDir, loaded: list[tuple[str, np.ndarray]], decoder: BatchedDecoder,
                  cfg: PseudoLabelConfig) -> list[dict]:
    langs = [cfg.prompt_language(_language((dd.utt2lang or {}).get(u))) for u, _ in loaded]
    try:
        results = decoder.decode_batch([w for _, w in loaded], langs)
    except ValueError as e:
        raise PseudoLabelError(f"utterances {[u for u, _ in loaded][:4]}...: {e}") from e
    return [make_record(dd, u, len(w), r) for (u, w), r in zip(loaded, results)]


def _load_batch(dd: DataDir, utts: list[str], allow_pipes: bool,
                ) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, AudioError]]]:
    """(utterance, 16-kHz waveform) pairs, and the utterances whose audio failed to load."""
    loaded, bad = [], []
    for utt in utts:
        try:
            loaded.append((utt, load_utt(dd, utt, SAMPLE_RATE, allow_pipes=allow_pipes)))
        except AudioError as e:
            bad.append((utt, e))
    return loaded, bad

