"""Twister: self-refinement of Whisper with unlabeled speech and TTS-synthesised text, for ESPnet.

Importing this package is cheap; heavy modules (torch, espnet) are imported by the submodules
that need them.
"""
__version__ = "0.1.0"

from twister_plugin.utils.offline import guard_nltk as _guard_nltk

_guard_nltk()  # ESPnet imports g2p_en, which downloads NLTK data at import: blocked, offline
