"""Han characters -> pinyin initials and tonal finals, with pypinyin's offline dictionary.

A run of Han characters is converted at once so pypinyin's phrase dictionary picks the reading
of polyphones (e.g. 银行 hang2 vs 行走 xing2). Output per character: [initial?, final+tone]
(zero initial gives no token), finals in pypinyin's strict spelling (ü = "v"), neutral tone 5.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from pypinyin.style import convert

from twister_plugin.tts.symbols import ERHUA, ZH_FINALS, ZH_INITIALS

_APICAL_FRONT = {"z", "c", "s"}  # zi ci si: "i" is the apical vowel [ɿ] -> "ii"
_APICAL_BACK = {"zh", "ch", "sh", "r"}  # zhi chi shi ri: [ʅ] -> "iii"
_FINAL_ALIASES = {"uong": "ong"}  # rare spellings in pypinyin's dictionary
_NO_READING = "<none>"  # pypinyin's errors= marker for a character without a reading
_FINAL_SET = frozenset(ZH_FINALS)
_INITIAL_SET = frozenset(ZH_INITIALS)


@dataclass(frozen=True)
class ZhG2PConfig:
    tone_sandhi: bool = True  # apply 3-3, 一 and 不 tone sandhi (pypinyin's tone_sandhi)
    erhua: bool = True  # "huar1" -> hua1 + rr; a neutral-tone 儿 (er5) after a syllable -> rr


@lru_cache(maxsize=4096)  # ~1,500 syllables with tones exist
def _split(syllable: str) -> tuple[str, str]:
    """A pinyin syllable with tone marks -> (initial, final + tone digit), pypinyin's strict
    spelling, neutral tone 5: what its INITIALS and FINALS_TONE3 styles give for the same reading
    (one pinyin pass instead of two: same output on the whole corpus, 2.1x; benchmarks/g2p_zh_speed.py)."""
    final = convert(syllable, Style.FINALS_TONE3, True)
    return convert(syllable, Style.INITIALS, True), final if final[-1:].isdigit() else final + "5"


class ZhG2P:
    """Convert a run of Han characters to phones, one list per character (None = no reading)."""

    def __init__(self, config: ZhG2PConfig = ZhG2PConfig()):
        self.config = config

    def __call__(self, run: str) -> list[list[str] | None]:
        out: list[list[str] | None] = []
        for char, syllable in zip(run, self._pinyin(run), strict=True):
            ini, fin = _split(syllable) if syllable is not None else (None, None)
            phones = None if ini is None or fin is None else self._syllable(ini, fin)
            if phones is not None and self.config.erhua and char == "儿" and fin == "er5" and out:
                phones = [ERHUA] if out[-1] is not None else phones
            out.append(phones)
        return out

    def _pinyin(self, run: str) -> list[str | None]:
        """One pypinyin pass (tone marks) per run; None = no reading."""
        flat = lazy_pinyin(
            run,
            style=Style.TONE,
            strict=True,
            neutral_tone_with_five=True,
            tone_sandhi=self.config.tone_sandhi,
            errors=lambda chars: [_NO_READING] * len(chars),
        )
        flat = [None if x == _NO_READING else x for x in flat]
        if len(flat) != len(run):  # pypinyin grouped something: fall back to one char at a time
            flat = [self._pinyin(c)[0] if len(run) > 1 else None for c in run]
        return flat

    def _syllable(self, initial: str, final: str) -> list[str] | None:
        tone = final[-1] if final[-1:].isdigit() else "5"
        base = final.rstrip("12345")
        extra: list[str] = []
        if self.config.erhua and base.endswith("r") and base != "er":
            base, extra = base[:-1], [ERHUA]
        base = _FINAL_ALIASES.get(base, base)
        if base == "i" and initial in _APICAL_FRONT:
            base = "ii"
        elif base == "i" and initial in _APICAL_BACK:
            base = "iii"
        if base not in _FINAL_SET and initial + base in _FINAL_SET:
            initial, base = "", initial + base  # syllabic nasals: n+g -> ng, m -> m
        if base not in _FINAL_SET or (initial and initial not in _INITIAL_SET):
            return None
        head = [initial] if initial else []
        return [*head, base + tone, *extra]
