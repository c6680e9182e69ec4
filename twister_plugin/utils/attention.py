"""Attention backends: keep cuDNN out of ``scaled_dot_product_attention`` on CUDA.

On an H100, torch 2.11 tries cuDNN first for SDPA, and cuDNN builds an execution plan for every
tensor shape it has not seen: ~250 ms per new token length in a bf16 fine-tuning step of Whisper
base's decoder, ~50 ms per new (rows, cache length) of a decoding step (``benchmarks/sdpa_shapes.py``,
benchmarks/RESULTS.md session 7). Whisper's shapes change all the time: a fine-tuning batch's
token length, and at every step of batched decoding the rows still running and the cache length.
Flash attention pays little for a new shape (12 ms and 0.2 ms there; a cold pseudo-labelling job decoded
3.85x faster without cuDNN); cuDNN's planned kernels are faster once every shape is known.
``TWISTER_CUDNN_SDPA=1`` keeps torch's default.
"""
from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def avoid_cudnn_attention() -> bool:
    """Switch cuDNN attention off in this process (CUDA only; the other backends are unchanged).

    Returns True when switched off now, False when ``TWISTER_CUDNN_SDPA=1`` asks to keep it,
    when it is off already, or when torch has no such switch."""
    import torch

    if os.environ.get("TWISTER_CUDNN_SDPA") == "1":
        return False
    cuda = getattr(torch.backends, "cuda", None)
    if cuda is None or not hasattr(cuda, "enable_cudnn_sdp") or not cuda.cudnn_sdp_enabled():
        return False
    cuda.enable_cudnn_sdp(False)
    logger.debug("cuDNN attention off (a plan per new shape; TWISTER_CUDNN_SDPA=1 keeps it)")
    return True
