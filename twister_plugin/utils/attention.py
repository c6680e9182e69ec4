"""Attention backends: keep cuDNN out of ``scaled_dot_product_attention`` on CUDA.

torch 2.11 may run SDPA with cuDNN, which builds an execution plan for every new tensor shape
(hundreds of ms each, forward and backward apart). Whisper's shapes change all the time: a
fine-tuning batch's token length, and at every step of batched decoding the number of rows
still running and the cache length. Flash and memory-efficient attention have no per-shape cost.
``benchmarks/sdpa_shapes.py`` measures both orders on the card at hand (benchmarks/RESULTS.md).
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
