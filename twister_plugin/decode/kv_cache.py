"""Pre-allocated key/value caches for Whisper's text decoder.

Dimension legend: L decoder layers, R hypothesis rows (audio-major: the ``g`` rows of one audio
are adjacent), A active audios, H heads, T positions, Dh head size, Ta audio frames (1500).
"""
from __future__ import annotations

import torch
from torch import Tensor


class SelfAttentionCache:
    """Keys/values of every decoder layer's self-attention, written in place step by step.

    ``k``/``v`` are ``[L, R_max, H, T_max, Dh]``; the live part is ``[:, :n_rows, :, :length]``.
    Rows are re-ordered (beam search) or dropped (finished audios) with :meth:`select`, which
    copies only the filled positions.
    """

    def __init__(self, n_layer: int, max_rows: int, n_head: int, max_len: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        shape = (n_layer, max_rows, n_head, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.n_rows = max_rows
        self.length = 0  # positions filled (same for every row)

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def reset(self, n_rows: int) -> None:
        """Start over (positions from 0) with ``n_rows`` rows."""
        if n_rows > self.k.shape[1]:
            raise ValueError(f"{n_rows} rows requested; the cache holds {self.k.shape[1]}")
        self.n_rows, self.length = n_rows, 0

    def write(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``k``/``v`` ``[R, H, s, Dh]`` at ``length..length+s``; return every position."""
        end = self.length + k.shape[2]
        if k.shape[0] != self.n_rows or end > self.max_len:
            raise ValueError(f"cache write of {tuple(k.shape)} at {self.length}: cache has "
                             f"{self.n_rows} rows, {self.max_len} positions")
        self.k[layer, : self.n_rows, :, self.length : end] = k
        self.v[layer, : self.n_rows, :, self.length : end] = v
        return self.k[layer, : self.n_rows, :, :end], self.v[layer, : self.n_rows, :, :end]

    def advance(self, n: int) -> None:
        """Mark ``n`` more positions as filled (after every layer has written them)."""
        self.length += n

    def select(self, rows: Tensor) -> None:
        """Keep rows ``rows`` (indices into the current rows; may repeat, reorder or grow)."""
        n, t = rows.shape[0], self.length
        if n > self.k.shape[1]:
            raise ValueError(f"{n} rows requested; the cache holds {self.k.shape[1]}")
        # the right-hand side is a gathered copy, so overlapping source/target rows are safe
        self.k[:, :n, :, :t] = self.k[:, rows, :, :t]
        self.v[:, :n, :, :t] = self.v[:, rows, :, :t]
        self.n_rows = n


class CrossAttentionCache:
    """Cross-attention keys/values per layer, ``[A, H, Ta, Dh]``, computed once per batch."""

    def __init__(self, k: list[Tensor], v: list[Tensor]) -> None:
        self.k, self.v = k, v

    @property
    def n_audio(self) -> int:
        return self.k[0].shape[0]

    def select(self, audios: Tensor) -> None:
        """Keep audios ``audios`` (indices into the current audios), e.g. drop finished ones."""
        self.k = [t.index_select(0, audios) for t in self.k]
        self.v = [t.index_select(0, audios) for t in self.v]
