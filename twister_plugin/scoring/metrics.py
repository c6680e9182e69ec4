"""Error-rate metrics as small strategy classes: each turns a transcript into scoring tokens.

    cer  Mandarin: NFKC (full-width -> half-width), OpenCC Traditional -> Simplified, case folded,
         punctuation / symbols / whitespace / control characters (Unicode P*, S*, Z*, C*)
         removed; every remaining character is a token.
    wer  English: openai-whisper's EnglishTextNormalizer (spelling, numbers, "Mr." -> "mister",
         punctuation), then whitespace-separated words.
    mer  Mandarin-English code-switching: the Mandarin normalisation, but punctuation becomes a
         word break; each Han character is a token, each run of Latin letters / digits is a token
         (an apostrophe inside a Latin word is dropped: "don't" -> "dont"); any other character
         is a token of its own.
    mer_spoken  MER with numbers and symbols read out first on both sides (as ``ser`` does): the
         same score whether a transcript writes digits or Han numerals (= CER on Han-only text).
    ser  Mandarin pronunciation (syllable error rate, round trips of synthetic speech): numbers and
         symbols first read out as the TTS frontend reads them (6.5% -> 百分之六点五; a sentence of
         digits alone in Mandarin), then the MER
         tokens with every Han character replaced by its pinyin syllable with tone (pypinyin, in
         the context of its Han run; neutral tone 5). Homophones count as equal: it measures what
         the audio says, not which characters the recogniser picked for it.

``pick_metric`` chooses per test set: MER when its references hold both Han characters and Latin
letters; otherwise CER when utt2lang says zh (or the references hold Han); otherwise WER.
"""
from __future__ import annotations

import functools
import unicodedata
from typing import Iterable

import regex

HAN = regex.compile(r"\p{Han}")
LATIN = regex.compile(r"\p{Latin}")
MER_TOKEN = regex.compile(r"\p{Han}|[\p{Latin}\p{Nd}][\p{Latin}\p{Nd}\p{M}]*|\S")
INNER_APOSTROPHE = regex.compile(r"(?<=\p{Latin})['\u2019](?=\p{Latin})")
DROP_CATEGORIES = ("P", "S", "Z", "C")  # punctuation, symbols, separators, control / format
ZH_LANGS = ("zh", "cmn", "yue", "wuu")


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=1)
def _english_normalizer():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize_mandarin(text: str, *, word_breaks: bool = False) -> str:
    """NFKC, Traditional -> Simplified, case folded, punctuation etc. removed (or, with
    ``word_breaks``, turned into single spaces)."""
    text = _t2s().convert(unicodedata.normalize("NFKC", text)).casefold()
    if word_breaks:
        text = INNER_APOSTROPHE.sub("", text)
    gap = " " if word_breaks else ""
    kept = (gap if unicodedata.category(c)[0] in DROP_CATEGORIES else c for c in text)
    return " ".join("".join(kept).split()) if word_breaks else "".join(kept)


class Metric:
    """A metric: its name, its token unit and how a transcript becomes tokens."""

    name = ""
    unit = ""

    def tokens(self, text: str) -> list[str]:
        raise NotImplementedError


class CharErrorRate(Metric):
    name, unit = "cer", "char"

    def tokens(self, text: str) -> list[str]:
        return list(normalize_mandarin(text))


class WordErrorRate(Metric):
    name, unit = "wer", "word"

    def tokens(self, text: str) -> list[str]:
        return _english_normalizer()(text).split()


class MixedErrorRate(Metric):
    name, unit = "mer", "token"

    def tokens(self, text: str) -> list[str]:
        return MER_TOKEN.findall(normalize_mandarin(text, word_breaks=True))


@functools.lru_cache(maxsize=1)
def _zh_reader():
    from twister_plugin.tts.text_norm import ChunkBuilder

    return ChunkBuilder(no_letters="zh")  # Mandarin metrics: a sentence of bare digits is Mandarin


def read_numbers_zh(text: str) -> str:
    """Numbers and symbols read out as the TTS frontend reads them in Mandarin (Traditional ->
    Simplified first): 6.5% -> 百分之六点五, 13702662097 -> 一三七零二六六二零九七."""
    from twister_plugin.tts.text_norm import clean, spoken_text

    return spoken_text(_zh_reader()(clean(text, _t2s().convert)))


class SpokenMixedErrorRate(MixedErrorRate):
    """MER after reading numbers and symbols on both sides (``read_numbers_zh``): does not care
    whether a transcript writes 29度 or 二十九度, which CER / MER count as 2-3 errors. On text
    without Latin letters it is CER on the read-out text."""

    name = "mer_spoken"

    def tokens(self, text: str) -> list[str]:
        return super().tokens(read_numbers_zh(text))


class SyllableErrorRate(SpokenMixedErrorRate):
    """``mer_spoken``'s tokens with every Han character replaced by its pinyin syllable."""

    name, unit = "ser", "syllable"

    def tokens(self, text: str) -> list[str]:
        from pypinyin import Style, lazy_pinyin

        out: list[str] = []
        run: list[str] = []  # consecutive Han characters: pypinyin reads them as one phrase

        def flush() -> None:
            if run:
                out.extend(lazy_pinyin("".join(run), style=Style.TONE3, neutral_tone_with_five=True))
                run.clear()

        for tok in super().tokens(text):
            if HAN.fullmatch(tok):
                run.append(tok)
            else:
                flush()
                out.append(tok)
        flush()
        return out


METRICS: dict[str, type[Metric]] = {m.name: m for m in (CharErrorRate, WordErrorRate, MixedErrorRate,
                                                        SpokenMixedErrorRate, SyllableErrorRate)}


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]()
    except KeyError:
        raise ValueError(f"unknown metric {name!r} (choose from {sorted(METRICS)} or auto)") from None


def is_zh(lang: str) -> bool:
    return regex.split(r"[-_]", lang.lower())[0] in ZH_LANGS


def pick_metric(references: Iterable[str], languages: Iterable[str] = ()) -> str:
    """'mer', 'cer' or 'wer' for a test set (see the module docstring)."""
    refs = list(references)
    has_han = any(HAN.search(t) for t in refs)
    has_latin = any(LATIN.search(t) for t in refs)
    if has_han and has_latin:
        return "mer"
    if has_han or any(is_zh(lang) for lang in languages):
        return "cer"
    return "wer"
