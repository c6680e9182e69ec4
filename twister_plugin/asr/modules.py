"""Plugin Whisper encoder and decoder for ESPnet's ASR task.

ESPnet's own Whisper classes break with openai-whisper 20250625 and insist on hub model names;
these wrap openai-whisper's ``AudioEncoder`` / ``TextDecoder`` built from a size name, with weights
from a local checkpoint (any format ``twister_plugin.whisper.load_whisper`` reads). The class
names keep "Whisper": ESPnet's ASR model switches its frontend handling on that.

Data contract (B batch, S samples at 16 kHz, T=3000 mel frames, F=1500 encoder frames,
D model width, L tokens, V vocabulary):
  encoder:  speech (B, S) float, speech_lengths (B,)  ->  (B, F, D), lengths (B,) all F
  decoder:  enc (B, F, D), ys_in (B, L) long          ->  logits (B, L, V) float32
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Optional, Tuple

import torch

from espnet2.asr.decoder.abs_decoder import AbsDecoder
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.specaug.specaug import SpecAug
from whisper.model import AudioEncoder, ModelDimensions, TextDecoder

from twister_plugin.decode.features import batch_log_mel, pad_or_trim_batch
from twister_plugin.asr.sizes import dims_for

logger = logging.getLogger(__name__)

@functools.lru_cache(maxsize=2)
def _load(checkpoint: str):
    from twister_plugin.whisper import load_whisper

    return load_whisper(checkpoint, device="cpu")

def build_part(part: str, size: str, checkpoint: Optional[str]) -> Tuple[torch.nn.Module, ModelDimensions]:
    """Build the encoder or decoder of ``size``; copy weights from ``checkpoint`` if given.

    A checkpoint path that does not exist is an error unless it is the empty string / None:
    inference from a trained config builds without weights and then loads ``model.pth``.
    """
    dims = dims_for(size)
    if checkpoint:
        if not Path(checkpoint).exists():
            raise FileNotFoundError(f"{checkpoint}: Whisper checkpoint not found (size {size})")
        whole = _load(str(checkpoint))
        if whole.dims != dims:
            raise ValueError(f"{checkpoint}: dims {whole.dims} do not match size {size!r} {dims}")
        module = whole.encoder if part == "encoder" else whole.decoder
        fresh = _new(part, dims)
        fresh.load_state_dict({k: v.float() for k, v in module.state_dict().items()})
        return fresh, dims
    return _new(part, dims), dims


def _new(part: str, d: ModelDimensions) -> torch.nn.Module:
    if part == "encoder":
        return AudioEncoder(d.n_mels, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer)
    dec = TextDecoder(d.n_vocab, d.n_text_ctx, d.n_text_state, d.n_text_head, d.n_text_layer)
    torch.nn.init.normal_(dec.positional_embedding, std=0.01)  # openai-whisper leaves it uninitialised
    torch.nn.init.normal_(dec.token_embedding.weight, std=0.02)
    return dec


def freeze_but_last(blocks: torch.nn.ModuleList, module: torch.nn.Module, trainable_layers: int) -> None:
    """Freeze ``module`` except its last ``trainable_layers`` blocks (-1: all trainable)."""
    if trainable_layers < 0:
        return
    for p in module.parameters():
        p.requires_grad_(False)
    for block in list(blocks)[len(blocks) - trainable_layers:] if trainable_layers else []:
        for p in block.parameters():
            p.requires_grad_(True)


class TwisterWhisperEncoder(AbsEncoder):
    """Whisper audio encoder on raw 16 kHz speech; log-mel and SpecAugment inside."""

    def __init__(
        self,
        input_size: int = 1,
        size: str = "base",
        checkpoint: Optional[str] = None,
        specaug_conf: Optional[dict] = None,
        trainable_layers: int = -1,
    ):
        super().__init__()
        self.encoders, self.dims = build_part("encoder", size, checkpoint)
        self.specaug = SpecAug(**specaug_conf) if specaug_conf else None
        freeze_but_last(self.encoders.blocks, self.encoders, trainable_layers)

    def output_size(self) -> int:
        return self.dims.n_audio_state

    def forward(
        self, xs_pad: torch.Tensor, ilens: torch.Tensor, prev_states: torch.Tensor = None
    ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        audio = pad_or_trim_batch(xs_pad.float())  # (B, 480000)
        mel = batch_log_mel(audio, self.dims.n_mels)  # (B, M, 3000)
        if self.specaug is not None and self.training:
            frames = torch.clamp(ilens // 160, max=mel.shape[-1])
            feats, _ = self.specaug(mel.transpose(1, 2), frames)  # (B, T, M)
            mel = feats.transpose(1, 2)
        dtype = next(self.encoders.parameters()).dtype
        out = self.encoders(mel.to(dtype))  # (B, 1500, D)
        olens = torch.full((out.shape[0],), out.shape[1], dtype=torch.long, device=out.device)
        return out, olens, None


class TwisterWhisperDecoder(AbsDecoder):
    """Whisper text decoder; logits over the whole Whisper vocabulary (tied embedding)."""

    def __init__(
        self,
        vocab_size: int,
        encoder_output_size: int,
        size: str = "base",
        checkpoint: Optional[str] = None,
        trainable_layers: int = -1,
    ):
        super().__init__()
        self.decoders, self.dims = build_part("decoder", size, checkpoint)
        if vocab_size != self.dims.n_vocab:
            raise ValueError(
                f"token list has {vocab_size} entries but Whisper {size!r} has {self.dims.n_vocab}"
            )
        if encoder_output_size != self.dims.n_text_state:
            raise ValueError(f"encoder width {encoder_output_size} != decoder width {self.dims.n_text_state}")
        freeze_but_last(self.decoders.blocks, self.decoders, trainable_layers)

    def forward(
        self, hs_pad: torch.Tensor, hlens: torch.Tensor, ys_in_pad: torch.Tensor, ys_in_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        n_ctx = self.dims.n_text_ctx
        if ys_in_pad.shape[1] > n_ctx:
            raise ValueError(f"token sequence of {ys_in_pad.shape[1]} exceeds Whisper's {n_ctx}")
        return self.decoders(ys_in_pad, hs_pad), ys_in_lens  # (B, L, V)

    def hidden(self, hs_pad: torch.Tensor, ys_in_pad: torch.Tensor) -> torch.Tensor:
        """Final-layer-norm hidden states (B, L, D), for fused linear + loss kernels."""
        dec = self.decoders
        x = dec.token_embedding(ys_in_pad) + dec.positional_embedding[: ys_in_pad.shape[-1]]
        x = x.to(hs_pad.dtype)
        for block in dec.blocks:
            x = block(x, hs_pad, mask=dec.mask)
        return dec.ln(x)
