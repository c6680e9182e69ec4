"""Join short utterances of a Kaldi dir into windows of at most ``max_seconds`` (Whisper's 30 s).

A window is K >= 2 source utterances (of one speaker, unless ``by_speaker`` is off) laid end to
end with ``gap_seconds`` of digital silence between them; its transcript is the sources'
transcripts joined with :func:`join_text`. Utterances that fit no window (too long, or the last
one of a speaker) and windows not drawn by ``share`` stay as they are (same id, same audio).

Outputs (written by :func:`concat_dir`):
    <audio_dir>/<window id>.flac   16-bit FLAC at ``sample_rate``, written atomically; an existing
                                   file of the right length is kept, so a rerun resumes
    concat map rows                (window id, source utt, start s, end s) of every source in its
                                   window, written by :func:`write_concat_map` as ``concat_map``
                                   (``<window> <src> <start> <end>`` a line, sorted) for a later
                                   alignment step

Window ids are ``cat<K>-<first source id>``: unique (a source sits in one window) and stable.
Planning is deterministic for a seed: utterances are shuffled per group with ``random.Random``
seeded by (seed, group id), then packed greedily in that order.
"""
from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import soundfile as sf
from tqdm import tqdm

from twister_plugin.data.audio import load_utt, probe_audio
from twister_plugin.data.kaldi import DataDir, DataError, fmt_float, iter_lines
from twister_plugin.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

DUR_SLACK_S = 1e-3  # planning adds this per utterance: utt2dur / manifest durations are rounded
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


class ConcatError(ValueError):
    """Bad concatenation options or input; the message names the file or option."""


@dataclass(frozen=True)
class ConcatOptions:
    max_seconds: float = 30.0  # longest window, gaps included (Whisper's encoder window)
    gap_seconds: float = 0.3  # digital silence between two joined utterances
    share: float = 0.0  # fraction of the planned multi-utterance windows kept (0: concatenation off)
    by_speaker: bool = True  # join only utterances of the same speaker
    seed: int = 0  # shuffling and window draw
    sample_rate: int = 16000  # rate of the written windows

    def __post_init__(self) -> None:
        if not self.max_seconds > 0:
            raise ConcatError(f"concat max_seconds must be > 0, got {self.max_seconds}")
        if self.gap_seconds < 0:
            raise ConcatError(f"concat gap_seconds must be >= 0, got {self.gap_seconds}")
        if not 0.0 <= self.share <= 1.0:
            raise ConcatError(f"concat share must be in [0, 1], got {self.share}")


class Placement(NamedTuple):
    window: str  # window utterance id
    source: str  # source utterance id
    start: float  # seconds from the window start
    end: float  # seconds


@dataclass
class ConcatStats:
    windows: int = 0  # multi-utterance windows in the output
    joined: int = 0  # source utterances inside them
    single: int = 0  # utterances passed through unchanged
    written: int = 0  # window files written by this run
    reused: int = 0  # window files found complete from an earlier run


# ----------------------------------------------------------------------------------- text
def join_text(parts: Iterable[str]) -> str:
    """Join transcripts: no separator where either side of the boundary is a CJK character
    (zh + zh, zh + en, en + zh), one space otherwise (en + en: ``apple`` + ``pay``)."""
    out = ""
    for p in (p.strip() for p in parts):
        if not p:
            continue
        if out and not (_CJK.match(out[-1]) or _CJK.match(p[0])):
            out += " "
        out += p
    return out


def window_language(langs: list[str]) -> str:
    """One language for a window: the common one, else ``zh`` when present (Mandarin-English
    code-switching is transcribed under the zh prompt), else the first."""
    uniq = sorted(set(langs))
    if len(uniq) == 1:
        return uniq[0]
    return "zh" if "zh" in uniq else langs[0]


# ----------------------------------------------------------------------------------- planning
def durations_of(dd: DataDir) -> dict[str, float]:
    """utt2dur, or the probed length of every audio file when the dir has none."""
    if dd.utt2dur:
        return dict(dd.utt2dur)
    out = {}
    for u in dd.utt_ids:
        ref = dd.audio(u)
        if ref.end is not None:
            out[u] = ref.end - ref.start
        else:
            info = probe_audio(ref.entry)
            out[u] = info.num_samples / info.sample_rate - ref.start
    return out


def plan_windows(dd: DataDir, durations: dict[str, float], opts: ConcatOptions) -> list[list[str]]:
    """Groups of source ids; a group of one is an utterance left as it is."""
    groups: dict[str, list[str]] = {}
    for u in dd.utt_ids:
        groups.setdefault(dd.utt2spk[u] if opts.by_speaker else "all", []).append(u)
    planned: list[list[str]] = []
    for key in sorted(groups):
        ids = sorted(groups[key])
        random.Random(f"{opts.seed}:{key}").shuffle(ids)
        cur: list[str] = []
        total = 0.0
        for u in ids:
            d = durations[u] + DUR_SLACK_S
            extra = d + (opts.gap_seconds if cur else 0.0)
            if cur and total + extra > opts.max_seconds + 1e-9:
                planned.append(cur)
                cur, total, extra = [], 0.0, d
            cur.append(u)
            total += extra
        if cur:
            planned.append(cur)
    rng = random.Random(opts.seed)
    out = []
    for group in planned:
        keep = len(group) > 1 and rng.random() < opts.share
        out.extend([group] if keep else [[u] for u in group])
    return out


# ----------------------------------------------------------------------------------- audio
def build_window(dd: DataDir, group: list[str], opts: ConcatOptions
                 ) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """(S,) float32 samples of the window and (source, start s, end s) of each source."""
    sr = opts.sample_rate
    gap = np.zeros(int(round(opts.gap_seconds * sr)), np.float32)
    pieces, spans, pos = [], [], 0
    for i, u in enumerate(group):
        if i:
            pieces.append(gap)
            pos += len(gap)
        x = load_utt(dd, u, sr)
        pieces.append(x)
        spans.append((u, pos / sr, (pos + len(x)) / sr))
        pos += len(x)
    y = np.concatenate(pieces)
    if len(y) > opts.max_seconds * sr + 1:
        raise ConcatError(f"{dd.name}: window of {group} is {len(y) / sr:.2f} s, more than "
                          f"max_seconds={opts.max_seconds} (utt2dur disagrees with the audio)")
    return y, spans


def window_id(group: list[str]) -> str:
    return f"cat{len(group)}-{group[0]}"


def _write_flac(path: Path, x: np.ndarray, sr: int) -> None:
    with atomic_open(path, "wb") as f:
        sf.write(f, x, sr, format="FLAC", subtype="PCM_16")


def concat_dir(dd: DataDir, audio_dir: str | Path, opts: ConcatOptions = ConcatOptions(),
               ) -> tuple[DataDir, list[Placement], ConcatStats]:
    """Windows of ``dd``: the new DataDir (windows + untouched utterances), the placements of
    the sources in the windows, and counts. Needs ``text``; writes windows under ``audio_dir``."""
    if dd.text is None:
        raise ConcatError(f"{dd.name}: concatenation needs transcripts (no text file)")
    audio_dir = Path(audio_dir)
    durs = durations_of(dd)
    langs = dd.utt2lang or {}
    out = DataDir(wav_scp={}, utt2spk={}, text={}, utt2lang={}, utt2dur={}, name=f"{dd.name}+concat")
    placements: list[Placement] = []
    stats = ConcatStats()
    plan = plan_windows(dd, durs, opts)
    for group in tqdm(plan, desc="concat", unit="window", disable=len(plan) < 50):
        if len(group) == 1:
            _copy_utt(dd, group[0], out, durs)
            stats.single += 1
            continue
        wid = window_id(group)
        path = audio_dir / f"{wid}.flac"
        sr = opts.sample_rate
        spans = _reusable(dd, group, path, opts)
        if spans is not None:
            stats.reused += 1
            n = int(round(spans[-1][2] * sr))
        else:
            y, spans = build_window(dd, group, opts)
            _write_flac(path, y, sr)
            stats.written += 1
            n = len(y)
        placements += [Placement(wid, u, s, e) for u, s, e in spans]
        out.wav_scp[wid] = str(path.absolute())
        out.utt2spk[wid] = dd.utt2spk[group[0]]
        out.text[wid] = join_text(dd.text[u] for u in group)
        out.utt2lang[wid] = window_language([langs.get(u, "zh") for u in group])
        out.utt2dur[wid] = n / sr
        stats.windows += 1
        stats.joined += len(group)
    return DataDir(out.wav_scp, out.utt2spk, out.text, utt2lang=out.utt2lang, utt2dur=out.utt2dur,
                   name=out.name), placements, stats


def _copy_utt(dd: DataDir, u: str, out: DataDir, durs: dict[str, float]) -> None:
    if dd.segments is not None:
        raise ConcatError(f"{dd.name}: segments are not supported by concatenation")
    out.wav_scp[u] = dd.wav_scp[u]
    out.utt2spk[u] = dd.utt2spk[u]
    out.text[u] = dd.text[u]
    out.utt2lang[u] = (dd.utt2lang or {}).get(u, "zh")
    out.utt2dur[u] = durs[u]


def complete_frames(path: Path) -> int | None:
    """Length of an audio file left by an earlier run, or None when it is missing or cut short
    (its last sample does not decode)."""
    if not path.is_file():
        return None
    try:
        with sf.SoundFile(str(path)) as f:
            n = f.frames
            f.seek(max(0, n - 1))
            return n if n > 0 and len(f.read(1)) == 1 else None
    except (sf.LibsndfileError, RuntimeError):
        return None


def _reusable(dd: DataDir, group: list[str], path: Path, opts: ConcatOptions):
    """Placements of a window file left by an earlier run, if it is complete (its length is
    what the sources' probed lengths and the gaps give); else None."""
    frames = complete_frames(path)
    if frames is None:
        return None
    sr = opts.sample_rate
    gap = int(round(opts.gap_seconds * sr))
    pos, spans = 0, []
    for i, u in enumerate(group):
        ref = dd.audio(u)
        info = probe_audio(ref.entry)
        end = info.num_samples if ref.end is None else int(round(ref.end * info.sample_rate))
        n = int(round((end - int(round(ref.start * info.sample_rate))) * sr / info.sample_rate))
        pos += gap if i else 0
        spans.append((u, pos / sr, (pos + n) / sr))
        pos += n
    return spans if frames == pos else None


# ----------------------------------------------------------------------------------- concat_map
def write_concat_map(rows: Iterable[Placement], path: str | Path) -> None:
    """``<window> <source> <start> <end>`` lines, sorted by window then start."""
    with atomic_open(path, "w") as f:
        for r in sorted(rows, key=lambda r: (r.window, r.start)):
            f.write(f"{r.window} {r.source} {fmt_float(r.start)} {fmt_float(r.end)}\n")


def read_concat_map(path: str | Path) -> list[Placement]:
    rows = []
    for n, line in iter_lines(Path(path)):
        parts = line.split()
        if len(parts) != 4:
            raise DataError(f"{path}:{n}: want '<window> <source> <start> <end>', got {len(parts)} fields")
        try:
            start, end = float(parts[2]), float(parts[3])
        except ValueError:
            raise DataError(f"{path}:{n}: start/end {parts[2]!r} {parts[3]!r} are not numbers") from None
        if not 0 <= start < end:
            raise DataError(f"{path}:{n}: bad span [{start}, {end}]")
        rows.append(Placement(parts[0], parts[1], start, end))
    return rows
