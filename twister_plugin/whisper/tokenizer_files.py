"""Tokenizer and feature-extractor files for exported Whisper folders (no transformers needed).

Built from ``WhisperVocab`` (openai-whisper's tiktoken ranks as byte-level BPE):

* ``tokenizer.json``: a ``tokenizers`` BPE tokenizer (faster-whisper loads this file; without it
  it would try to download one). Pre-tokenizer ByteLevel with GPT-2's split regex (the same
  pattern as openai-whisper's tiktoken encoding), ``ignore_merges`` so that a whole pre-token
  found in the vocabulary is taken as one token, as tiktoken does.
* Hugging Face ``WhisperTokenizer`` files: ``vocab.json``, ``merges.txt``, ``added_tokens.json``,
  ``special_tokens_map.json``, ``tokenizer_config.json``, ``normalizer.json``.
* ``vocabulary.txt`` for CTranslate2 (one token per line, every id including timestamps).
* ``preprocessor_config.json``: ``WhisperFeatureExtractor`` settings (16 kHz, 25 ms / 10 ms,
  30 s windows, ``n_mels`` bins).
"""
from __future__ import annotations

import json
from pathlib import Path

import whisper

from twister_plugin.whisper.vocab import WhisperVocab

SAMPLE_RATE = 16000  # Hz
HOP_LENGTH = 160  # samples per mel frame (10 ms)
N_FFT = 400  # samples per STFT window (25 ms)
CHUNK_SECONDS = 30  # Whisper's fixed input window
MODEL_MAX_LENGTH = 1024  # what the Hugging Face Whisper tokenizers declare


def _added(token_id: int, content: str, special: bool) -> dict:
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": special}


def _bpe_vocab(v: WhisperVocab) -> dict[str, int]:
    """BPE tokens + <|endoftext|> (the Hugging Face files keep it in the vocabulary too)."""
    vocab = {token: i for i, token in enumerate(v.tokens[: v.n_bpe])}
    vocab[v.tokens[v.eot]] = v.eot
    return vocab


def _added_tokens(v: WhisperVocab) -> list[dict]:
    """Every special token; control tokens are special, timestamps are not (they decode)."""
    return [_added(i, v.tokens[i], special=i <= v.no_timestamps)
            for i in range(v.n_bpe, v.n_vocab)]


def tokenizer_json(v: WhisperVocab) -> dict:
    """The ``tokenizers`` serialisation of the Whisper tokenizer."""
    sot, no_ts, eot = (v.tokens[i] for i in (v.sot, v.no_timestamps, v.eot))
    def special(token: str, type_id: int = 0) -> dict:
        return {"SpecialToken": {"id": token, "type_id": type_id}}

    def sequence(name: str, type_id: int) -> dict:
        return {"Sequence": {"id": name, "type_id": type_id}}

    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": _added_tokens(v),
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special(sot), special(no_ts), sequence("A", 0), special(eot)],
            "pair": [special(sot), special(no_ts), sequence("A", 0), sequence("B", 1),
                     special(eot, 1)],
            "special_tokens": {t: {"id": t, "ids": [v.tokens.index(t, v.n_bpe)], "tokens": [t]}
                               for t in (eot, sot, no_ts)},
        },
        "decoder": {**byte_level, "add_prefix_space": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": True,
            "vocab": _bpe_vocab(v),
            "merges": [f"{a} {b}" for a, b in v.merges],
        },
    }


def hf_tokenizer_files(v: WhisperVocab) -> dict[str, str]:
    """File name -> text of a Hugging Face ``WhisperTokenizer`` (plus ``tokenizer.json``)."""
    eot = v.tokens[v.eot]
    control = v.control_tokens
    added = _added_tokens(v)
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(t["id"]): {k: t[k] for k in sorted(t) if k != "id"}
                                 for t in added},
        "additional_special_tokens": control,
        "bos_token": eot, "eos_token": eot, "pad_token": eot, "unk_token": eot,
        "clean_up_tokenization_spaces": False,  # decode exactly as openai-whisper does
        "errors": "replace",
        "model_max_length": MODEL_MAX_LENGTH,
        "processor_class": "WhisperProcessor",
        "return_attention_mask": False,
        "tokenizer_class": "WhisperTokenizer",
    }
    special_map = {"additional_special_tokens": control, "bos_token": eot, "eos_token": eot,
                   "pad_token": eot, "unk_token": eot}
    merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in v.merges)
    return {
        "vocab.json": _dumps(_bpe_vocab(v)),
        "merges.txt": merges,
        "added_tokens.json": _dumps({t["content"]: t["id"] for t in added[1:]}),
        "special_tokens_map.json": _dumps(special_map),
        "tokenizer_config.json": _dumps(config),
        "normalizer.json": english_spelling_normalizer(),
        "tokenizer.json": _dumps(tokenizer_json(v), indent=None),
    }


def english_spelling_normalizer() -> str:
    """openai-whisper's British -> American spelling map (Hugging Face's normalizer.json)."""
    path = Path(whisper.__file__).parent / "normalizers" / "english.json"
    return _dumps(json.loads(path.read_text(encoding="utf-8")))


def vocabulary_txt(v: WhisperVocab) -> str:
    """CTranslate2's vocabulary: token of id i on line i (byte-level strings have no newline)."""
    return "".join(f"{t}\n" for t in v.tokens)


def preprocessor_config(n_mels: int) -> str:
    n_samples = CHUNK_SECONDS * SAMPLE_RATE
    return _dumps({
        "chunk_length": CHUNK_SECONDS,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": n_mels,
        "hop_length": HOP_LENGTH,
        "n_fft": N_FFT,
        "n_samples": n_samples,
        "nb_max_frames": n_samples // HOP_LENGTH,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "WhisperProcessor",
        "return_attention_mask": False,
        "sampling_rate": SAMPLE_RATE,
    })


def _dumps(obj: object, indent: int | None = 2) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=indent) + "\n"
