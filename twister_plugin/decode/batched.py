"""Batched Whisper decoding (greedy or beam search) with our own key/value cache.

One batch: log-mel on the model's device, the encoder once, cross-attention keys/values once,
then a step loop over a pre-allocated self-attention cache; audios that are done leave the batch
(the cache, the cross keys/values and the hypotheses are compacted). Each utterance gets its own
prompt ``<|startoftranscript|><|lang|><|transcribe|><|notimestamps|>`` (``.en`` models:
``<|startoftranscript|><|notimestamps|>``), with the language forced per item or detected from
the first decoder step over the model's language tokens.

Usage::

    from twister_plugin.decode import BatchedDecoder, DecoderConfig
    dec = BatchedDecoder(model, DecoderConfig(search="beam", beam_size=3))
    results = dec.decode_all(waves, languages=["zh", None, "en"], batch_size=16)

Shapes: B batch, M mel bins, A active audios, R rows (A * g hypotheses), V vocabulary.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm
from whisper.model import Whisper
from whisper.tokenizer import Tokenizer, get_tokenizer
from whisper.utils import compression_ratio

from twister_plugin.decode.beam import BeamSearch
from twister_plugin.decode.features import waves_to_mel
from twister_plugin.decode.kv_cache import CrossAttentionCache, SelfAttentionCache
from twister_plugin.decode.prompt import PromptBuilder, SotStatistics
from twister_plugin.decode.quant import quantize_encoder
from twister_plugin.decode.search import Greedy, Hyps, Hypothesis, SearchStrategy
from twister_plugin.decode.text_decoder import CachedTextDecoder
from twister_plugin.lm.fusion import ShallowFusion, load_lm
from twister_plugin.utils.attention import avoid_cudnn_attention

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class DecoderConfig:
    search: str = "greedy"  # "greedy" or "beam"
    beam_size: int = 5  # hypotheses kept per utterance (search="beam")
    patience: float = 1.0  # beam search waits for round(beam_size * patience) finished hypotheses
    length_penalty: float | None = None  # None: rank by logprob / length; else GNMT alpha in [0, 1]
    max_new_tokens: int | None = None  # sampled tokens per utterance; None = n_text_ctx // 2
    suppress_tokens: str = "-1"  # comma-separated ids; -1 adds Whisper's non-speech symbols
    suppress_blank: bool = True  # forbid a blank or EOT as the first sampled token
    suppress_timestamps: bool = True  # forbid timestamp tokens (whisper.decode does not)
    dtype: str = "auto"  # float32 | float16 | bfloat16 | int8 (CPU: int8 encoder linears); auto: float16 on CUDA, float32 on CPU
    detect_among: tuple[str, ...] | None = None  # languages detection may pick; None = all
    lm_path: str | None = None  # LM exp dir (twister_plugin.bin.lm_train) for shallow fusion
    lm_weight: float = 0.0  # fused score = log p_whisper + lm_weight * log p_lm (0: LM unused)
    length_bonus: float = 0.0  # added per text token (not EOT) to the fused score

    def __post_init__(self) -> None:
        if isinstance(self.suppress_tokens, int):  # YAML reads -1 unquoted as a number
            object.__setattr__(self, "suppress_tokens", str(self.suppress_tokens))
        if self.detect_among is not None:
            object.__setattr__(self, "detect_among", tuple(self.detect_among))
        if self.search not in SEARCHES:
            raise ValueError(f"search must be one of {sorted(SEARCHES)}, got {self.search!r}")
        if self.dtype not in ("auto", "int8") and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be auto, int8 or one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.beam_size < 1 or self.patience < 1.0:
            raise ValueError(f"beam_size must be >= 1 and patience >= 1.0, got "
                             f"{self.beam_size} and {self.patience}")
        if self.length_penalty is not None and not 0.0 <= self.length_penalty <= 1.0:
            raise ValueError(f"length_penalty must be in [0, 1] or None, got {self.length_penalty}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.lm_weight < 0 or (self.lm_weight > 0 and not self.lm_path):
            raise ValueError(f"lm_weight must be >= 0 and > 0 only with lm_path, got "
                             f"{self.lm_weight} with lm_path={self.lm_path!r}")


@dataclass
class DecodeResult:
    text: str  # decoded text, stripped
    tokens: list[int]  # sampled tokens, without prompt and EOT
    language: str  # language of the prompt (forced or detected)
    language_prob: float  # P(language) at the SOT step, softmax over the language tokens
    detected_language: str  # most probable language at the SOT step (over all languages)
    avg_logprob: float  # sum of token log-probs / (len(tokens) + 1), as Whisper
    no_speech_prob: float  # P(<|nospeech|>) at the SOT step
    compression_ratio: float  # len(utf8) / len(zlib(utf8)), whisper.utils.compression_ratio
    finished: bool  # False: stopped by max_new_tokens before EOT (a likely loop)

    def to_dict(self) -> dict:
        return asdict(self)


def _greedy(cfg: DecoderConfig, eot: int, fusion: ShallowFusion | None = None) -> SearchStrategy:
    return Greedy(eot, fusion)


def _beam(cfg: DecoderConfig, eot: int, fusion: ShallowFusion | None = None) -> SearchStrategy:
    return BeamSearch(cfg.beam_size, eot, cfg.patience, cfg.length_penalty, fusion)


SEARCHES = {"greedy": _greedy, "beam": _beam}


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Compute dtype of the decoder (``int8`` quantises the encoder only: float32 elsewhere)."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name == "int8":
        if device.type != "cpu":
            raise ValueError(f"dtype int8 (dynamic quantisation) runs on the CPU only, not {device}")
        return torch.float32
    return DTYPES[name]


def length_sorted_batches(lengths: Sequence[float], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (memory peaks early)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class BatchedDecoder:
    """Decode batches of 16-kHz waveforms with a ``whisper.model.Whisper`` (CPU or CUDA)."""

    def __init__(self, model: Whisper, config: DecoderConfig = DecoderConfig()) -> None:
        self.model = model.eval()
        self.config = config
        self.device = model.device
        if self.device.type == "cuda":
            avoid_cudnn_attention()  # rows and cache length change every step (utils/attention.py)
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.encoder = quantize_encoder(model.encoder) if config.dtype == "int8" else model.encoder
        self.tokenizer: Tokenizer = get_tokenizer(
            model.is_multilingual, num_languages=model.num_languages, task="transcribe")
        if self.tokenizer.encoding.n_vocab != model.dims.n_vocab:
            raise ValueError(f"model vocabulary {model.dims.n_vocab} != Whisper tokenizer's "
                             f"{self.tokenizer.encoding.n_vocab}")
        self.prompts = PromptBuilder(self.tokenizer, model.is_multilingual, config, self.device)
        self.text_decoder = CachedTextDecoder(model, self.dtype)
        n_ctx = model.dims.n_text_ctx
        # Whisper samples until the sequence passes n_ctx: at most n_ctx - len(prompt) + 1 tokens
        self.max_new = min(config.max_new_tokens or n_ctx // 2, n_ctx - self.prompts.length + 1)
        # the LM is loaded only when it counts: lm_weight 0 decodes exactly as without one
        self.lm = load_lm(config.lm_path, self.device) if config.lm_weight > 0 else None

    def new_search(self) -> SearchStrategy:
        cfg = self.config
        fusion = None
        if self.lm is not None or cfg.length_bonus != 0.0:
            fusion = ShallowFusion(self.lm, self.tokenizer.eot, cfg.lm_weight, cfg.length_bonus)
        return SEARCHES[cfg.search](cfg, self.tokenizer.eot, fusion)

    @torch.no_grad()
    def decode_batch(self, waves: Sequence[np.ndarray | Tensor],
                     languages: Sequence[str | None] | None = None,
                     max_new_tokens: int | None = None) -> list[DecodeResult]:
        """One batch of mono 16-kHz waveforms (each <= 30 s; longer ones are cut).
        ``max_new_tokens``: a tighter cap than the config's for this batch (e.g. a round trip
        that knows how long the text is); outputs stopped by it have ``finished`` False."""
        mel = waves_to_mel(waves, self.model.dims.n_mels, self.device)  # [B, M, 3000]
        return self.decode_mel(mel, languages, max_new_tokens)

    @torch.no_grad()
    def decode_all(self, waves: Sequence[np.ndarray | Tensor],
                   languages: Sequence[str | None] | None = None,
                   batch_size: int = 16, progress: bool = False,
                   max_new_tokens: Sequence[int] | None = None) -> list[DecodeResult]:
        """Every waveform, in length-sorted batches; results in input order (``progress``: a
        tqdm bar over utterances). ``max_new_tokens``: a cap per waveform; batches are then
        sorted by it and each decodes up to its largest cap (bounds looping outputs)."""
        languages = list(languages) if languages is not None else [None] * len(waves)
        if max_new_tokens is not None and len(max_new_tokens) != len(waves):
            raise ValueError(f"{len(max_new_tokens)} token caps for {len(waves)} waveforms")
        keys = list(max_new_tokens) if max_new_tokens is not None else [len(w) for w in waves]
        out: list[DecodeResult | None] = [None] * len(waves)
        bar = tqdm(total=len(waves), desc="decode", unit="utt", disable=not progress)
        for batch in length_sorted_batches(keys, batch_size):
            cap = max(keys[i] for i in batch) if max_new_tokens is not None else None
            results = self.decode_batch([waves[i] for i in batch], [languages[i] for i in batch], cap)
            for i, r in zip(batch, results):
                out[i] = r
            bar.update(len(batch))
        bar.close()
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def decode_mel(self, mel: Tensor, languages: Sequence[str | None] | None = None,
                   max_new_tokens: int | None = None) -> list[DecodeResult]:
        """Decode log-mel features ``[B, M, 3000]``; ``languages[i]`` None = detect."""
        n_audio = mel.shape[0]
        if max_new_tokens is not None and max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        max_new = self.max_new if max_new_tokens is None else min(self.max_new, max_new_tokens)
        languages = list(languages) if languages is not None else [None] * n_audio
        if len(languages) != n_audio:
            raise ValueError(f"{len(languages)} languages for {n_audio} utterances")
        features = self.encoder(mel.to(self.device, self.dtype))  # [B, Ta, S]
        cross = self.text_decoder.cross_cache(features)
        search = self.new_search()
        cache = self.text_decoder.new_cache(n_audio * search.group_size,
                                            self.prompts.length + max_new, self.device)
        if any(lang is None for lang in languages):
            languages = self._detect(languages, cache, cross)
        prompt = self.prompts.tokens(languages)  # [B, P]
        cache.reset(n_audio)
        logits = self.text_decoder.forward(prompt, cache, cross)  # [B, P, V]
        stats = self.prompts.sot_statistics(logits[:, 0], languages)
        best = self._search(logits[:, -1], search, cache, cross, n_audio, max_new)
        return [self._result(h, lang, st) for h, lang, st in zip(best, languages, stats)]

    def _detect(self, languages: list[str | None], cache: SelfAttentionCache,
                cross: CrossAttentionCache) -> list[str]:
        """Fill in the missing languages from one decoder step on <|startoftranscript|>."""
        cache.reset(len(languages))
        sot = self.prompts.sot_only(len(languages))  # [B, 1]
        detected = self.prompts.detect(self.text_decoder.forward(sot, cache, cross)[:, 0])
        return [lang if lang is not None else d for lang, d in zip(languages, detected)]

    def _search(self, logits: Tensor, search: SearchStrategy, cache: SelfAttentionCache,
                cross: CrossAttentionCache, n_audio: int, max_new: int) -> list[Hypothesis]:
        """The step loop: pick tokens, drop finished audios, run the decoder on the new tokens."""
        search.start(n_audio, self.device)
        hyps = Hyps(torch.zeros(n_audio, 0, dtype=torch.long, device=self.device),
                    torch.zeros(n_audio, dtype=torch.float32, device=self.device),
                    list(range(n_audio)))
        for step in range(max_new):
            self.prompts.filter_logits(logits, first=step == 0)
            hyps, src, done = search.step(logits, hyps)
            if step == max_new - 1:
                if bool(done.any()):  # ended exactly at the limit: finished, not cut
                    hyps.keep(~done)
                break
            rows = None
            if bool(done.any()):
                rows = hyps.keep(~done)
                cross.select((~done).nonzero()[:, 0])
                if not hyps.audios:
                    break
            if rows is not None:  # new row i extends old row src[i] (i itself when src is None)
                src = rows if src is None else src[rows]
            if src is not None:
                cache.select(src)
            search.advance(src, hyps)  # the fusion LM (if any) follows the rows
            logits = self.text_decoder.forward(hyps.tokens[:, -1:], cache, cross)[:, -1]  # [R, V]
        return search.finalize(hyps)

    def _result(self, hyp: Hypothesis, language: str, stats: SotStatistics) -> DecodeResult:
        text = self.tokenizer.decode(hyp.tokens).strip()
        return DecodeResult(
            text=text, tokens=hyp.tokens, language=language, language_prob=stats.language_prob,
            detected_language=stats.detected_language,
            avg_logprob=hyp.sum_logprob / (len(hyp.tokens) + 1),
            no_speech_prob=stats.no_speech_prob, compression_ratio=compression_ratio(text),
            finished=hyp.finished)
