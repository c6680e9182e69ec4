"""Offline Whisper weights: load CTranslate2, Hugging Face or openai ``.pt`` into openai-whisper.

    from twister_plugin.whisper import load_whisper, save_checkpoint
    model = load_whisper("tools/whisper/ct2/base")      # -> whisper.model.Whisper (float32)
    save_checkpoint(model, "tools/whisper/base.pt")     # openai-whisper format, fp16, atomic
"""
from __future__ import annotations

from twister_plugin.whisper.checkpoint import save_checkpoint
from twister_plugin.whisper.errors import WhisperFormatError
from twister_plugin.whisper.loader import load_weights, load_whisper

__all__ = ["WhisperFormatError", "load_weights", "load_whisper", "save_checkpoint"]
