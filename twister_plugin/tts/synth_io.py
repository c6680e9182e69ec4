"""Output side of synthesis: atomic wavs, per-shard Kaldi tables, merge + lhotse manifests."""
from __future__ import annotations

import gzip
import heapq
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from twister_plugin.data.kaldi import DataDir, DataError, read_table, spk2utt, write_kaldi_dir, write_staged
from twister_plugin.utils.fileio import atomic_open, atomic_write_text, exclusive

if TYPE_CHECKING:
    from twister_plugin.tts.synthesize import Job

log = logging.getLogger(__name__)
TABLES = ("wav.scp", "text", "text.spoken", "utt2spk", "utt2lang", "utt2dur")
SHARD_ONLY = "utt2frames"  # per shard, "frames rate": the merge builds lhotse recordings without reopening wavs
SHARD_TABLES = TABLES + (SHARD_ONLY,)
KALDI = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang", "utt2dur")  # write_kaldi_dir's, in a shard too
LHOTSE_PARTS = ("recordings", "supervisions")  # <name>.jsonl.gz in every shard dir and in the output


def write_wav(path: Path, wav: np.ndarray, fs: int, durable: bool = True) -> int:
    """16-bit PCM; peaks above full scale are scaled down (never clipped). Returns the frames written.
    ``durable=False``: no fsync of this file (the caller flushes a whole shard at once)."""
    peak = float(np.abs(wav).max()) if len(wav) else 0.0
    if peak > 0.99:
        wav = wav * (0.99 / peak)
    with atomic_open(path, "wb", durable=durable) as f:
        sf.write(f, wav, fs, format="WAV", subtype="PCM_16")
    return len(wav)


def wav_ok(path: Path) -> bool:
    """An existing, readable, non-empty wav (writes are atomic, so this means complete)."""
    try:
        return path.is_file() and sf.info(str(path)).frames > 0
    except (RuntimeError, sf.LibsndfileError):
        return False


class ShardWriter:
    """Collects one shard's entries; ``finish`` writes its tables and its .done marker."""

    def __init__(self, out: Path, shard: int, num_shards: int):
        self.dir = shard_dir(out, shard, num_shards)
        (self.dir / ".done").unlink(missing_ok=True)
        self.rows: dict[str, dict[str, str]] = {t: {} for t in SHARD_TABLES}
        self.skipped: dict[str, str] = {}

    def add(self, job: "Job", wav_path: Path, frames: int | None = None, fs: int | None = None) -> None:
        """A written wav; ``frames`` and ``fs`` as written, else read from its header (a resumed wav)."""
        u = job.utt
        self.rows["wav.scp"][u] = str(wav_path.resolve())
        self.rows["text"][u] = job.text
        self.rows["text.spoken"][u] = job.spoken
        self.rows["utt2spk"][u] = job.voice
        self.rows["utt2lang"][u] = job.lang
        if frames is None or fs is None:
            info = sf.info(str(wav_path))
            frames, fs = info.frames, info.samplerate
        self.rows["utt2dur"][u] = f"{frames / fs:.3f}"
        self.rows[SHARD_ONLY][u] = f"{frames} {fs}"

    def skip(self, job: "Job", reason: str) -> None:
        self.skipped[f"line{job.line:08d}"] = reason
        log.warning("line %d skipped (%s): %r", job.line, reason, job.text[:80])

    def finish(self, resumed: int) -> dict:
        """The shard's tables (its Kaldi ones checked and written as the merged dir will hold them,
        so the merge only interleaves lines), stats, lhotse parts, then its .done marker."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.rows["wav.scp"]:
            write_kaldi_dir(_datadir(self.rows, self.dir), self.dir)  # checked here, beside the other shards
        else:  # every line skipped (or none in this shard): empty tables
            for name in KALDI:
                _write_kv(self.dir / name, {})
        for name in ("text.spoken", SHARD_ONLY):
            _write_kv(self.dir / name, self.rows[name])
        _write_kv(self.dir / "skipped", self.skipped)
        stats = {"utterances": len(self.rows["wav.scp"]), "resumed": resumed,
                 "skipped": len(self.skipped),
                 "seconds": round(sum(float(d) for d in self.rows["utt2dur"].values()), 3)}
        atomic_write_text(self.dir / "stats.json", json.dumps(stats) + "\n")
        # this shard's lhotse manifests, made here in parallel with the other shards; the merge
        # (by the last shard to finish, while the others wait) only interleaves their lines
        _write_lhotse(self.dir, self.rows)
        atomic_write_text(self.dir / ".done", "")
        return stats


def shard_dir(out: Path, shard: int, num_shards: int) -> Path:
    return out / "shards" / f"{shard}of{num_shards}"


def merge_if_complete(out: Path, num_shards: int, fs: int) -> bool:
    """Merge the shard tables into ``out`` once every shard has its .done (idempotent)."""
    dirs = [shard_dir(out, j, num_shards) for j in range(1, num_shards + 1)]
    if not all((d / ".done").exists() for d in dirs):
        return False
    with exclusive(out / ".merge.lock"):  # the last two shards may finish, and merge, together
        _merge(out, dirs)
    return True


def _datadir(t: dict[str, dict[str, str]], where: Path) -> DataDir:
    return DataDir(wav_scp=t["wav.scp"], utt2spk=t["utt2spk"], text=t["text"], utt2lang=t["utt2lang"],
                   utt2dur={u: float(d) for u, d in t["utt2dur"].items()}, name=str(where))


def _merge(out: Path, dirs: list[Path]) -> None:
    (out / ".done").unlink(missing_ok=True)
    tables = None
    ids = _merge_lines(out, dirs) if all((d / "spk2utt").exists() for d in dirs) else None
    if ids is None:  # shards from before they wrote checked Kaldi tables: parse, check, write
        tables, ids = _read_shards(dirs)
        write_kaldi_dir(_datadir(tables, out), out)
        _write_kv(out / "text.spoken", tables["text.spoken"])
    if not _merge_lhotse_parts(out, dirs, ids):  # shards written before they had their own parts
        _write_lhotse(out, tables or _read_shards(dirs)[0])
    atomic_write_text(out / ".done", "")
    log.info("merged %d shards: %d utterances -> %s", len(dirs), sum(map(len, ids)), out)


def _read_shards(dirs: list[Path]) -> tuple[dict[str, dict[str, str]], list[list[str]]]:
    """All shards' tables, parsed (and checked line by line) into one dict per table, and each
    shard's utterance ids (sorted)."""
    tables: dict[str, dict[str, str]] = {name: {} for name in SHARD_TABLES}
    ids = []
    for d in dirs:
        for name in SHARD_TABLES:
            table = _read_kv(d / name)
            tables[name].update(table)
            if name == "wav.scp":
                ids.append(sorted(table))
    return tables, ids


def _key(line: str) -> str:
    return line.split(None, 1)[0]


def _merge_lines(out: Path, dirs: list[Path]) -> list[list[str]] | None:
    """Interleave the shards' checked, sorted tables line by line (no parsing): the files
    write_kaldi_dir would write for all shards at once, staged and renamed together. Each shard's
    utterance ids (sorted); None when there is nothing to merge (the parsed path says why)."""
    ids = [[_key(line) for line in (d / "wav.scp").read_text(encoding="utf-8").splitlines()] for d in dirs]
    if not any(ids):
        return None
    utt2spk: dict[str, str] = {}  # filled while utt2spk is merged, for spk2utt

    def merged(name: str):
        def write(path: Path) -> None:
            shards = [(d / name).read_text(encoding="utf-8").splitlines(keepends=True) for d in dirs]
            with atomic_open(path, "w") as f:
                prev = None
                for line in heapq.merge(*shards, key=_key):
                    key = _key(line)
                    if key == prev:
                        raise DataError(f"{out}: utterance {key!r} is in two shards' {name}")
                    prev = key
                    f.write(line)
                    if name == "utt2spk":
                        utt2spk[key] = line.rstrip("\n").split(" ", 1)[1]
        return write

    writers = {name: merged(name) for name in KALDI + ("text.spoken",) if name != "spk2utt"}
    writers["spk2utt"] = lambda path: _write_kv(path, {s: " ".join(u) for s, u in spk2utt(utt2spk).items()})
    write_staged(out, writers)
    return ids


def _merge_lhotse_parts(out: Path, dirs: list[Path], ids: list[list[str]]) -> bool:
    """Interleave the shards' manifest lines by utterance id (``ids``: each shard's, sorted) into
    ``out``'s manifests: what lhotse would write for all shards at once, without rebuilding any
    object. False, and nothing written, when a shard has no parts or a part does not list its
    shard's utterances in that order."""
    merged = {}
    for name in LHOTSE_PARTS:
        per_shard = []
        for d, part_ids in zip(dirs, ids):
            part = d / f"{name}.jsonl.gz"
            if not part.exists():
                return False
            with gzip.open(part, "rb") as f:
                rows = f.read().splitlines(keepends=True)
            if len(rows) != len(part_ids) or not all(f'"id": "{u}"'.encode() in r for u, r in zip(part_ids, rows)):
                log.warning("%s does not list its shard's utterances: manifests rebuilt from the tables", part)
                return False
            per_shard.append(zip(part_ids, rows))
        merged[name] = [row for _, row in heapq.merge(*per_shard, key=lambda x: x[0])]
    for name, rows in merged.items():
        with atomic_open(out / f"{name}.jsonl.gz", "wb") as f, \
                gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.writelines(rows)
    return True


def _write_lhotse(out: Path, t: dict[str, dict[str, str]]) -> None:
    """recordings/supervisions.jsonl.gz of the utterances in tables ``t``, sorted by id."""
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recs, sups = [], []
    for utt in sorted(t["wav.scp"]):
        rec = _recording(utt, t["wav.scp"][utt], t[SHARD_ONLY].get(utt))
        recs.append(rec)
        sups.append(SupervisionSegment(id=utt, recording_id=utt, start=0.0,
                                       duration=rec.duration, channel=0, text=t["text"][utt],
                                       language=t["utt2lang"][utt], speaker=t["utt2spk"][utt],
                                       custom={"spoken": t["text.spoken"][utt]}))
    for name, items in (("recordings", RecordingSet.from_recordings(recs)),
                        ("supervisions", SupervisionSet.from_segments(sups))):
        tmp = out / f".{name}.tmp.jsonl.gz"
        items.to_file(tmp)
        tmp.replace(out / f"{name}.jsonl.gz")


def _recording(utt: str, path: str, frames_rate: str | None):
    """The lhotse Recording of a mono wav the shard wrote; from its header when the shard did not
    note ``frames rate`` (a shard written before that table existed)."""
    from lhotse import AudioSource, Recording

    if frames_rate is None:
        return Recording.from_file(path, recording_id=utt)
    frames, rate = (int(x) for x in frames_rate.split())
    return Recording(id=utt, sources=[AudioSource(type="file", channels=[0], source=path)],
                     sampling_rate=rate, num_samples=frames, duration=frames / rate)


def _write_kv(path: Path, table: dict[str, str]) -> None:
    with atomic_open(path, "w") as f:
        f.writelines(f"{k} {table[k]}\n" for k in sorted(table))


def _read_kv(path: Path) -> dict[str, str]:
    return read_table(path)[0] if path.exists() and path.stat().st_size else {}
