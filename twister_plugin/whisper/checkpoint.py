"""openai-whisper ``.pt`` checkpoints: safe reading (``weights_only``) and atomic writing.

File contract (a ``torch.save``'d dict)::

    {"dims": {n_mels, n_audio_ctx, ...: int},           # ModelDimensions as a dict
     "model_state_dict": {openai name: tensor},
     "alignment_heads": bool tensor [n_text_layer, n_text_head]}   # optional on read

Files released by OpenAI lack ``alignment_heads``; the model default (last half of the decoder
layers) is kept then. Only ``torch.load(..., weights_only=True)`` is used: a pickle that would
construct anything but tensors and plain containers is refused, never run.
"""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import asdict, fields
from pathlib import Path

import torch
from whisper.model import ModelDimensions, Whisper

from twister_plugin.utils.fileio import atomic_open
from twister_plugin.whisper.errors import WhisperFormatError
from twister_plugin.whisper.weights import WhisperWeights, alignment_mask, check_vocab_size


def is_checkpoint_file(path: Path) -> bool:
    return path.is_file()


def load_checkpoint(path: Path) -> WhisperWeights:
    """Read an openai-whisper checkpoint without running any code stored in it."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WhisperFormatError(f"{path}: refused: {_unpickler_reason(e)}") from e
    except Exception as e:  # noqa: BLE001 - arbitrary bytes fail the unpickler in arbitrary ways
        # (KeyError, IndexError, struct.error, ... besides the usual RuntimeError/EOFError)
        reason = f"{type(e).__name__}: {_first_line(e)}"
        raise WhisperFormatError(f"{path}: not a readable torch checkpoint ({reason})") from e
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise WhisperFormatError(
            f"{path}: not an openai-whisper checkpoint (needs 'dims' and 'model_state_dict')"
        )
    dims = _dims(ckpt["dims"], path)
    state = ckpt["model_state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WhisperFormatError(f"{path}: model_state_dict is not a dict of tensors")
    check_vocab_size(dims.n_vocab, path)
    heads = ckpt.get("alignment_heads")
    if heads is not None:
        shape = (dims.n_text_layer, dims.n_text_head)
        if not isinstance(heads, torch.Tensor) or tuple(heads.shape) != shape:
            raise WhisperFormatError(f"{path}: alignment_heads must be a bool tensor {shape}")
        heads = (heads.to_dense() if heads.is_sparse else heads).bool()
    return WhisperWeights(dims, dict(state), heads, path)


def save_checkpoint(
    model: Whisper, path: str | os.PathLike, dtype: torch.dtype = torch.float16
) -> None:
    """Write ``model`` as an openai-whisper checkpoint (floats cast to ``dtype``), atomically."""
    state = {
        name: (t.detach().to("cpu", dtype) if t.is_floating_point() else t.detach().cpu())
        for name, t in model.state_dict().items()
    }
    ckpt = {
        "dims": asdict(model.dims),
        "model_state_dict": state,
        "alignment_heads": alignment_mask(model),
    }
    with atomic_open(path, "wb") as f:
        torch.save(ckpt, f)


def _dims(raw: object, path: Path) -> ModelDimensions:
    names = [f.name for f in fields(ModelDimensions)]
    if not isinstance(raw, dict) or sorted(raw) != sorted(names):
        raise WhisperFormatError(f"{path}: dims must be a dict with exactly {names}")
    bad = [k for k, v in raw.items() if not isinstance(v, int) or isinstance(v, bool) or v <= 0]
    if bad:
        raise WhisperFormatError(f"{path}: dims {bad} are not positive integers")
    return ModelDimensions(**raw)


def _unpickler_reason(e: BaseException) -> str:
    """The useful part of torch's weights-only refusal (not its advice to disable safety)."""
    text = str(e)
    m = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if m:
        return (
            f"unpickling it would call {m.group(1)}; only tensors and plain containers are "
            f"loaded (torch.load weights_only=True), never code stored in a checkpoint"
        )
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, flags=re.S)
    reason = " ".join(m.group(1).split()) if m else _first_line(e)
    return f"not a readable torch checkpoint (weights-only unpickler: {reason})"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
