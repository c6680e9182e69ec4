"""Sentencepiece units for the CTC head, trained on (pseudo-label) transcripts.

Text is normalised first (:func:`normalize_text`): lower case, punctuation dropped, Han
characters kept together, Latin words/numbers separated by single spaces ("苹果表配Apple Pay!"
-> "苹果表配 apple pay"). Unit ids ARE the CTC class ids: id 0 is the CTC blank (sentencepiece's
pad piece ``<blank>``, which encoding never emits), id 1 is ``<unk>``, no bos/eos.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import sentencepiece as spm

from twister_plugin.asr.filters import HAN, UNIT_RE
from twister_plugin.utils.fileio import atomic_write_bytes

BLANK_ID = 0
UNK_ID = 1
BLANK, UNK = "<blank>", "<unk>"
_HAN_CHAR = re.compile(f"[{HAN}]")


class UnitsError(ValueError):
    """Bad unit training input, or text the units cannot encode (with on_unknown=error)."""


def _is_han(unit: str) -> bool:
    return _HAN_CHAR.fullmatch(unit) is not None


def normalize_text(text: str) -> str:
    """Lower-case units of ``text``; a space only where a Latin word/number meets anything."""
    out: list[str] = []
    prev_han = True
    for unit in UNIT_RE.findall(text.lower()):
        han = _is_han(unit)
        if out and not (han and prev_han):
            out.append(" ")
        out.append(unit)
        prev_han = han
    return "".join(out)


@dataclass(frozen=True)
class UnitsConfig:
    vocab_size: int = 2000  # pieces incl. <blank> and <unk>; a soft limit on small corpora
    model_type: str = "unigram"  # sentencepiece model: unigram, char or bpe
    character_coverage: float = 0.9995  # share of characters kept (rest -> <unk>); Mandarin 0.9995


def train_units(texts: Iterable[str], out: str | Path, cfg: UnitsConfig = UnitsConfig()) -> Path:
    """Train a sentencepiece model on normalised ``texts``; write it atomically to ``out``."""
    sentences = [s for s in (normalize_text(t) for t in texts) if s]
    if not sentences:
        raise UnitsError(f"{out}: no text to train units on (all transcripts empty after normalising)")
    # every kept character must be a piece: never ask for fewer pieces than characters (+ metas)
    n_chars = len({c for s in sentences for c in s if not c.isspace()})
    vocab_size = max(cfg.vocab_size, n_chars + 3)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
        model_type=cfg.model_type, character_coverage=cfg.character_coverage,
        pad_id=BLANK_ID, pad_piece=BLANK, unk_id=UNK_ID, unk_piece=UNK, bos_id=-1, eos_id=-1,
        hard_vocab_limit=False, minloglevel=2, num_threads=1,
    )
    atomic_write_bytes(out, model.getvalue())
    return Path(out)


class CtcUnits:
    """Encode text to CTC class ids and back, with a trained sentencepiece model."""

    def __init__(self, model_path: str | Path) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: sentencepiece model not found")
        self.path = path
        self.sp = spm.SentencePieceProcessor(model_file=str(path))
        if self.sp.pad_id() != BLANK_ID or self.sp.unk_id() != UNK_ID:
            raise UnitsError(f"{path}: want pad (<blank>) id {BLANK_ID} and <unk> id {UNK_ID}, got "
                             f"{self.sp.pad_id()} and {self.sp.unk_id()}; train it with train_units")

    @property
    def n_classes(self) -> int:
        """Output size of the CTC head (blank included)."""
        return self.sp.get_piece_size()

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def encode(self, text: str, on_unknown: str = "unk") -> list[int]:
        """Unit ids of ``text`` (normalised). on_unknown: ``unk`` keeps <unk>, ``error`` raises."""
        norm = normalize_text(text)
        ids = self.sp.encode(norm, out_type=int)
        if on_unknown == "error" and UNK_ID in ids:
            raise UnitsError(f"{self.path}: text {text!r} has characters outside the units: "
                             f"{self.unknown_chars(text)}")
        if on_unknown not in ("unk", "error"):
            raise UnitsError(f"on_unknown must be unk or error, got {on_unknown!r}")
        return ids

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of normalised ``text`` that map to <unk>."""
        return sorted({c for c in normalize_text(text) if not c.isspace()
                       and self.sp.piece_to_id(c) == UNK_ID and self.sp.piece_to_id("▁" + c) == UNK_ID})

    def decode(self, ids: Sequence[int]) -> str:
        """Text of unit ids (blanks dropped)."""
        return self.sp.decode([int(i) for i in ids if int(i) != BLANK_ID])
