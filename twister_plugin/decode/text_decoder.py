"""Whisper's text-decoder forward over the model's own weights, with our own caches.

The arithmetic follows ``whisper.model.TextDecoder`` step for step (LayerNorm in float32,
linear layers in the compute dtype, PyTorch SDPA), so with float32 weights it reproduces
``whisper.decode``; what changes is the bookkeeping: a pre-allocated self-attention cache
(:class:`SelfAttentionCache`), cross-attention keys/values computed once per batch, and grouped
cross-attention, where the ``g`` hypotheses of one audio attend to that audio's keys without
copying them ``g`` times.

Dimension legend: R rows (hypotheses, audio-major), A audios, g = R / A rows per audio,
s new positions, S model width, H heads, Dh = S / H, Ta audio frames, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from whisper.model import MultiHeadAttention, ResidualAttentionBlock, Whisper

from twister_plugin.decode.kv_cache import CrossAttentionCache, SelfAttentionCache


@dataclass
class _Attention:
    q_w: Tensor  # [S, S]
    q_b: Tensor  # [S]
    k_w: Tensor  # [S, S] (no bias, as in Whisper)
    v_w: Tensor
    v_b: Tensor
    o_w: Tensor
    o_b: Tensor

    @classmethod
    def of(cls, m: MultiHeadAttention, dtype: torch.dtype) -> _Attention:
        c = lambda t: t.detach().to(dtype)  # noqa: E731 (no copy when already in dtype)
        return cls(c(m.query.weight), c(m.query.bias), c(m.key.weight), c(m.value.weight),
                   c(m.value.bias), c(m.out.weight), c(m.out.bias))


@dataclass
class _Block:
    attn: _Attention
    attn_ln: tuple[Tensor, Tensor]  # LayerNorm weight, bias (float32, as Whisper keeps them)
    cross: _Attention
    cross_ln: tuple[Tensor, Tensor]
    mlp1: tuple[Tensor, Tensor]  # [4S, S], [4S]
    mlp2: tuple[Tensor, Tensor]  # [S, 4S], [S]
    mlp_ln: tuple[Tensor, Tensor]

    @classmethod
    def of(cls, b: ResidualAttentionBlock, dtype: torch.dtype) -> _Block:
        ln = lambda m: (m.weight.detach(), m.bias.detach())  # noqa: E731
        lin = lambda m: (m.weight.detach().to(dtype), m.bias.detach().to(dtype))  # noqa: E731
        return cls(_Attention.of(b.attn, dtype), ln(b.attn_ln), _Attention.of(b.cross_attn, dtype),
                   ln(b.cross_attn_ln), lin(b.mlp[0]), lin(b.mlp[2]), ln(b.mlp_ln))


def _layer_norm(x: Tensor, wb: tuple[Tensor, Tensor]) -> Tensor:
    return F.layer_norm(x.float(), (x.shape[-1],), wb[0], wb[1], 1e-5).to(x.dtype)


class CachedTextDecoder:
    """Run Whisper's decoder on new tokens, reading/writing :class:`SelfAttentionCache`."""

    def __init__(self, model: Whisper, dtype: torch.dtype) -> None:
        dec = model.decoder
        self.dtype = dtype
        self.n_head = model.dims.n_text_head
        self.n_ctx = model.dims.n_text_ctx
        self.blocks = [_Block.of(b, dtype) for b in dec.blocks]
        self.token_embedding = dec.token_embedding.weight.detach()  # [V, S], as stored
        self.positional_embedding = dec.positional_embedding.detach()  # [n_ctx, S]
        self.unembed = self.token_embedding.to(dtype).t()  # [S, V]
        self.ln = (dec.ln.weight.detach(), dec.ln.bias.detach())

    def _heads(self, x: Tensor) -> Tensor:
        """[R, s, S] -> [R, H, s, Dh]."""
        return x.view(*x.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)

    def new_cache(self, max_rows: int, max_len: int, device: torch.device) -> SelfAttentionCache:
        width = self.token_embedding.shape[1]
        return SelfAttentionCache(len(self.blocks), max_rows, self.n_head, max_len,
                                  width // self.n_head, self.dtype, device)

    def cross_cache(self, audio_features: Tensor) -> CrossAttentionCache:
        """Keys/values of every layer's cross-attention for ``audio_features [A, Ta, S]``."""
        xa = audio_features.to(self.dtype)
        ks = [self._heads(F.linear(xa, b.cross.k_w)) for b in self.blocks]  # each [A, H, Ta, Dh]
        vs = [self._heads(F.linear(xa, b.cross.v_w, b.cross.v_b)) for b in self.blocks]
        return CrossAttentionCache(ks, vs)

    def forward(self, tokens: Tensor, cache: SelfAttentionCache,
                cross: CrossAttentionCache) -> Tensor:
        """Logits ``[R, s, V]`` (float32) for ``tokens [R, s]`` at positions ``cache.length...``.

        Several new positions (``s > 1``) are only allowed from position 0 (the prompt).
        """
        n_rows, s = tokens.shape
        start = cache.length
        if s > 1 and start != 0:
            raise ValueError("several tokens at once are only supported at position 0")
        if start + s > self.n_ctx:
            raise ValueError(f"position {start + s} is past the decoder's context {self.n_ctx}")
        x = self.token_embedding[tokens] + self.positional_embedding[start : start + s]
        x = x.to(self.dtype)  # [R, s, S]
        for layer, b in enumerate(self.blocks):
            x = x + self._self_attention(_layer_norm(x, b.attn_ln), b.attn, cache, layer)
            x = x + self._cross_attention(_layer_norm(x, b.cross_ln), b.cross, cross, layer)
            h = F.gelu(F.linear(_layer_norm(x, b.mlp_ln), *b.mlp1))
            x = x + F.linear(h, *b.mlp2)
        cache.advance(s)
        x = _layer_norm(x, self.ln)
        return (x @ self.unembed).float()

    def _self_attention(self, x: Tensor, w: _Attention, cache: SelfAttentionCache,
                        layer: int) -> Tensor:
        q = self._heads(F.linear(x, w.q_w, w.q_b))  # [R, H, s, Dh]
        k = self._heads(F.linear(x, w.k_w))
        v = self._heads(F.linear(x, w.v_w, w.v_b))
        k_all, v_all = cache.write(layer, k, v)  # [R, H, length + s, Dh]
        out = F.scaled_dot_product_attention(q, k_all, v_all, is_causal=x.shape[1] > 1)
        return F.linear(out.permute(0, 2, 1, 3).flatten(start_dim=2), w.o_w, w.o_b)

    def _cross_attention(self, x: Tensor, w: _Attention, cross: CrossAttentionCache,
                         layer: int) -> Tensor:
        n_rows, s, width = x.shape
        n_audio = cross.n_audio
        q = F.linear(x, w.q_w, w.q_b)
        # the g rows of one audio are adjacent: [R, s, S] -> [A, g*s, H, Dh] -> [A, H, g*s, Dh]
        q = q.reshape(n_audio, (n_rows // n_audio) * s, self.n_head, -1).permute(0, 2, 1, 3)
        out = F.scaled_dot_product_attention(q, cross.k[layer], cross.v[layer])  # [A, H, g*s, Dh]
        out = out.permute(0, 2, 1, 3).reshape(n_rows, s, width)  # back to [R, s, S]
        return F.linear(out, w.o_w, w.o_b)
