"""Twister: self-refinement of Whisper with unlabeled speech and TTS-synthesised text, for ESPnet.

Importing this package is cheap; heavy modules (torch, espnet) are imported by the submodules
that need them.
"""
__version__ = "0.1.0"
