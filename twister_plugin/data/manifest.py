"""Shared-data ``manifest.tsv`` -> DataDir, lhotse conversion, and id / language selection.

manifest.tsv: a tab-separated header with at least the columns ``utt_id audio speaker duration_s
sample_rate language text`` (extra columns are ignored), then one utterance a row; ``audio`` is
relative to the manifest's folder (absolute paths are kept). A row becomes: wav.scp (absolute
audio path), utt2spk (speaker), utt2lang (language), utt2dur (duration_s) and text.

lhotse: one cut = one utterance = one supervision. ``to_lhotse`` gives a CutSet whose cut ids are
the utterance ids (a MonoCut per utterance, a MultiCut for multi-channel audio, which Twister
downmixes); ``from_lhotse`` takes cuts with exactly one supervision each (e.g. after
``cuts.trim_to_supervisions()``) and writes a segments file unless every cut is a whole recording
with the recording's id.
"""
from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from twister_plugin.data.audio import AudioError, probe_audio
from twister_plugin.data.kaldi import (
    LANG_RE, DataDir, DataError, Segment, _LineError, check_id, is_pipe, iter_lines, read_ids,
)

logger = logging.getLogger(__name__)

COLUMNS = ("utt_id", "audio", "speaker", "duration_s", "sample_rate", "language", "text")
LANGUAGE_NAMES = {"english": "en", "chinese": "zh", "mandarin": "zh"}  # lhotse-style names


# ----------------------------------------------------------------------------------- manifest
def read_manifest(path: str | Path, *, allow_empty_text: bool = False, check_audio: bool = True,
                  fix_speaker_ids: bool = False) -> DataDir:
    """Read and validate a shared-data manifest.tsv (errors name the file and line).

    ``fix_speaker_ids``: a speaker with characters ids may not hold (e.g. ``cards-speaker?``)
    gets them replaced by ``_`` (logged once per speaker) instead of being refused.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such manifest")
    base = path.parent.absolute()
    rows = iter_lines(path)
    try:
        _, header = next(rows)
    except StopIteration:
        raise DataError(f"{path}:1: empty manifest (want a header line)") from None
    names = header.split("\t")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise DataError(f"{path}:1: header lacks columns {missing} (have {names})")
    col = {c: names.index(c) for c in COLUMNS}
    tables: dict[str, dict] = {k: {} for k in ("wav_scp", "utt2spk", "utt2lang", "utt2dur", "text")}
    first_line: dict[str, int] = {}
    speakers: dict[str, str] = {}  # fixed speaker id -> original
    for n, line in rows:
        cells = line.split("\t")
        if len(cells) != len(names):
            raise DataError(f"{path}:{n}: {len(cells)} tab-separated fields, header has {len(names)}")
        row = {c: cells[i] for c, i in col.items()}
        try:
            if fix_speaker_ids:
                row["speaker"] = _fix_speaker(row["speaker"], speakers)
            utt = _manifest_row(row, base, tables, allow_empty_text, check_audio)
        except _LineError as e:
            raise DataError(f"{path}:{n}: {e}") from None
        if utt in first_line:
            raise DataError(f"{path}:{n}: duplicate utt_id {utt!r} (first on line {first_line[utt]})")
        first_line[utt] = n
    if not first_line:
        raise DataError(f"{path}: no utterances after the header")
    return DataDir(**tables, name=str(path))


def _manifest_row(row: dict[str, str], base: Path, tables: dict[str, dict],
                  allow_empty_text: bool, check_audio: bool) -> str:
    utt = check_id(row["utt_id"])
    if utt in tables["wav_scp"]:
        return utt  # the caller reports the duplicate with both line numbers
    if not row["audio"]:
        raise _LineError("empty audio path")
    audio = os.path.normpath(base / row["audio"])
    if check_audio and not Path(audio).is_file():
        raise _LineError(f"audio file {audio} does not exist")
    try:
        dur, rate = float(row["duration_s"]), int(row["sample_rate"])
    except ValueError:
        raise _LineError(f"duration_s {row['duration_s']!r} / sample_rate {row['sample_rate']!r} "
                         "is not a number") from None
    if not (math.isfinite(dur) and dur > 0) or rate <= 0:
        raise _LineError(f"duration_s {dur} and sample_rate {rate} must be positive")
    if not LANG_RE.match(row["language"]):
        raise _LineError(f"bad language {row['language']!r} (want a code like zh, en)")
    text = row["text"].strip()
    if not text and not allow_empty_text:
        raise _LineError("empty text (pass allow_empty_text=True to accept)")
    try:
        spk = check_id(row["speaker"])
    except _LineError as e:
        raise _LineError(f"speaker: {e}; fix_speaker_ids=True (--fix-speaker-ids) maps it") from None
    tables["wav_scp"][utt] = audio
    tables["utt2spk"][utt] = spk
    tables["utt2lang"][utt] = row["language"]
    tables["utt2dur"][utt] = dur
    tables["text"][utt] = text
    return utt


def _fix_speaker(spk: str, speakers: dict[str, str]) -> str:
    fixed = re.sub(r"[^A-Za-z0-9_.+-]", "_", spk)
    fixed = "_" + fixed[1:] if fixed[:1] in (".", "-") else fixed
    if fixed not in speakers and fixed != spk:
        logger.warning("speaker id %r -> %r (characters ids may not hold)", spk, fixed)
    if speakers.setdefault(fixed, spk) != spk:
        raise _LineError(f"speakers {speakers[fixed]!r} and {spk!r} both become {fixed!r}")
    return fixed


# ----------------------------------------------------------------------------------- selection
def select_ids(dd: DataDir, ids_file: str | Path) -> DataDir:
    """Keep the utterances listed in ``ids_file`` (one id a line); unknown ids are refused."""
    ids = read_ids(ids_file)
    have = set(dd.utt_ids)
    for utt, n in ids.items():
        if utt not in have:
            raise DataError(f"{ids_file}:{n}: id {utt!r} is not in {dd.name}")
    if not ids:
        raise DataError(f"{ids_file}: no ids")
    return dd.subset(ids)


def select_language(dd: DataDir, lang: str) -> DataDir:
    """The set's language is ``lang``: other languages are dropped (and logged); a dir without
    utt2lang gets ``lang`` for every utterance."""
    if not LANG_RE.match(lang):
        raise DataError(f"bad language {lang!r} (want a code like zh, en)")
    if dd.utt2lang is None:
        dd.utt2lang = {u: lang for u in dd.utt_ids}
        return dd
    keep = [u for u, l in dd.utt2lang.items() if l == lang]
    if not keep:
        raise DataError(f"{dd.name}: no utterance has language {lang!r} "
                        f"(languages: {sorted(set(dd.utt2lang.values()))})")
    if len(keep) < len(dd.utt2lang):
        logger.info("language %s: keeping %d of %d utterances of %s", lang, len(keep),
                    len(dd.utt2lang), dd.name)
    return dd.subset(keep)


# ----------------------------------------------------------------------------------- lhotse
def to_lhotse_manifests(dd: DataDir, *, allow_pipes: bool = False):
    """(RecordingSet, SupervisionSet); supervision times are in recording time."""
    from lhotse import AudioSource, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recordings = {}
    for rec, entry in tqdm(dd.wav_scp.items(), desc="read audio headers", unit="file", disable=None):
        try:
            info = probe_audio(entry, allow_pipes=allow_pipes)
        except AudioError as e:
            raise DataError(f"{dd.name}/wav.scp (id {rec!r}): {e}") from None
        kind, source = ("command", entry.rstrip()[:-1].strip()) if is_pipe(entry) else ("file", entry)
        recordings[rec] = Recording(
            id=rec, sources=[AudioSource(type=kind, channels=list(range(info.channels)), source=source)],
            sampling_rate=info.sample_rate, num_samples=info.num_samples,
            duration=info.num_samples / info.sample_rate)
    sups = []
    for utt in dd.utt_ids:
        seg = dd.segments[utt] if dd.segments else Segment(utt, 0.0, recordings[utt].duration)
        rec = recordings[seg.recording]
        if seg.end > rec.duration + 0.02:
            raise DataError(f"{dd.name}/segments (id {utt!r}): ends at {seg.end} s, after the end "
                            f"of {seg.recording!r} ({rec.duration:.3f} s)")
        end = min(seg.end, rec.duration)
        sups.append(SupervisionSegment(
            id=utt, recording_id=rec.id, start=seg.start, duration=end - seg.start,
            channel=rec.channel_ids[0] if rec.num_channels == 1 else rec.channel_ids,
            text=dd.text[utt] if dd.text else None, speaker=dd.utt2spk[utt],
            language=dd.utt2lang[utt] if dd.utt2lang else None))
    return RecordingSet.from_recordings(recordings.values()), SupervisionSet.from_segments(sups)


def to_lhotse(dd: DataDir, *, allow_pipes: bool = False):
    """A CutSet with one cut per utterance (cut id = utterance id, supervision = whole cut)."""
    from lhotse import CutSet, MonoCut, MultiCut
    from lhotse.utils import fastcopy

    recordings, supervisions = to_lhotse_manifests(dd, allow_pipes=allow_pipes)
    cuts = []
    for sup in supervisions:
        rec = recordings[sup.recording_id]
        local = fastcopy(sup, start=0.0)  # supervision times are relative to the cut
        kind = MonoCut if rec.num_channels == 1 else MultiCut
        cuts.append(kind(id=sup.id, start=sup.start, duration=sup.duration, channel=sup.channel,
                         recording=rec, supervisions=[local]))
    return CutSet.from_cuts(cuts)


def from_lhotse(cuts: Iterable, *, name: str = "<lhotse>") -> DataDir:
    """A DataDir from cuts with one supervision each (utterance id = cut id)."""
    wav: dict[str, str] = {}
    spans: dict[str, Segment] = {}
    whole = True
    tables: dict[str, dict] = {"utt2spk": {}, "text": {}, "utt2lang": {}, "utt2dur": {}}
    for cut in cuts:
        where = f"{name} (cut {cut.id!r})"
        try:
            rec, span = _cut_span(cut)
            check_id(cut.id)
            check_id(rec.id)
        except _LineError as e:
            raise DataError(f"{where}: {e}") from None
        entry = _wav_entry(rec, where)
        if wav.setdefault(rec.id, entry) != entry:
            raise DataError(f"{where}: recording {rec.id!r} has two sources: {wav[rec.id]!r}, {entry!r}")
        if cut.id in spans:
            raise DataError(f"{where}: duplicate cut id")
        spans[cut.id] = span
        whole &= cut.id == rec.id and span.start == 0 and abs(span.end - rec.duration) < 1e-3
        sup = cut.supervisions[0]
        tables["utt2spk"][cut.id] = sup.speaker or cut.id
        tables["text"][cut.id] = sup.text
        tables["utt2lang"][cut.id] = LANGUAGE_NAMES.get((sup.language or "").lower(), sup.language)
        tables["utt2dur"][cut.id] = span.end - span.start
    if not spans:
        raise DataError(f"{name}: no cuts")
    for key in ("text", "utt2lang"):
        values = list(tables[key].values())
        if all(v is None for v in values):
            tables[key] = None
        elif any(v is None for v in values):
            raise DataError(f"{name}: some supervisions have no {key}, others do")
    dd = DataDir(wav_scp=wav, segments=None if whole else spans, name=name, **tables)
    dd.validate(allow_pipes=True, allow_empty_text=True)
    return dd


def _cut_span(cut) -> tuple[object, Segment]:
    """The cut's recording and its one supervision's span in recording time."""
    rec = getattr(cut, "recording", None)
    if rec is None:
        raise _LineError(f"{type(cut).__name__} has no single recording (mixed or padding cut)")
    if len(cut.supervisions) != 1:
        raise _LineError(f"{len(cut.supervisions)} supervisions; want one per cut "
                         "(use cuts.trim_to_supervisions())")
    sup = cut.supervisions[0]
    start = cut.start + max(sup.start, 0.0)
    end = cut.start + min(sup.end, cut.duration)
    if end <= start:
        raise _LineError(f"supervision {sup.id!r} lies outside the cut")
    return rec, Segment(rec.id, start, end)


def _wav_entry(rec, where: str) -> str:
    if len(rec.sources) != 1 or rec.sources[0].type not in ("file", "command"):
        kinds = [s.type for s in rec.sources]
        raise DataError(f"{where}: recording {rec.id!r} has sources {kinds}; Kaldi wav.scp "
                        "needs one file or command source")
    src = rec.sources[0]
    return src.source if src.type == "file" else f"{src.source} |"
