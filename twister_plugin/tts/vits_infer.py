"""Batched VITS inference for ESPnet's ``VITSGenerator``.

ESPnet's ``VITSGenerator.inference`` takes a batch of texts but treats ``spembs`` as one
utterance's (D,) vector, and ``VITS.inference`` wraps a single sentence. This follows the same
steps (text encoder -> stochastic duration predictor -> monotonic path -> flow^-1 -> decoder)
for a whole batch with per-sentence speaker embeddings, speaker ids and speeds.

Shapes: B sentences, T_text phone tokens, T_feats frames, H hidden channels, D spembs dim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from espnet.nets.pytorch_backend.nets_utils import make_non_pad_mask


def global_condition(gen, sids: torch.Tensor | None, spembs: torch.Tensor | None,
                     lids: torch.Tensor | None = None) -> torch.Tensor | None:
    """(B, global_channels, 1) conditioning from speaker ids, (B, D) spembs and language ids."""
    g = None
    if gen.spks is not None:
        g = gen.global_emb(sids.view(-1)).unsqueeze(-1)
    if gen.spk_embed_dim is not None:
        g_ = gen.spemb_proj(F.normalize(spembs, dim=-1)).unsqueeze(-1)
        g = g_ if g is None else g + g_
    if gen.langs is not None:
        g_ = gen.lang_emb(lids.view(-1)).unsqueeze(-1)
        g = g_ if g is None else g + g_
    return g


@torch.inference_mode()
def infer_batch(gen, text: torch.Tensor, text_lengths: torch.Tensor,
                sids: torch.Tensor | None = None, spembs: torch.Tensor | None = None,
                alpha: torch.Tensor | float = 1.0, noise_scale: float = 0.667,
                noise_scale_dur: float = 0.8, max_frames: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """text (B, T_text) -> (wav (B, T_wav), frames (B,)); sample b is wav[b, :frames[b]*hop].

    alpha: scalar or (B,) length scale per sentence (1 / speaking-rate factor). With
    ``max_frames``, longer sentences are decoded only up to it and ``frames`` keeps their full
    predicted length (so the caller can tell that they were cut).
    """
    x, m_p, logs_p, x_mask = gen.text_encoder(text, text_lengths)  # (B, H, T_text) x3
    g = global_condition(gen, sids, spembs)
    logw = gen.duration_predictor(x, x_mask, g=g, inverse=True, noise_scale=noise_scale_dur)
    alpha = torch.as_tensor(alpha, dtype=logw.dtype, device=logw.device).reshape(-1, 1, 1)
    dur = torch.ceil(torch.exp(logw) * x_mask * alpha)  # (B, 1, T_text)
    frames = torch.clamp_min(dur.sum([1, 2]), 1).long()  # (B,)
    kept = frames if max_frames is None else frames.clamp(max=max_frames)
    y_mask = make_non_pad_mask(kept).unsqueeze(1).to(text.device)  # (B, 1, T_feats)
    attn_mask = x_mask.unsqueeze(2) * y_mask.unsqueeze(-1)  # (B, 1, T_feats, T_text)
    attn = gen._generate_path(dur, attn_mask).squeeze(1)  # (B, T_feats, T_text)
    m_p = torch.matmul(attn, m_p.transpose(1, 2)).transpose(1, 2)  # (B, H, T_feats)
    logs_p = torch.matmul(attn, logs_p.transpose(1, 2)).transpose(1, 2)
    z_p = m_p + torch.randn_like(m_p) * torch.exp(logs_p) * noise_scale
    z = gen.flow(z_p, y_mask, g=g, inverse=True)
    wav = gen.decoder(z * y_mask, g=g)  # (B, 1, T_feats * hop)
    return wav.squeeze(1), frames
