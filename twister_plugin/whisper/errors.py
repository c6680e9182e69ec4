"""The one error type for Whisper weights that cannot be read."""
from __future__ import annotations


class WhisperFormatError(ValueError):
    """A Whisper weights file or folder is malformed, truncated, foreign or incomplete.

    The message always names the offending file and says what is wrong with it.
    """
