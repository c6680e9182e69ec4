"""Whisper tokens for ESPnet: a token list file, and a preprocessor that turns a transcript and
its language into Whisper prompt + BPE ids.

The prompt follows each utterance's language (``lang`` data key from ``utt2lang``, else the
configured default): ``<|startoftranscript|><|zh|><|transcribe|><|notimestamps|>`` for
multilingual models, ``<|startoftranscript|><|notimestamps|>`` for ``.en`` models. The model adds
``<|startoftranscript|>`` (sos) and ``<|endoftext|>`` (eos); the preprocessor emits the rest.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Dict, List, Sequence, Union

import numpy as np

from espnet2.train.preprocessor import AbsPreprocessor
from whisper.tokenizer import LANGUAGES, Tokenizer, get_tokenizer

from twister_plugin.utils.fileio import atomic_open

ENGLISH_VOCAB = 51864
# Multilingual vocabulary = 50257 BPE + 2 (eot, sot) + languages + 6 task tokens + 1501 timestamps.
_NON_LANGUAGE = 50257 + 2 + 6 + 1501
_LATIN_START = re.compile(r"^[A-Za-z0-9]")

@functools.lru_cache(maxsize=4)
def tokenizer_for_vocab(n_vocab: int) -> Tokenizer:
    """The Whisper tokenizer whose vocabulary has ``n_vocab`` entries (51864: ``.en``)."""
    if n_vocab == ENGLISH_VOCAB:
        return get_tokenizer(multilingual=False)
    num_languages = n_vocab - _NON_LANGUAGE
    if not 1 <= num_languages <= len(LANGUAGES):
        raise ValueError(f"no Whisper tokenizer has a vocabulary of {n_vocab}")
    return get_tokenizer(multilingual=True, num_languages=num_languages, task="transcribe")

def token_strings(n_vocab: int) -> List[str]:
    """One printable, single-line name per token id (specials as ``<|...|>``)."""
    enc = tokenizer_for_vocab(n_vocab).encoding
    specials = {i: s for s, i in enc._special_tokens.items()}
    names = []
    for i in range(n_vocab):
        if i in specials:
            names.append(specials[i])
            continue
        text = enc.decode_single_token_bytes(i).decode("utf-8", "backslashreplace")
        names.append(text.encode("unicode_escape").decode("ascii").replace(" ", "\\x20") or "\\x00")
    return names


def write_token_list(path: Union[str, Path], n_vocab: int) -> Path:
    """Write ESPnet's ``token_list`` for a Whisper vocabulary (one token per line)."""
    with atomic_open(path) as f:
        f.write("\n".join(token_strings(n_vocab)) + "\n")
    return Path(path)


class WhisperPrompt:
    """Builds prompt + text token ids for one utterance."""

    def __init__(self, n_vocab: int, max_tokens: int = 448):
        self.tok = tokenizer_for_vocab(n_vocab)
        self.multilingual = n_vocab != ENGLISH_VOCAB
        self.max_tokens = max_tokens

    def prompt(self, language: str) -> List[int]:
        tok = self.tok
        if not self.multilingual:
            if language not in ("en", "", None):
                raise ValueError(f"English-only Whisper cannot transcribe language {language!r}")
            return [tok.no_timestamps]
        if language not in tok.all_language_codes:
            raise ValueError(f"language {language!r} is not one of Whisper's languages")
        lang_id = tok.special_tokens[f"<|{language}|>"]
        return [lang_id, tok.transcribe, tok.no_timestamps]

    def encode(self, text: str, language: str) -> List[int]:
        text = text.strip()
        if _LATIN_START.match(text):
            text = " " + text  # Whisper writes a leading space before Latin-script words
        ids = self.prompt(language) + self.tok.encode(text)
        if len(ids) + 2 > self.max_tokens:  # + sos and eos
            raise ValueError(f"{len(ids) + 2} tokens exceed Whisper's {self.max_tokens}")
        return ids


class TwisterWhisperPreprocessor(AbsPreprocessor):
    """ESPnet preprocessor: ``text`` (+ optional ``lang``) -> Whisper ids; speech to float32."""

    def __init__(
        self,
        train: bool,
        token_list: Union[str, Path, Sequence[str], None] = None,
        language: str = "zh",
        speech_name: str = "speech",
        text_name: str = "text",
        lang_name: str = "lang",
        ctc_bpemodel: Union[str, Path, None] = None,
        text_ctc_name: str = "text_ctc",
        **_unused,
    ):
        super().__init__(train)
        n_vocab = _count(token_list)
        self.prompt = WhisperPrompt(n_vocab)
        self.language = language
        self.speech_name, self.text_name, self.lang_name = speech_name, text_name, lang_name
        self.text_ctc_name = text_ctc_name
        self.ctc_units = None
        if ctc_bpemodel:  # hybrid CTC: also emit sentencepiece unit ids (see asr/model.py)
            from twister_plugin.ctc.units import CtcUnits

            self.ctc_units = CtcUnits(ctc_bpemodel)

    def __call__(self, uid: str, data: Dict[str, Union[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        lang = data.pop(self.lang_name, None)
        lang = str(lang).strip() if lang is not None and str(lang).strip() else self.language
        if self.speech_name in data:
            speech = np.asarray(data[self.speech_name], dtype=np.float32)
            if speech.ndim == 2:  # (S, C) -> mono
                speech = speech.mean(axis=1)
            data[self.speech_name] = speech
        if self.text_name in data:
            try:
                ids = self.prompt.encode(str(data[self.text_name]), lang)
            except ValueError as e:
                raise ValueError(f"utterance {uid}: {e}") from None
            if self.ctc_units is not None:
                units = self.ctc_units.encode(str(data[self.text_name]))
                data[self.text_ctc_name] = np.asarray(units, dtype=np.int64)
            data[self.text_name] = np.asarray(ids, dtype=np.int64)
        return data


def _count(token_list) -> int:
    if token_list is None:
        raise ValueError("TwisterWhisperPreprocessor needs token_list")
    if isinstance(token_list, (str, Path)):
        with open(token_list, encoding="utf-8") as f:
            return sum(1 for _ in f)
    return len(token_list)
