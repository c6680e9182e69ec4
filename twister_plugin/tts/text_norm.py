"""Split a sentence into language chunks and read numbers and symbols in their context.

normalize_chunks(text) -> list[Chunk], each Chunk one of:
    zh      a run of Han characters (numbers in Han context already read, 2024年 -> 二零二四年)
    en      one English word (numbers in English context already read, 3.5 -> three point five)
    pause   one pause token (",", ".", "?", "!")
    unknown one character the frontend cannot read (emoji, Cyrillic, ...)

The language of a number or symbol is taken from its nearest letter neighbours within the
clause: a Han neighbour -> Mandarin, else a Latin neighbour -> English, else the sentence's
matrix language (Mandarin if it has any Han character).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterator

from twister_plugin.tts.g2p_en import WORD_RE
from twister_plugin.tts.numbers import NUMBER_RE, EnNumberReader, NumberReader, ZhNumberReader

HAN_RE = re.compile(r"[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
PAUSE_OF = {**dict.fromkeys(",，、;；:：()（）[]【】《》〈〉「」『』", ","),
            **dict.fromkeys(".。", "."), **dict.fromkeys("?？", "?"), **dict.fromkeys("!！", "!")}
_ZH_PAUSE = {",": "，", ".": "。", "?": "？", "!": "！"}
_PAUSE_RANK = {",": 0, ".": 1, "?": 2, "!": 2}
# symbol -> (Mandarin reading, English reading)
SYMBOL_WORDS = {
    "&": ("和", "and"), "+": ("加", "plus"), "@": ("艾特", "at"), "=": ("等于", "equals"),
    "%": ("百分号", "percent"), "#": ("井号", "hash"), "/": ("斜杠", "slash"),
    "*": ("星号", "star"), "°": ("度", "degrees"), "℃": ("摄氏度", "degrees celsius"),
    "$": ("美元", "dollars"), "¥": ("元", "yuan"), "€": ("欧元", "euros"), "£": ("英镑", "pounds"),
    "DOT": ("点", "dot"), "RANGE": ("至", "to"),
}
# characters read as nothing (quotes, joiners) -- known, so never reported as unknown
SILENT = set("\"'‘’“”`´·・_-–—~～|\\^…") | {"\u200b", "\u200c", "\u200d", "\ufeff"}

_TOKEN_RE = re.compile(
    rf"(?P<han>{HAN_RE.pattern})"
    rf"|(?P<number>{NUMBER_RE.pattern})"
    rf"|(?P<word>{WORD_RE.pattern})"
    r"|(?P<dot>(?<=[A-Za-z0-9])\.(?=[A-Za-z]))"
    r"|(?P<range>(?<=\d)[-~～](?=\d))"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Chunk:
    kind: str  # "zh" | "en" | "pause" | "unknown"
    text: str


@dataclass(frozen=True)
class _Token:
    kind: str  # han | number | word | dot | range | space | other
    text: str
    match: re.Match | None = None


def clean(text: str, t2s: Callable[[str], str] | None = None) -> str:
    """NFKC (full-width -> ASCII), optional traditional -> simplified, collapse whitespace."""
    text = _strip_latin_accents(unicodedata.normalize("NFKC", text))
    if t2s is not None and HAN_RE.search(text):
        text = t2s(text)
    return " ".join(text.split())


def _strip_latin_accents(text: str) -> str:
    """café -> cafe, Müller -> Muller (Latin letters only; Han and others untouched)."""
    if text.isascii():
        return text
    out = []
    for ch in text:
        if "\u00c0" <= ch <= "\u024f":
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii())
            out.append(base if base.isalpha() else ch)
        else:
            out.append(ch)
    return "".join(out)


def _tokens(text: str) -> list[_Token]:
    out = []
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "number":  # re-match alone so NUMBER_RE's own group names are available
            out.append(_Token(kind, m.group(), NUMBER_RE.fullmatch(m.group())))
        else:
            out.append(_Token(kind, m.group()))
    return out


def _context_lang(tokens: list[_Token], i: int, matrix: str) -> str:
    sides = []
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(tokens) and tokens[j].kind not in ("han", "word"):
            if tokens[j].kind == "other" and tokens[j].text in PAUSE_OF:
                break  # a pause ends the clause
            j += step
        if 0 <= j < len(tokens) and tokens[j].kind in ("han", "word"):
            sides.append(tokens[j].kind)
    if "han" in sides:
        return "zh"
    return "en" if "word" in sides else matrix


class ChunkBuilder:
    """Turns one cleaned sentence into chunks; stateless apart from the number readers."""

    readers: dict[str, NumberReader] = {"zh": ZhNumberReader(), "en": EnNumberReader()}

    def __init__(self, no_letters: str = "en") -> None:
        """``no_letters``: the language a sentence of only numbers and symbols is read in (e.g.
        "zh" where every sentence is Mandarin, like a Mandarin recogniser's "13702662097")."""
        if no_letters not in self.readers:
            raise ValueError(f"no_letters must be one of {sorted(self.readers)}, got {no_letters!r}")
        self.no_letters = no_letters

    def __call__(self, text: str) -> list[Chunk]:
        tokens = _tokens(text)
        if any(t.kind == "han" for t in tokens):
            matrix = "zh"
        else:
            matrix = "en" if any(t.kind == "word" for t in tokens) else self.no_letters
        chunks: list[Chunk] = []
        for i, tok in enumerate(tokens):
            chunks.extend(self._chunks(tokens, i, tok, matrix))
        return _tidy(chunks)

    def _chunks(self, tokens: list[_Token], i: int, tok: _Token, matrix: str) -> Iterator[Chunk]:
        if tok.kind == "han":
            yield Chunk("zh", tok.text)
        elif tok.kind == "word":
            yield Chunk("en", tok.text)
        elif tok.kind == "space" or (tok.kind == "other" and tok.text in SILENT):
            return
        elif tok.kind == "other" and tok.text in PAUSE_OF:
            yield Chunk("pause", PAUSE_OF[tok.text])
        elif tok.kind in ("number", "dot", "range") or tok.text in SYMBOL_WORDS:
            lang = _context_lang(tokens, i, matrix)
            yield from _spoken(self._read(tokens, i, tok, lang), lang)
        else:
            yield Chunk("unknown", tok.text)

    def _read(self, tokens: list[_Token], i: int, tok: _Token, lang: str) -> str:
        if tok.kind == "number":
            nxt = tokens[i + 1].text[:1] if i + 1 < len(tokens) else ""
            return self.readers[lang].read(tok.match, nxt)
        key = {"dot": "DOT", "range": "RANGE"}.get(tok.kind, tok.text)
        zh, en = SYMBOL_WORDS[key]
        return zh if lang == "zh" else en


def _spoken(text: str, lang: str) -> Iterator[Chunk]:
    if lang == "zh":
        yield Chunk("zh", text)
    else:
        for word in re.findall(WORD_RE.pattern, text):
            yield Chunk("en", word)


def _tidy(chunks: list[Chunk]) -> list[Chunk]:
    """Merge adjacent zh runs (phrase context for pypinyin); keep one pause per pause run."""
    out: list[Chunk] = []
    for c in chunks:
        prev = out[-1] if out else None
        if prev and prev.kind == c.kind == "zh":
            out[-1] = Chunk("zh", prev.text + c.text)
        elif prev and prev.kind == c.kind == "pause":
            if _PAUSE_RANK[c.text] >= _PAUSE_RANK[prev.text]:
                out[-1] = c
        elif c.kind == "pause" and not out:
            continue  # no leading pause
        else:
            out.append(c)
    return out


def spoken_text(chunks: list[Chunk]) -> str:
    """The normalised (spoken-form) sentence: zh runs joined, English words space-separated."""
    parts: list[str] = []
    prev = None
    for c in chunks:
        if c.kind == "en" and prev is not None and prev.kind == "en":
            parts.append(" ")
        if c.kind == "pause" and (prev is None or prev.kind == "zh"):
            parts.append(_ZH_PAUSE.get(c.text, c.text))
        else:
            parts.append(c.text + (" " if c.kind == "pause" else ""))
        prev = c
    return "".join(parts).strip()
