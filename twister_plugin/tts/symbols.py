"""The one symbol table of the Twister TTS frontend, written as an ESPnet token list.

Token classes (no two classes share a spelling):
    specials   <blank> (id 0, ESPnet padding/CTC blank), <unk> (id 1), <sos/eos> (last id)
    pauses     "," short pause, "." sentence end, "?" question, "!" exclamation
    zh         pinyin initials (lowercase, "zh", "b", ...), finals with tone 1-5 ("ang4",
               "v3" = ü, "ii" = apical vowel after z/c/s, "iii" after zh/ch/sh/r), "rr" erhua
    en         ARPAbet phones from CMUdict (uppercase), vowels with stress 0/1/2 ("AE1")
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

from twister_plugin.utils.fileio import atomic_write_text

BLANK = "<blank>"
UNK = "<unk>"
SOS_EOS = "<sos/eos>"

PAUSES = (",", ".", "?", "!")

ZH_INITIALS = (
    "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
    "j", "q", "x", "zh", "ch", "sh", "r", "z", "c", "s",
)
ZH_FINALS = (
    "a", "o", "e", "ê", "i", "ii", "iii", "u", "v", "er",
    "ai", "ei", "ao", "ou", "an", "en", "ang", "eng", "ong",
    "ia", "ie", "iao", "iou", "ian", "in", "iang", "ing", "iong", "io",
    "ua", "uo", "uai", "uei", "uan", "uen", "uang", "ueng",
    "ve", "van", "vn", "m", "n", "ng",
)
ZH_TONES = ("1", "2", "3", "4", "5")
ERHUA = "rr"

EN_VOWELS = (
    "AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW",
)
EN_CONSONANTS = (
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R",
    "S", "SH", "T", "TH", "V", "W", "Y", "Z", "ZH",
)
EN_STRESSES = ("0", "1", "2")


def zh_tokens() -> list[str]:
    finals = [f + t for f in ZH_FINALS for t in ZH_TONES]
    return [*ZH_INITIALS, *finals, ERHUA]


def en_tokens() -> list[str]:
    vowels = [v + s for v in EN_VOWELS for s in EN_STRESSES]
    return [*EN_CONSONANTS, *vowels]


def default_tokens() -> list[str]:
    """The full token list in ESPnet order: <blank>, <unk>, ..., <sos/eos>."""
    return [BLANK, UNK, *PAUSES, *zh_tokens(), *en_tokens(), SOS_EOS]


class TokenListError(ValueError):
    """A token list file is malformed (duplicate token, missing special)."""


@dataclass(frozen=True)
class SymbolTable:
    """An ordered token list; ids are positions. Built from ``default_tokens()`` or a file."""

    tokens: tuple[str, ...]

    @classmethod
    def default(cls) -> "SymbolTable":
        return cls(tuple(default_tokens()))

    @classmethod
    def from_list(cls, tokens: Sequence[str], where: str = "token list") -> "SymbolTable":
        seen: set[str] = set()
        for i, tok in enumerate(tokens, 1):
            if not tok or any(c.isspace() for c in tok):
                raise TokenListError(f"{where}: line {i}: empty token or token with whitespace")
            if tok in seen:
                raise TokenListError(f"{where}: line {i}: duplicate token {tok!r}")
            seen.add(tok)
        for special in (BLANK, UNK, SOS_EOS):
            if special not in seen:
                raise TokenListError(f"{where}: missing special token {special}")
        return cls(tuple(tokens))

    @classmethod
    def read(cls, path: str | os.PathLike) -> "SymbolTable":
        with open(path, encoding="utf-8") as f:
            return cls.from_list([line.rstrip("\n") for line in f], where=str(path))

    def write(self, path: str | os.PathLike) -> None:
        """Write ``tokens.txt`` (one token a line, line n = id n-1), atomically."""
        atomic_write_text(path, "".join(t + "\n" for t in self.tokens))

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def _index(self) -> dict[str, int]:
        cache = self.__dict__.get("_index_cache")
        if cache is None:
            cache = {t: i for i, t in enumerate(self.tokens)}
            object.__setattr__(self, "_index_cache", cache)
        return cache

    def ids(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; tokens outside the table become the id of <unk>."""
        index, unk = self._index, self._index[UNK]
        return [index.get(t, unk) for t in tokens]

    def missing(self, tokens: Iterable[str]) -> set[str]:
        return {t for t in tokens if t not in self._index}


def write_tokens(path: str | os.PathLike, table: SymbolTable | None = None) -> SymbolTable:
    """Write the token list file for ``table`` (default: the full Twister table)."""
    table = table or SymbolTable.default()
    table.write(path)
    return table
