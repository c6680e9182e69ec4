"""Whisper model sizes (openai-whisper's published dimensions), so a model can be built from a
config without its weights (inference from a trained ``config.yaml``, random-init benchmarks)."""
from __future__ import annotations

from whisper.model import ModelDimensions

_ML = dict(n_mels=80, n_audio_ctx=1500, n_text_ctx=448, n_vocab=51865)
_EN = dict(_ML, n_vocab=51864)


def _d(base: dict, state: int, head: int, layer: int, text_layer: int | None = None, **kw) -> ModelDimensions:
    cfg = dict(base, **kw)
    return ModelDimensions(
        n_audio_state=state, n_audio_head=head, n_audio_layer=layer,
        n_text_state=state, n_text_head=head, n_text_layer=text_layer or layer, **cfg,
    )


SIZES: dict[str, ModelDimensions] = {
    "tiny": _d(_ML, 384, 6, 4), "tiny.en": _d(_EN, 384, 6, 4),
    "base": _d(_ML, 512, 8, 6), "base.en": _d(_EN, 512, 8, 6),
    "small": _d(_ML, 768, 12, 12), "small.en": _d(_EN, 768, 12, 12),
    "medium": _d(_ML, 1024, 16, 24), "medium.en": _d(_EN, 1024, 16, 24),
    "large-v2": _d(_ML, 1280, 20, 32),
    "large-v3": _d(_ML, 1280, 20, 32, n_mels=128, n_vocab=51866),
    "large-v3-turbo": _d(_ML, 1280, 20, 32, text_layer=4, n_mels=128, n_vocab=51866),
    # Test size: a few thousand parameters per layer, for CPU unit tests and CI.
    "test": _d(_ML, 64, 2, 2),
}


def dims_for(size: str) -> ModelDimensions:
    try:
        return SIZES[size]
    except KeyError:
        raise ValueError(f"unknown Whisper size {size!r}; known: {', '.join(SIZES)}") from None
