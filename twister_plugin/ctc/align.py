"""Forced alignment of a transcript to audio through the CTC head (frames of 20 ms).

``align_text(log_probs, text, units)`` -> :class:`Alignment` with unit, character and word
spans in seconds. Units come from ``torchaudio.functional.forced_align`` + ``merge_tokens``;
a unit's characters share its span evenly; a word (a Han character, or a Latin word/number as
in :func:`twister_plugin.asr.filters.text_units`) runs from its first character's start to its
last one's end. Characters the units do not know align as ``<unk>`` (``unknown=True`` on their
spans) or, with ``on_unknown="error"``, raise :class:`AlignmentError`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.functional as AF
from torch import Tensor

from twister_plugin.ctc.head import FRAME_SECONDS
from twister_plugin.ctc.units import BLANK_ID, UNK_ID, CtcUnits, UnitsError, normalize_text


class AlignmentError(ValueError):
    """A transcript that cannot be aligned: too long for the audio, or unknown characters."""


@dataclass(frozen=True)
class Span:
    label: str  # unit piece, character or word (an <unk> unit: the text it stands for)
    start: float  # seconds
    end: float  # seconds
    score: float = 0.0  # mean frame probability of the unit (characters/words: of their units)
    unknown: bool = False  # aligned as <unk>


@dataclass(frozen=True)
class Alignment:
    units: list[Span]
    chars: list[Span]
    words: list[Span]
    log_likelihood: float  # log P(best path) over the frames


def align_ids(log_probs: Tensor, ids: list[int]) -> tuple[list, float]:
    """Spans (torchaudio TokenSpan, in frames) of unit ``ids`` in (F, V) ``log_probs``."""
    if not ids:
        return [], float(log_probs.detach()[:, BLANK_ID].sum())
    repeats = sum(a == b for a, b in zip(ids, ids[1:]))
    if len(ids) + repeats > log_probs.shape[0]:
        raise AlignmentError(f"{len(ids)} units (+{repeats} repeats) do not fit {log_probs.shape[0]} "
                             f"frames ({log_probs.shape[0] * FRAME_SECONDS:.2f} s)")
    targets = torch.tensor([ids], dtype=torch.int32, device=log_probs.device)
    path, scores = AF.forced_align(log_probs.detach()[None].float(), targets, blank=BLANK_ID)  # (1, F) each
    spans = AF.merge_tokens(path[0], scores[0].exp(), blank=BLANK_ID)
    if len(spans) != len(ids):  # cannot happen for a valid path; guard the contract anyway
        raise AlignmentError(f"alignment gave {len(spans)} spans for {len(ids)} units")
    return spans, float(scores[0].sum())


def align_text(log_probs: Tensor, text: str, units: CtcUnits, on_unknown: str = "unk") -> Alignment:
    """Align ``text`` to (F, V) CTC ``log_probs`` (the audio's own frames)."""
    try:
        units.encode(text, on_unknown=on_unknown)
    except UnitsError as e:
        raise AlignmentError(str(e)) from None
    pieces = units.sp.encode(normalize_text(text), out_type="immutable_proto").pieces
    ids = [p.id for p in pieces]
    spans, loglik = align_ids(log_probs, ids)
    unit_spans, char_spans = [], []
    for piece, sp in zip(pieces, spans):
        start, end = sp.start * FRAME_SECONDS, sp.end * FRAME_SECONDS
        unknown = piece.id == UNK_ID
        unit_spans.append(Span(piece.piece, start, end, float(sp.score), unknown))
        chars = [c for c in piece.surface if not c.isspace() and c != "▁"]
        step = (end - start) / max(len(chars), 1)
        char_spans += [Span(c, start + k * step, start + (k + 1) * step, float(sp.score), unknown)
                       for k, c in enumerate(chars)]
    return Alignment(unit_spans, char_spans, _words(text, char_spans), loglik)


def _words(text: str, chars: list[Span]) -> list[Span]:
    words, i = [], 0
    for word in normalize_text(text).split():
        for w in _split_han(word):
            part = chars[i : i + len(w)]
            i += len(w)
            words.append(Span(w, part[0].start, part[-1].end,
                              sum(c.score for c in part) / len(part), any(c.unknown for c in part)))
    return words


def _split_han(chunk: str) -> list[str]:
    """'苹果表配' -> one word per Han character; 'apple' stays whole."""
    from twister_plugin.asr.filters import text_units

    return text_units(chunk)
