"""Prompts, language detection, the SOT-step statistics and Whisper's logit filters.

Prompt ``[B, P]`` per utterance: multilingual models
``<|startoftranscript|><|lang|><|transcribe|><|notimestamps|>`` (P = 4), English-only models
``<|startoftranscript|><|notimestamps|>`` (P = 2). Logits at the SOT position (``[B, V]``) give
the language distribution (softmax over the language tokens, as ``whisper.detect_language``)
and the no-speech probability (softmax over the whole vocabulary, as ``whisper.decode``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor
from whisper.tokenizer import Tokenizer

if TYPE_CHECKING:
    from twister_plugin.decode.batched import DecoderConfig


class LanguageError(ValueError):
    """A language code the model has no token for (or a non-English code for a .en model)."""


@dataclass
class SotStatistics:
    detected_language: str  # most probable language token
    language_prob: float  # probability of the prompt's language among the language tokens
    no_speech_prob: float  # probability of <|nospeech|> over the whole vocabulary


class PromptBuilder:
    def __init__(self, tokenizer: Tokenizer, multilingual: bool, config: DecoderConfig,
                 device: torch.device) -> None:
        self.tok = tokenizer
        self.multilingual = multilingual
        self.device = device
        self.codes: tuple[str, ...] = tokenizer.all_language_codes if multilingual else ("en",)
        self.lang_ids = torch.tensor(tokenizer.all_language_tokens if multilingual else [],
                                     dtype=torch.long, device=device)
        among = (config.detect_among or self.codes) if multilingual else self.codes
        for code in among:
            self._check(code)
        self.detect_ids = torch.tensor([self.codes.index(c) for c in among], device=device)
        n_vocab = tokenizer.encoding.n_vocab
        self.suppress = torch.zeros(n_vocab, dtype=torch.bool, device=device)
        self.suppress[list(self._suppress_tokens(config))] = True
        self.blank = torch.zeros(n_vocab, dtype=torch.bool, device=device)
        if config.suppress_blank:
            self.blank[tokenizer.encode(" ") + [tokenizer.eot]] = True

    @property
    def length(self) -> int:
        return 4 if self.multilingual else 2

    def _check(self, code: str) -> str:
        if code not in self.codes:
            known = "en only (English-only model)" if not self.multilingual else \
                f"{len(self.codes)} codes such as zh, en, ja"
            raise LanguageError(f"language {code!r} is not known to this model ({known})")
        return code

    def tokens(self, languages: Sequence[str]) -> Tensor:
        """Prompt tokens ``[B, P]`` on the device."""
        t = self.tok
        for lang in languages:
            self._check(lang)
        if not self.multilingual:
            rows = [[t.sot, t.no_timestamps] for _ in languages]
        else:
            rows = [[t.sot, t.to_language_token(lang), t.transcribe, t.no_timestamps]
                    for lang in languages]
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    def sot_only(self, n: int) -> Tensor:
        return torch.full((n, 1), self.tok.sot, dtype=torch.long, device=self.device)

    def _language_probs(self, sot_logits: Tensor) -> Tensor:
        """``[B, n_languages]`` softmax over the language tokens only."""
        return sot_logits.float()[:, self.lang_ids].softmax(dim=-1)

    def detect(self, sot_logits: Tensor) -> list[str]:
        """Most probable language among ``detect_among`` for each row of ``[B, V]``."""
        if not self.multilingual:
            return ["en"] * sot_logits.shape[0]
        probs = self._language_probs(sot_logits)[:, self.detect_ids]
        best = self.detect_ids[probs.argmax(dim=-1)].tolist()
        return [self.codes[i] for i in best]

    def sot_statistics(self, sot_logits: Tensor, languages: Sequence[str]) -> list[SotStatistics]:
        no_speech = sot_logits.float().softmax(dim=-1)[:, self.tok.no_speech].tolist()
        if not self.multilingual:
            return [SotStatistics("en", 1.0, p) for p in no_speech]
        probs = self._language_probs(sot_logits).cpu()
        best = probs.argmax(dim=-1).tolist()
        return [SotStatistics(self.codes[b], probs[i, self.codes.index(lang)].item(), no_speech[i])
                for i, (b, lang) in enumerate(zip(best, languages))]

    def filter_logits(self, logits: Tensor, first: bool) -> None:
        """Whisper's SuppressTokens (and SuppressBlank on the first step), in place on [R, V]."""
        logits.masked_fill_(self.suppress, float("-inf"))
        if first:
            logits.masked_fill_(self.blank, float("-inf"))

    def _suppress_tokens(self, config: DecoderConfig) -> set[int]:
        t = self.tok
        try:
            ids = [int(x) for x in config.suppress_tokens.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"suppress_tokens {config.suppress_tokens!r}: want comma-separated "
                             "integers (-1 for Whisper's non-speech symbols)") from None
        out = {i for i in ids if i >= 0}
        if -1 in ids:
            out.update(t.non_speech_tokens)
        out.update([t.transcribe, t.translate, t.sot, t.sot_prev, t.sot_lm, t.no_speech])
        if config.suppress_timestamps:
            out.update(range(t.timestamp_begin, t.encoding.n_vocab))
            out.add(t.no_timestamps)
        return out
