"""Batched Whisper decoding: greedy and batched beam search over our own key/value cache."""
from twister_plugin.decode.batched import (
    BatchedDecoder,
    DecodeResult,
    DecoderConfig,
    length_sorted_batches,
)
from twister_plugin.decode.features import waves_to_mel
from twister_plugin.decode.prompt import LanguageError

__all__ = ["BatchedDecoder", "DecodeResult", "DecoderConfig", "LanguageError",
           "length_sorted_batches", "waves_to_mel"]
