"""Read, validate and write Kaldi data directories.

Files (one record a line, ``<id><space or tab><value>``, UTF-8, ``LC_ALL=C`` sorted by id):

    wav.scp   <rec-id> <audio path>        or  <rec-id> <shell command> |  (only with allow_pipes)
    text      <utt-id> <transcript>        (transcript may be empty only with allow_empty_text)
    utt2spk   <utt-id> <spk-id>
    segments  <utt-id> <rec-id> <start s> <end s>   (optional; without it utt-id == rec-id)
    utt2lang  <utt-id> <language>          (Twister extension, e.g. zh / en; optional)
    utt2dur   <utt-id> <duration s>        (optional)
    spk2utt   written from utt2spk; never read (it is derived data)

Ids (utterance, recording, speaker) are one token of ``[A-Za-z0-9_.+-]`` that does not start
with ``.`` or ``-``: no whitespace (it would split the line), no shell metacharacters (ids end up
in file names and command lines), no leading dash (it would read as an option). Sort order is
byte order, as ``LC_ALL=C sort`` gives; for these characters that is Python's ``str`` order.

Every problem raises :class:`DataError` naming the file, the line and what is wrong. Reading
refuses unsorted files unless ``fix_sort=True`` (then they are sorted in memory); writing always
sorts and is atomic (temporary file + rename), so a crash never leaves a half-written file.
"""
from __future__ import annotations

import logging
import os
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

from twister_plugin.utils.fileio import OutputError, atomic_open

logger = logging.getLogger(__name__)

ID_RE = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+-]*\Z")
LANG_RE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]+)*\Z")
OPTIONAL_FILES = ("text", "segments", "utt2lang", "utt2dur")


class DataError(ValueError):
    """A data file is malformed; the message names file, line and problem."""


class _LineError(ValueError):
    """A bad value; the caller adds file and line."""


class Segment(NamedTuple):
    recording: str  # recording id (a key of wav.scp)
    start: float  # seconds from the start of the recording
    end: float  # seconds, > start


class AudioRef(NamedTuple):
    entry: str  # wav.scp value: a path, or "cmd |"
    start: float  # seconds
    end: float | None  # seconds; None = to the end of the recording


@dataclass
class DataDir:
    """One Kaldi data dir in memory; every dict is kept sorted by id (``__post_init__``)."""

    wav_scp: dict[str, str]  # recording id -> path or "cmd |"
    utt2spk: dict[str, str]  # utterance id -> speaker id
    text: dict[str, str] | None = None  # utterance id -> transcript (None: unlabeled audio)
    segments: dict[str, Segment] | None = None  # utterance id -> part of a recording
    utt2lang: dict[str, str] | None = None  # utterance id -> language code (zh, en, ...)
    utt2dur: dict[str, float] | None = None  # utterance id -> duration in seconds
    name: str = field(default="<memory>", compare=False)  # where it came from, for messages

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                setattr(self, f.name, dict(sorted(value.items())))

    @property
    def utt_ids(self) -> list[str]:
        return list(self.segments if self.segments is not None else self.wav_scp)

    def spk2utt(self) -> dict[str, list[str]]:
        return spk2utt(self.utt2spk)

    def audio(self, utt: str) -> AudioRef:
        """Where the audio of ``utt`` is: a wav.scp entry and a time span."""
        if self.segments is None:
            return AudioRef(self.wav_scp[utt], 0.0, None)
        seg = self.segments[utt]
        return AudioRef(self.wav_scp[seg.recording], seg.start, seg.end)

    def subset(self, ids: Iterable[str]) -> DataDir:
        """The utterances ``ids`` (all must exist) with their recordings."""
        keep = set(ids)
        unknown = sorted(keep - set(self.utt_ids))
        if unknown:
            raise DataError(f"{self.name}: {len(unknown)} ids not in this data dir, e.g. {unknown[:3]}")
        pick = lambda d: None if d is None else {k: v for k, v in d.items() if k in keep}  # noqa: E731
        recs = (keep if self.segments is None
                else {s.recording for u, s in self.segments.items() if u in keep})
        return DataDir(
            wav_scp={k: v for k, v in self.wav_scp.items() if k in recs},
            utt2spk=pick(self.utt2spk), text=pick(self.text), segments=pick(self.segments),
            utt2lang=pick(self.utt2lang), utt2dur=pick(self.utt2dur), name=self.name,
        )

    def validate(self, *, allow_pipes: bool = False, allow_empty_text: bool = False) -> None:
        """Check every id and value and the cross-file consistency of an in-memory dir."""
        checks = _value_checks(allow_pipes, allow_empty_text)
        for fname, check in checks.items():
            table = getattr(self, _attr(fname))
            for key, value in (table or {}).items():
                where = f"{self.name}/{fname} (id {key!r})"
                try:
                    check_id(key)
                    check(_unparse(fname, value))
                except _LineError as e:
                    raise DataError(f"{where}: {e}") from None
        check_consistency(self)


# ----------------------------------------------------------------------------------- values
def check_id(s: str) -> str:
    if not ID_RE.match(s):
        bad = next((c for c in s if not re.match(r"[A-Za-z0-9_.+-]", c)), s[:1])
        raise _LineError(f"bad id {s!r}: character {bad!r} not allowed (ids use [A-Za-z0-9_.+-], "
                         "not starting with '.' or '-')")
    return s


def is_pipe(entry: str) -> bool:
    return entry.rstrip().endswith("|")


def _wav_entry(allow_pipes: bool) -> Callable[[str], str]:
    def parse(rest: str) -> str:
        if not rest:
            raise _LineError("no audio path after the id")
        if is_pipe(rest) and not allow_pipes:
            raise _LineError(f"pipe command {rest!r} refused: it would run a shell command "
                             "(pass allow_pipes=True if you trust this file)")
        return rest
    return parse


def _text(allow_empty: bool) -> Callable[[str], str]:
    def parse(rest: str) -> str:
        if not rest and not allow_empty:
            raise _LineError("empty transcript (pass allow_empty_text=True to accept)")
        return rest
    return parse


def _single_id(rest: str) -> str:
    parts = rest.split()
    if len(parts) != 1:
        raise _LineError(f"want exactly one speaker id after the utterance id, got {len(parts)}")
    return check_id(parts[0])


def _float(s: str, what: str) -> float:
    try:
        x = float(s)
    except ValueError:
        raise _LineError(f"{what} {s!r} is not a number") from None
    if not math.isfinite(x):
        raise _LineError(f"{what} {s!r} is not finite")
    return x


def _segment(rest: str) -> Segment:
    parts = rest.split()
    if len(parts) != 3:
        raise _LineError(f"want '<utt> <recording> <start> <end>', got {len(parts) + 1} fields")
    rec = check_id(parts[0])
    start, end = _float(parts[1], "start"), _float(parts[2], "end")
    if start < 0:
        raise _LineError(f"start {start} is negative")
    if end <= start:
        raise _LineError(f"end {end} is not after start {start}")
    return Segment(rec, start, end)


def _lang(rest: str) -> str:
    if not LANG_RE.match(rest):
        raise _LineError(f"bad language {rest!r} (want a code like zh, en, zh-CN)")
    return rest


def _duration(rest: str) -> float:
    x = _float(rest, "duration")
    if x <= 0:
        raise _LineError(f"duration {x} is not positive")
    return x


def _value_checks(allow_pipes: bool, allow_empty_text: bool) -> dict[str, Callable[[str], object]]:
    return {"wav.scp": _wav_entry(allow_pipes), "utt2spk": _single_id, "text": _text(allow_empty_text),
            "segments": _segment, "utt2lang": _lang, "utt2dur": _duration}


def _attr(fname: str) -> str:
    return fname.replace(".", "_")


def fmt_float(x: float) -> str:
    """Seconds as Kaldi files hold them: microsecond precision, no trailing zeros."""
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _unparse(fname: str, value: object) -> str:
    if fname == "segments":
        return f"{value.recording} {fmt_float(value.start)} {fmt_float(value.end)}"
    if fname == "utt2dur":
        return fmt_float(value)
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        raise _LineError(f"value {value!r} is not a one-line string")
    return value


# ----------------------------------------------------------------------------------- reading
def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file; refuses bad bytes and Windows line endings."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    data = path.read_bytes()
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for n, raw in enumerate(raw_lines, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{n}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at "
                            f"column {e.start + 1})") from None
        if line.endswith("\r"):
            raise DataError(f"{path}:{n}: Windows line ending (\\r\\n); convert with dos2unix")
        if n == 1 and line.startswith("\ufeff"):
            raise DataError(f"{path}:{n}: starts with a byte-order mark (U+FEFF); remove it")
        yield n, line


_LINE_RE = re.compile(r"(\S+)(?:[ \t]+(.*?))?[ \t]*\Z")


def read_table(path: str | Path, parse: Callable[[str], object] = str, *, fix_sort: bool = False,
               ) -> tuple[dict[str, object], dict[str, int]]:
    """Read ``<id> <value>`` lines: (id -> parse(value), id -> line number)."""
    path = Path(path)
    values: dict[str, object] = {}
    lines: dict[str, int] = {}
    prev = None
    for n, line in iter_lines(path):
        if not line.strip():
            raise DataError(f"{path}:{n}: blank line")
        m = _LINE_RE.match(line)
        if m is None or line[0] in " \t":
            raise DataError(f"{path}:{n}: malformed line {line[:80]!r} (want '<id> <value>')")
        key, rest = m.group(1), m.group(2) or ""
        if key in lines:
            raise DataError(f"{path}:{n}: duplicate id {key!r} (first on line {lines[key]})")
        try:
            check_id(key)
            values[key] = parse(rest)
        except _LineError as e:
            raise DataError(f"{path}:{n}: {e}") from None
        if prev is not None and key < prev and not fix_sort:
            raise DataError(f"{path}:{n}: not sorted: {key!r} comes after {prev!r}; Kaldi needs "
                            "LC_ALL=C sort order (sort the file or pass fix_sort=True)")
        lines[key], prev = n, key
    return dict(sorted(values.items())), lines


def read_text(path: str | Path, *, allow_empty: bool = True, fix_sort: bool = True) -> dict[str, str]:
    """A Kaldi ``text`` file (references or hypotheses) as id -> transcript."""
    return read_table(path, _text(allow_empty), fix_sort=fix_sort)[0]


def read_ids(path: str | Path) -> dict[str, int]:
    """An id list (one id a line, extra columns ignored) as id -> line number; duplicates refused."""
    seen: dict[str, int] = {}
    for n, line in iter_lines(Path(path)):
        parts = line.split()
        if not parts:
            raise DataError(f"{path}:{n}: blank line")
        try:
            check_id(parts[0])
        except _LineError as e:
            raise DataError(f"{path}:{n}: {e}") from None
        if parts[0] in seen:
            raise DataError(f"{path}:{n}: duplicate id {parts[0]!r} (first on line {seen[parts[0]]})")
        seen[parts[0]] = n
    return seen


def read_kaldi_dir(path: str | Path, *, allow_pipes: bool = False, allow_empty_text: bool = False,
                   require_text: bool = True, fix_sort: bool = False, check_audio: bool = False,
                   ) -> DataDir:
    """Read and validate a Kaldi data dir (see the module docstring for the rules)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a directory")
    checks = _value_checks(allow_pipes, allow_empty_text)
    tables: dict[str, dict] = {}
    lines: dict[str, dict[str, int]] = {}
    for fname in ("wav.scp", "utt2spk") + OPTIONAL_FILES:
        fpath = path / fname
        if not fpath.exists():
            if fname in ("wav.scp", "utt2spk") or (fname == "text" and require_text):
                raise DataError(f"{fpath}: missing (a data dir needs wav.scp, utt2spk and text)")
            continue
        tables[_attr(fname)], lines[fname] = read_table(fpath, checks[fname], fix_sort=fix_sort)
    dd = DataDir(**tables, name=str(path))
    check_consistency(dd, lines)
    if check_audio:
        _check_audio_paths(dd, lines.get("wav.scp", {}))
    return dd


def _check_audio_paths(dd: DataDir, lines: dict[str, int]) -> None:
    for rec, entry in dd.wav_scp.items():
        if not is_pipe(entry) and not Path(entry).is_file():
            raise DataError(f"{dd.name}/wav.scp:{lines.get(rec, '?')}: audio file {entry!r} of "
                            f"{rec!r} does not exist")


def check_consistency(dd: DataDir, lines: dict[str, dict[str, int]] | None = None) -> None:
    """Every per-utterance file covers exactly the utterances; segments name known recordings."""
    lines = lines or {}

    def loc(fname: str, key: str) -> str:
        n = lines.get(fname, {}).get(key)
        return f"{dd.name}/{fname}:{n}" if n else f"{dd.name}/{fname} (id {key!r})"

    if not dd.wav_scp:
        raise DataError(f"{dd.name}/wav.scp: no recordings")
    source = "wav.scp"
    if dd.segments is not None:
        source = "segments"
        for utt, seg in dd.segments.items():
            if seg.recording not in dd.wav_scp:
                raise DataError(f"{loc('segments', utt)}: recording {seg.recording!r} of "
                                f"{utt!r} is not in wav.scp")
    utts = set(dd.utt_ids)
    for fname in ("utt2spk", "text", "utt2lang", "utt2dur"):
        table = getattr(dd, fname)
        if table is None:
            continue
        extra = sorted(set(table) - utts)
        if extra:
            raise DataError(f"{loc(fname, extra[0])}: utterance {extra[0]!r} is not in {source}"
                            f" ({len(extra)} such ids)")
        missing = sorted(utts - set(table))
        if missing:
            raise DataError(f"{loc(source, missing[0])}: utterance {missing[0]!r} has no line in "
                            f"{fname} ({len(missing)} such ids)")


# ----------------------------------------------------------------------------------- writing
def spk2utt(utt2spk: dict[str, str]) -> dict[str, list[str]]:
    """Speakers in id order, each with its utterances in id order (as Kaldi's spk2utt)."""
    out: dict[str, list[str]] = {}
    for utt, spk in sorted(utt2spk.items()):
        out.setdefault(spk, []).append(utt)
    return dict(sorted(out.items()))


def write_kaldi_dir(dd: DataDir, path: str | Path, *, allow_pipes: bool = False,
                    allow_empty_text: bool = False) -> None:
    """Validate ``dd`` and write it sorted; stale optional files are removed.

    Atomic for the whole dir: every file is first written in full under a staged name, and only
    when all writes succeeded are they renamed into place, so a full disk or a crash leaves the
    previous dir readable (never a new wav.scp beside an old text)."""
    dd.validate(allow_pipes=allow_pipes, allow_empty_text=allow_empty_text)
    tables = {"wav.scp": dd.wav_scp, "utt2spk": dd.utt2spk,
              "spk2utt": {k: " ".join(v) for k, v in dd.spk2utt().items()}}
    tables.update({f: getattr(dd, _attr(f)) for f in OPTIONAL_FILES if getattr(dd, _attr(f)) is not None})
    write_staged(path, {fname: (lambda tmp, t=table, f=fname: _write_table(tmp, t, f))
                        for fname, table in tables.items()})


def write_staged(path: str | Path, writers: dict[str, Callable[[Path], None]]) -> None:
    """A data dir's files, atomically as a whole: ``writers[fname](staged)`` writes each file in
    full under a staged name (in order), and only when all succeeded are they renamed into
    place; then optional files the dir no longer has are removed (never left from another run)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    staged = {fname: path / f".staged.{fname}" for fname in writers}
    fname = ""
    try:
        for fname, write in writers.items():
            write(staged[fname])
    except BaseException as e:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        if isinstance(e, OutputError):  # name the real file, not its staged copy
            raise OutputError(f"{path / fname}: {str(e).split(': ', 1)[-1]}") from e
        raise
    for fname, tmp in staged.items():
        os.replace(tmp, path / fname)
    for fname in OPTIONAL_FILES:
        if fname not in writers and (path / fname).exists():
            logger.info("removing stale %s (this data dir has none)", path / fname)
            (path / fname).unlink()


def _write_table(fpath: Path, table: dict, fname: str) -> None:
    with atomic_open(fpath, "w") as f:
        for key in sorted(table):
            value = _unparse(fname, table[key]) if fname != "spk2utt" else table[key]
            f.write(f"{key} {value}\n" if value != "" else f"{key}\n")
