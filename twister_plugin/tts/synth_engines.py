"""Synthesis engines: one batched "text ids -> waveforms" strategy per kind of trained model.

``VitsEngine`` wraps ESPnet's VITS generator (``vits_infer.infer_batch``; waveform out).
``MelEngine`` wraps ``TwisterFastSpeech`` (log-mel out) + the Griffin-Lim vocoder built from the
model's own ``feats_extract_conf``. ``engine_for`` picks one for a model loaded by its task.

Shapes: B sentences, T_text phone tokens, T_feats frames, D spembs dim, S samples.
Engine contract: ``speak(text (B, T_text), lengths (B,), spembs (B, D), sids (B,), alpha (B,),
max_frames)`` -> (wav (B, S), frames (B,)); sentence b is ``wav[b, : frames[b] * hop]`` and a
sentence with ``frames[b] > max_frames`` was cut (the caller skips it).
"""
from __future__ import annotations

import argparse
import math

import torch

from twister_plugin.tts.fastspeech import TwisterFastSpeech
from twister_plugin.tts.vits_infer import infer_batch
from twister_plugin.tts.vocoder import FbankConfig, GriffinLimConfig, GriffinLimVocoder

SILENCE_AMP = 1e-5  # mel amplitude written into the padded frames of a batch before vocoding


class VitsEngine:
    """ESPnet VITS (GAN TTS): the generator speaks waveforms directly."""

    def __init__(self, generator, fs: int, noise_scale: float, noise_scale_dur: float):
        self.generator, self.fs, self.hop = generator, fs, generator.upsample_factor
        self.noise_scale, self.noise_scale_dur = noise_scale, noise_scale_dur

    def speak(self, text, lengths, spembs, sids, alpha, max_frames):
        return infer_batch(self.generator, text, lengths, sids=sids, spembs=spembs, alpha=alpha,
                           noise_scale=self.noise_scale, noise_scale_dur=self.noise_scale_dur,
                           max_frames=max_frames)


class MelEngine:
    """TwisterFastSpeech log-mels -> Griffin-Lim (deterministic: no noise, no random phase)."""

    def __init__(self, model: TwisterFastSpeech, vocoder: GriffinLimVocoder):
        self.model, self.vocoder = model, vocoder
        self.fs, self.hop = vocoder.fs, vocoder.hop
        base = vocoder.fbank.log_base
        self.floor = math.log(SILENCE_AMP) if base is None else math.log(SILENCE_AMP, base)

    @torch.inference_mode()
    def speak(self, text, lengths, spembs, sids, alpha, max_frames):
        mels, frames = self.model.infer_batch(text, lengths, spembs=spembs, alpha=alpha,
                                              max_frames=max_frames)  # (B, T_feats, M), (B,)
        kept = frames.clamp(max=mels.size(1))
        pad = torch.arange(mels.size(1), device=mels.device)[None] >= kept[:, None]  # (B, T_feats)
        mels = mels.masked_fill(pad.unsqueeze(-1), self.floor)
        mels = torch.cat([mels, mels.new_full((mels.size(0), 1, mels.size(2)), self.floor)], 1)
        return self.vocoder(mels), frames  # (B, T_feats * hop): one silent frame appended


def engine_for(model, args: argparse.Namespace, noise_scale: float = 0.667,
               noise_scale_dur: float = 0.8, gl_iters: int = 48):
    """The engine for an ESPnet model (``model.tts``) built from config.yaml ``args``."""
    tts = model.tts
    if isinstance(tts, TwisterFastSpeech):
        fbank = FbankConfig.from_task_args(args.feats_extract, args.feats_extract_conf,
                                           where="config.yaml")
        vocoder = GriffinLimVocoder(fbank, GriffinLimConfig(n_iter=gl_iters))
        return MelEngine(tts, vocoder.to(next(tts.parameters()).device))
    if hasattr(tts, "generator") and hasattr(tts.generator, "upsample_factor"):
        fs = int(args.tts_conf.get("sampling_rate", 22050))
        return VitsEngine(tts.generator, fs, noise_scale, noise_scale_dur)
    raise ValueError(f"no synthesis engine for {type(tts).__name__} (want VITS or "
                     "TwisterFastSpeech)")
