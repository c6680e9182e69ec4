"""Label-free filters for Whisper pseudo-labels: each says whether one hypothesis is unusable.

A filter looks at one decoding result (text, language, scores; see
:class:`twister_plugin.decode.DecodeResult`) and the audio duration in seconds, never at a
reference. ``apply_filters(result, duration, cfg)`` returns the names of the filters that reject
it (empty list: keep). Thresholds live in :class:`FilterConfig` (``filters:`` in
``conf/pseudo_label.yaml``).

"Units" of text: every Han character is one unit and every run of other letters/digits is one
word unit ("苹果表配apple pay" = 4 + 2 units). Speaking rates: zh counts units per second, en
counts letters and digits per second.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, fields
from typing import Protocol

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
UNIT_RE = re.compile(rf"[{HAN}]|[^\W{HAN}]+")


@dataclass(frozen=True)
class FilterConfig:
    no_speech_threshold: float = 0.6  # Whisper's silence rule: no_speech_prob above this ...
    no_speech_logprob_threshold: float = -1.0  # ... and avg_logprob below this -> no speech
    no_speech_hard_threshold: float = 0.9  # no_speech_prob above this -> no speech, any logprob
    logprob_threshold: float = -1.0  # avg_logprob below this -> unreliable hypothesis
    compression_ratio_threshold: float = 2.4  # zlib compression ratio above this -> repetitive
    ngram_size: int = 4  # units per n-gram for the repeated n-gram check
    ngram_max_count: int = 3  # an n-gram occurring more often than this -> hallucination loop
    suffix_max_period: int = 20  # longest repeating span (units) the suffix check looks for
    suffix_min_repeats: float = 3.0  # text ending in at least this many copies of a span ...
    suffix_min_units: int = 8  # ... covering at least this many units -> hallucination loop
    reject_unfinished: bool = True  # decoding stopped at max_new_tokens before EOT -> loop
    zh_min_rate: float = 1.0  # zh: units per second below this -> speech missed or text cut
    zh_max_rate: float = 12.0  # zh: units per second above this -> invented text
    en_min_rate: float = 3.0  # en: letters+digits per second below this -> speech missed
    en_max_rate: float = 35.0  # en: letters+digits per second above this -> invented text
    allowed_languages: tuple[str, ...] = ("zh", "en")  # detected language must be one of these
    min_language_prob: float = 0.05  # P(prompt language) at the SOT step below this -> wrong one
    max_duration: float = 30.0  # Whisper sees 30 s; longer audio would be labelled in part
    ctc_agreement_min: float | None = None  # CTC log-lik/unit of the text below this -> reject (None: off)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_languages", tuple(self.allowed_languages))
        if self.ngram_size < 1 or self.ngram_max_count < 1 or self.suffix_max_period < 1:
            raise ValueError("ngram_size, ngram_max_count and suffix_max_period must be >= 1")

    @classmethod
    def from_dict(cls, d: dict, where: str = "filters") -> FilterConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{where}: unknown filter option(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


class Hypothesis(Protocol):
    text: str
    language: str
    language_prob: float
    detected_language: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    finished: bool


def text_units(text: str) -> list[str]:
    """Han characters and lower-cased words/numbers of ``text``, punctuation dropped."""
    return UNIT_RE.findall(text.lower())


def speech_rate(text: str, language: str, duration: float) -> float | None:
    """Units (zh) or letters+digits (en) per second; None for other languages."""
    if language == "zh":
        n = len(text_units(text))
    elif language == "en":
        n = sum(c.isalnum() for c in text)
    else:
        return None
    return n / max(duration, 1e-3)


def max_ngram_count(units: list[str], n: int) -> int:
    counts: dict[tuple[str, ...], int] = {}
    for i in range(len(units) - n + 1):
        key = tuple(units[i : i + n])
        counts[key] = counts.get(key, 0) + 1
    return max(counts.values(), default=0)


def repeated_suffix(units: list[str], max_period: int) -> tuple[int, int]:
    """(period, span) of the longest periodic suffix: ``units[-span:]`` repeats with ``period``.

    A loop cut by the length limit often ends in a partial word ("... rivers, mountains, ri"),
    so the suffix is also tried without its last unit.
    """
    return max(_periodic_suffix(units, max_period), _periodic_suffix(units[:-1], max_period),
               key=lambda ps: ps[1])


def _periodic_suffix(units: list[str], max_period: int) -> tuple[int, int]:
    best = (0, 0)
    n = len(units)
    for p in range(1, min(max_period, n // 2) + 1):
        i = n - 1 - p
        while i >= 0 and units[i] == units[i + p]:
            i -= 1
        span = (n - 1 - p - i) + p  # matched positions plus the last full period
        if span // p >= 2 and span > best[1]:
            best = (p, span)
    return best


class Filter:
    """One rejection rule; ``rejects`` is True when the hypothesis should be dropped."""

    name: str = ""

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        raise NotImplementedError


class Empty(Filter):
    name = "empty"

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        return not text_units(r.text)


class NoSpeech(Filter):
    name = "no_speech"

    def __init__(self, threshold: float, logprob_threshold: float, hard_threshold: float) -> None:
        self.t, self.lp, self.hard = threshold, logprob_threshold, hard_threshold

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        silent = r.no_speech_prob > self.t and r.avg_logprob < self.lp
        return silent or r.no_speech_prob > self.hard


class LowLogprob(Filter):
    name = "avg_logprob"

    def __init__(self, threshold: float) -> None:
        self.t = threshold

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        return r.avg_logprob < self.t


class CompressionRatio(Filter):
    name = "compression_ratio"

    def __init__(self, threshold: float) -> None:
        self.t = threshold

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        return r.compression_ratio > self.t


class RepeatedNgram(Filter):
    name = "repeated_ngram"

    def __init__(self, n: int, max_count: int) -> None:
        self.n, self.max_count = n, max_count

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        return max_ngram_count(text_units(r.text), self.n) > self.max_count


class RepeatedSuffix(Filter):
    name = "repeated_suffix"

    def __init__(self, max_period: int, min_repeats: float, min_units: int) -> None:
        self.max_period, self.min_repeats, self.min_units = max_period, min_repeats, min_units

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        period, span = repeated_suffix(text_units(r.text), self.max_period)
        return period > 0 and span / period >= self.min_repeats and span >= self.min_units


class Unfinished(Filter):
    name = "unfinished"

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        return not r.finished


class RateTooLow(Filter):
    name = "rate_low"

    def __init__(self, minimum: dict[str, float]) -> None:
        self.minimum = minimum

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        rate = speech_rate(r.text, r.language, min(duration, 30.0))
        return rate is not None and r.language in self.minimum and rate < self.minimum[r.language]


class RateTooHigh(Filter):
    name = "rate_high"

    def __init__(self, maximum: dict[str, float]) -> None:
        self.maximum = maximum

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        rate = speech_rate(r.text, r.language, min(duration, 30.0))
        return rate is not None and r.language in self.maximum and rate > self.maximum[r.language]


class LanguageNotAllowed(Filter):
    name = "language"

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = allowed

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        return r.detected_language not in self.allowed or r.language not in self.allowed


class WrongLanguage(Filter):
    name = "language_prob"

    def __init__(self, min_prob: float) -> None:
        self.min_prob = min_prob

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        return r.language_prob < self.min_prob


class TooLong(Filter):
    name = "too_long"

    def __init__(self, max_duration: float) -> None:
        self.max_duration = max_duration

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        return duration > self.max_duration


class FilterInputError(ValueError):
    """A record lacks a score that a configured filter needs."""


class CtcAgreement(Filter):
    """CTC head disagrees with the hypothesis (``ctc_agreement``: see twister_plugin.ctc.agreement)."""

    name = "ctc_agreement"

    def __init__(self, minimum: float | None) -> None:
        self.minimum = minimum

    def rejects(self, r: Hypothesis, duration: float) -> bool:
        if self.minimum is None:
            return False
        score = getattr(r, "ctc_agreement", None)
        if score is None:
            raise FilterInputError(
                f"utterance {getattr(r, 'utt_id', '?')!r}: ctc_agreement_min is set but the record has "
                "no ctc_agreement score; score the records with a CTC head (twister_plugin.bin.ctc_train "
                "--score-pseudo) or set ctc_agreement_min: null")
        return score < self.minimum


@functools.lru_cache(maxsize=8)
def build_filters(cfg: FilterConfig) -> tuple[Filter, ...]:
    """Every filter of ``cfg``, in the order reasons are reported."""
    out: list[Filter] = [
        Empty(), NoSpeech(cfg.no_speech_threshold, cfg.no_speech_logprob_threshold,
                          cfg.no_speech_hard_threshold),
        LowLogprob(cfg.logprob_threshold), CompressionRatio(cfg.compression_ratio_threshold),
        RepeatedNgram(cfg.ngram_size, cfg.ngram_max_count),
        RepeatedSuffix(cfg.suffix_max_period, cfg.suffix_min_repeats, cfg.suffix_min_units),
        RateTooLow({"zh": cfg.zh_min_rate, "en": cfg.en_min_rate}),
        RateTooHigh({"zh": cfg.zh_max_rate, "en": cfg.en_max_rate}),
        LanguageNotAllowed(cfg.allowed_languages), WrongLanguage(cfg.min_language_prob),
        TooLong(cfg.max_duration), CtcAgreement(cfg.ctc_agreement_min),
    ]
    if cfg.reject_unfinished:
        out.insert(6, Unfinished())
    return tuple(out)


FILTER_NAMES = tuple(f.name for f in build_filters(FilterConfig()))


def apply_filters(result: Hypothesis, duration: float, cfg: FilterConfig) -> list[str]:
    """Names of the filters that reject ``result`` (audio ``duration`` s); [] = keep."""
    return [f.name for f in build_filters(cfg) if f.rejects(result, duration)]
