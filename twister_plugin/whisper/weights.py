"""Format-neutral Whisper weights: dims + openai-named state dict + alignment heads.

Every reader (CTranslate2, Hugging Face, openai ``.pt``) produces a ``WhisperWeights``;
``build_model`` turns one into a ``whisper.model.Whisper`` after checking every name and shape.

Alignment heads: bool tensor [L, H] (L = n_text_layer, H = n_text_head); True marks a
cross-attention head whose weights follow the audio/text alignment (used for word timings).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from whisper.model import ModelDimensions, Whisper

from twister_plugin.whisper.errors import WhisperFormatError

# Vocabulary sizes of released Whisper models: English-only, multilingual, large-v3 (+Cantonese).
KNOWN_VOCAB_SIZES = (51864, 51865, 51866)


@dataclass
class WhisperWeights:
    dims: ModelDimensions  # model sizes, as openai-whisper names them
    state_dict: dict[str, torch.Tensor]  # openai-whisper parameter names -> tensors
    alignment_heads: torch.Tensor | None  # bool [n_text_layer, n_text_head], None = default
    source: Path  # where the weights came from (for error messages)


def heads_from_pairs(pairs: object, dims: ModelDimensions, source: Path) -> torch.Tensor:
    """Bool mask [L, H] from a list of [layer, head] pairs (CTranslate2 / HF config style)."""
    mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
    if not isinstance(pairs, (list, tuple)):
        raise WhisperFormatError(f"{source}: alignment_heads must be a list of [layer, head]")
    for pair in pairs:
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        if not ok or not (0 <= pair[0] < dims.n_text_layer and 0 <= pair[1] < dims.n_text_head):
            raise WhisperFormatError(
                f"{source}: alignment head {pair!r} is not a [layer, head] pair inside "
                f"{dims.n_text_layer} layers x {dims.n_text_head} heads"
            )
        mask[pair[0], pair[1]] = True
    return mask


def check_vocab_size(n_vocab: int, source: Path, vocabulary_file: Path | None = None) -> None:
    """Refuse an embedding whose row count is not a Whisper vocabulary (or not the tokenizer's)."""
    if n_vocab not in KNOWN_VOCAB_SIZES:
        raise WhisperFormatError(
            f"{source}: token embedding has {n_vocab} rows; a Whisper vocabulary has "
            f"{' or '.join(map(str, KNOWN_VOCAB_SIZES))}"
        )
    if vocabulary_file is not None and vocabulary_file.is_file():
        data = vocabulary_file.read_bytes()
        n_lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        if n_lines != n_vocab:
            raise WhisperFormatError(
                f"{vocabulary_file}: {n_lines} tokens but the model in {source} has a "
                f"{n_vocab}-row token embedding"
            )


def build_model(weights: WhisperWeights) -> Whisper:
    """A float32 ``Whisper`` holding ``weights``; every name and shape must match exactly."""
    model = Whisper(weights.dims)
    expected = model.state_dict()
    got = weights.state_dict
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        raise WhisperFormatError(
            f"{weights.source}: weights do not fit Whisper{_dims_str(weights.dims)}: "
            f"missing {_few(missing)}; unexpected {_few(unexpected)}"
        )
    for name, tensor in got.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise WhisperFormatError(
                f"{weights.source}: {name} has shape {tuple(tensor.shape)}, expected "
                f"{tuple(expected[name].shape)} for Whisper{_dims_str(weights.dims)}"
            )
        if not tensor.is_floating_point():
            raise WhisperFormatError(f"{weights.source}: {name} has dtype {tensor.dtype}")
    model.load_state_dict(got, strict=True)
    if weights.alignment_heads is not None:
        set_alignment_mask(model, weights.alignment_heads)
    return model


def set_alignment_mask(model: Whisper, mask: torch.Tensor) -> None:
    """Register the bool [L, H] mask the way ``Whisper.set_alignment_heads`` does (sparse)."""
    shape = (model.dims.n_text_layer, model.dims.n_text_head)
    if tuple(mask.shape) != shape or mask.dtype != torch.bool:
        got = f"{mask.dtype} {tuple(mask.shape)}"
        raise ValueError(f"alignment heads must be bool {shape}, got {got}")
    model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)


def alignment_mask(model: Whisper) -> torch.Tensor:
    """Dense bool [L, H] copy of the model's alignment heads."""
    heads = model.alignment_heads
    return (heads.to_dense() if heads.is_sparse else heads).to("cpu", torch.bool)


def _dims_str(dims: ModelDimensions) -> str:
    return (
        f"(mels={dims.n_mels}, audio {dims.n_audio_layer}x{dims.n_audio_state}/"
        f"{dims.n_audio_head}h, text {dims.n_text_layer}x{dims.n_text_state}/"
        f"{dims.n_text_head}h, vocab={dims.n_vocab})"
    )


def _few(names: list[str], k: int = 5) -> str:
    if not names:
        return "none"
    more = f" (+{len(names) - k} more)" if len(names) > k else ""
    return ", ".join(names[:k]) + more
