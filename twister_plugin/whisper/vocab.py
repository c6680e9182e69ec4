"""Whisper's vocabulary as byte-level BPE (vocab + merges), derived from openai-whisper's tiktoken.

openai-whisper tokenizes with tiktoken: ``whisper/assets/{multilingual,gpt2}.tiktoken`` give a
rank per byte string (rank = token id), and ``whisper.tokenizer`` appends the special tokens
(``<|endoftext|>``, ``<|startoftranscript|>``, languages, tasks, ``<|notimestamps|>``, 1501
timestamps). Hugging Face ``tokenizers`` / transformers / faster-whisper need the same vocabulary
as byte-level BPE instead:

* token strings: every byte mapped to a printable character (GPT-2's byte-to-unicode table:
  printable Latin-1 bytes stand for themselves, the other 68 bytes get U+0100.. in byte order),
  so ``b" the"`` is ``"Ġthe"``;
* merges: for each multi-byte token of rank r, the pair of lower-rank tokens that tiktoken's
  merge loop (always join the adjacent pair whose join has the lowest rank) reaches when it is
  limited to ranks below r. That is the merge that created the token, so the list is the BPE
  training history; ordered by r, it reproduces tiktoken's encoding.

Token ids (multilingual, 99 languages; ``.en`` models are one lower from ``<|endoftext|>`` on):
    0..50256 BPE (50256 is the empty string) | 50257 <|endoftext|> | 50258 <|startoftranscript|>
    | 50259.. languages | <|translate|> <|transcribe|> <|startoflm|> <|startofprev|>
    <|nospeech|> (exported as <|nocaptions|>) <|notimestamps|> | <|0.00|> .. <|30.00|>
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from whisper.tokenizer import Tokenizer, get_tokenizer

ENGLISH_VOCAB = 51864  # n_vocab of the .en models (gpt2.tiktoken, 99 language tokens)
_MULTILINGUAL_BASE = 51765  # n_vocab = 51765 + 1 + num_languages for multilingual models
# Exported token strings use the Hugging Face name where it differs from openai-whisper's:
# CTranslate2 finds the no-speech token only as <|nocaptions|> (faster-whisper takes either).
HF_NAMES = {"<|nospeech|>": "<|nocaptions|>"}


@functools.lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (no whitespace, no controls)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def bytes_to_token(data: bytes) -> str:
    table = byte_to_unicode()
    return "".join(table[b] for b in data)


@dataclass(frozen=True)
class WhisperVocab:
    multilingual: bool  # 99/100 languages (True) or an English-only .en model
    tokens: tuple[str, ...]  # id -> token string (byte-level BPE; specials "<|..|>", HF_NAMES)
    n_bpe: int  # ids below this are BPE tokens; it is also the id of <|endoftext|>
    merges: tuple[tuple[str, str], ...]  # BPE merges, highest priority first
    special_ids: dict[str, int]  # special token -> id, as openai-whisper names them
    language_ids: dict[str, int]  # language code ("en", "zh", ...) -> id of <|code|>
    non_speech: tuple[int, ...]  # openai-whisper's Tokenizer.non_speech_tokens (sorted)

    @property
    def n_vocab(self) -> int:
        return len(self.tokens)

    def id(self, special: str) -> int:
        return self.special_ids[special]

    @property
    def eot(self) -> int:
        return self.id("<|endoftext|>")

    @property
    def sot(self) -> int:
        return self.id("<|startoftranscript|>")

    @property
    def no_timestamps(self) -> int:
        return self.id("<|notimestamps|>")

    @property
    def control_tokens(self) -> list[str]:
        """Specials from <|endoftext|> to <|notimestamps|> (everything but the timestamps)."""
        return list(self.tokens[self.n_bpe : self.no_timestamps + 1])

    @property
    def suppress_tokens(self) -> list[int]:
        """Suppressed at every step: non-speech tokens + the prompt-only specials (the list
        Hugging Face's generation_config and CTranslate2's config.json ship)."""
        prompt_only = ("<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
                       "<|startoflm|>", "<|startofprev|>", "<|nospeech|>")
        return sorted({*self.non_speech, *(self.id(t) for t in prompt_only)})

    @property
    def begin_suppress_tokens(self) -> list[int]:
        """Suppressed at the first sampled token: a lone space and <|endoftext|>."""
        return [self.tokens.index("Ġ", 0, self.n_bpe), self.eot]


def openai_tokenizer(n_vocab: int) -> Tokenizer:
    """openai-whisper's tokenizer for a model with an ``n_vocab``-row token embedding."""
    if n_vocab == ENGLISH_VOCAB:
        tokenizer = get_tokenizer(multilingual=False)
    else:
        num_languages = n_vocab - _MULTILINGUAL_BASE - 1
        if not 1 <= num_languages <= 100:
            raise ValueError(f"no Whisper tokenizer has a vocabulary of {n_vocab} tokens")
        tokenizer = get_tokenizer(multilingual=True, num_languages=num_languages)
    if tokenizer.encoding.n_vocab != n_vocab:
        raise ValueError(
            f"no Whisper tokenizer has a vocabulary of {n_vocab} tokens "
            f"(closest: {tokenizer.encoding.name} with {tokenizer.encoding.n_vocab})"
        )
    return tokenizer


@functools.lru_cache(maxsize=4)
def whisper_vocab(n_vocab: int) -> WhisperVocab:
    """The byte-level BPE form of the Whisper vocabulary with ``n_vocab`` tokens (~1 s)."""
    tok = openai_tokenizer(n_vocab)
    enc = tok.encoding
    n_bpe = tok.eot
    ranks = {enc.decode_single_token_bytes(i): i for i in range(n_bpe)}
    tokens = [bytes_to_token(enc.decode_single_token_bytes(i)) for i in range(n_bpe)]
    by_id = {i: name for name, i in tok.special_tokens.items()}
    missing = [i for i in range(n_bpe, n_vocab) if i not in by_id]
    if missing or len(ranks) != n_bpe:
        raise ValueError(f"{enc.name}: token ids {missing[:3]} have no token")
    tokens += [HF_NAMES.get(by_id[i], by_id[i]) for i in range(n_bpe, n_vocab)]
    return WhisperVocab(
        multilingual=n_vocab != ENGLISH_VOCAB,
        tokens=tuple(tokens),
        n_bpe=n_bpe,
        merges=tuple(bpe_merges(ranks)),
        special_ids=dict(tok.special_tokens),
        language_ids=dict(zip(tok.all_language_codes, tok.all_language_tokens)),
        non_speech=tuple(sorted(tok.non_speech_tokens)),
    )


def bpe_merges(ranks: dict[bytes, int]) -> list[tuple[str, str]]:
    """One merge per multi-byte token, ordered by the rank of the token it makes."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = _merge_below(token, rank, ranks)
        if len(parts) != 2:  # not reachable by merging: tiktoken only finds it whole
            continue
        merges.append((bytes_to_token(parts[0]), bytes_to_token(parts[1])))
    return merges


def _merge_below(token: bytes, max_rank: int, ranks: dict[bytes, int]) -> list[bytes]:
    """tiktoken's merge loop on ``token``'s bytes using only tokens ranked below ``max_rank``."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best_rank, best_i = max_rank, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1], max_rank)
            if rank < best_rank:  # strict: the leftmost pair wins a tie, as in tiktoken
                best_rank, best_i = rank, i
        if best_i < 0:
            break
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts
