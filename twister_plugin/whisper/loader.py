"""Auto-detect a Whisper weights source and load it as ``whisper.model.Whisper``."""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from whisper.model import Whisper

from twister_plugin.whisper import checkpoint, ct2, hf
from twister_plugin.whisper.errors import WhisperFormatError
from twister_plugin.whisper.weights import WhisperWeights, build_model


@dataclass(frozen=True)
class WeightsFormat:
    name: str  # shown in logs and errors
    matches: Callable[[Path], bool]  # does this path look like this format?
    read: Callable[[Path], WhisperWeights]  # parse it (raises WhisperFormatError)


FORMATS = (
    WeightsFormat("ctranslate2", ct2.is_ct2_dir, ct2.load_ct2_dir),
    WeightsFormat("huggingface", hf.is_hf_dir, hf.load_hf_dir),
    WeightsFormat("openai-checkpoint", checkpoint.is_checkpoint_file, checkpoint.load_checkpoint),
)


_FOLDER_FILES = re.compile(r"^(model\.bin(\.part\d+)?|model\.safetensors(\.index\.json)?)$")


def detect_format(src: Path) -> WeightsFormat:
    if not src.exists():
        raise WhisperFormatError(f"{src}: no such file or folder")
    for fmt in FORMATS:
        if fmt.matches(src):
            return fmt
    raise WhisperFormatError(
        f"{src}: not a Whisper model: expected a .pt checkpoint, a CTranslate2 folder "
        f"(model.bin or model.bin.part1..N) or a Hugging Face folder (model.safetensors)"
    )


def load_weights(src: str | os.PathLike) -> WhisperWeights:
    """Dims, openai-named state dict and alignment heads from any supported source."""
    src = Path(src)
    if src.is_file() and _FOLDER_FILES.match(src.name):
        src = src.parent  # a file of a CTranslate2 / Hugging Face folder: read the folder
    return detect_format(src).read(src)


def load_whisper(
    src: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> Whisper:
    """Load Whisper weights from a .pt file, a CTranslate2 folder or a Hugging Face folder.

    The model is float32 unless ``dtype`` is given, on ``device``, in eval mode, with the
    alignment heads of the source (the openai default when the source has none).
    """
    model = build_model(load_weights(src))
    if dtype is not None:
        model = model.to(dtype)
    return model.to(device).eval()
