"""Fused kernels for training. ``fused_linear_cross_entropy`` is the output projection +
label-smoothed cross-entropy without the (N, V) logits (see ``fused_ce``)."""
from twister_plugin.kernels.fused_ce import (
    FusedCEInputError,
    FusedCEOptions,
    fused_linear_cross_entropy,
)
from twister_plugin.kernels.triton_ce import HAVE_TRITON

__all__ = ["FusedCEInputError", "FusedCEOptions", "HAVE_TRITON", "fused_linear_cross_entropy"]
