"""ESPnet ASR model for Whisper: prompt-aware attention loss, LoRA option, fused-loss switch.

Targets (B batch, L tokens, V vocabulary): the preprocessor gives ``text`` (B, L) =
prompt ids (language, task, notimestamps) + transcript ids, padded with -1. The decoder input is
``<|startoftranscript|>`` + text, the output is text + ``<|endoftext|>``; prompt positions are not
scored unless ``prompt_loss`` (then the language token is learnt too).

Hybrid CTC/attention (``ctc_weight`` w > 0 in model_conf, with ``ctc_bpemodel``): a CTC head
(:class:`twister_plugin.ctc.head.CtcHead`) over the encoder output predicts sentencepiece units;
loss = (1 - w) * attention + w * CTC. Its targets come from the preprocessor as the extra batch
key ``text_ctc`` (B, U) padded with -1 (+ ``text_ctc_lengths``, added by ESPnet's collate); CTC
uses each utterance's own frames, ceil(samples / 320). w = 0 (default) is exactly the
attention-only model: no head, ``text_ctc`` ignored.
"""
from __future__ import annotations

import logging
from typing import Sequence

import torch

from espnet2.asr.espnet_model import ESPnetASRModel
from espnet.nets.pytorch_backend.nets_utils import th_accuracy
from espnet.nets.pytorch_backend.transformer.add_sos_eos import add_sos_eos

from twister_plugin.asr.lora import add_lora

logger = logging.getLogger(__name__)

class TwisterWhisperASRModel(ESPnetASRModel):
    def __init__(
        self,
        *args,
        prompt_loss: bool = False,
        lora_rank: int = 0,
        lora_alpha: float = 16.0,
        lora_dropout: float = 0.0,
        lora_targets: Sequence[str] = ("query", "value"),
        fused_loss: bool = False,
        ctc_bpemodel: str | None = None,
        ctc_hidden_layers: int = 0,
        **kwargs,
    ):
        kwargs.setdefault("sym_sos", "<|startoftranscript|>")
        kwargs.setdefault("sym_eos", "<|endoftext|>")
        kwargs.setdefault("ctc_weight", 0.0)
        kwargs.setdefault("report_cer", False)
        kwargs.setdefault("report_wer", False)
        super().__init__(*args, **kwargs)
        self.prompt_loss = prompt_loss
        self.fused_loss = fused_loss
        self.lsm_weight = kwargs.get("lsm_weight", 0.0)
        self._ctc_batch = None
        if self.ctc_weight > 0:
            self.ctc = _unit_ctc(ctc_bpemodel, self.encoder.output_size(), ctc_hidden_layers)
        if lora_rank > 0:
            n = add_lora(self, lora_rank, lora_alpha, lora_targets, lora_dropout)
            logger.info("LoRA rank %d on %d layers (%s); other weights frozen", lora_rank, n, list(lora_targets))

    def forward(self, speech, speech_lengths, text, text_lengths, **kwargs):
        text_ctc, text_ctc_lengths = kwargs.pop("text_ctc", None), kwargs.pop("text_ctc_lengths", None)
        self._ctc_batch = (text_ctc, text_ctc_lengths, speech_lengths)
        try:
            return super().forward(speech, speech_lengths, text, text_lengths, **kwargs)
        finally:
            self._ctc_batch = None

    def _calc_ctc_loss(self, encoder_out, encoder_out_lens, ys_pad, ys_pad_lens):
        from twister_plugin.ctc.head import n_frames

        text_ctc, text_ctc_lengths, speech_lengths = self._ctc_batch or (None, None, None)
        if text_ctc is None:
            raise ValueError("ctc_weight > 0 needs the batch key text_ctc: set ctc_bpemodel in "
                             "model_conf (the task passes it to the preprocessor)")
        frames = n_frames(speech_lengths).clamp(max=encoder_out.shape[1])  # (B,)
        return self.ctc(encoder_out, frames, text_ctc, text_ctc_lengths), None

    def _calc_att_loss(self, encoder_out, encoder_out_lens, ys_pad, ys_pad_lens):
        ys_in, ys_out = add_sos_eos(ys_pad, self.sos, self.eos, self.ignore_id)  # (B, L+1) each
        if not self.prompt_loss:
            ys_out = ys_out.masked_fill(ys_out >= self.sos, self.ignore_id)  # prompt specials
        ys_in_lens = ys_pad_lens + 1
        if self.fused_loss:
            return self._fused_att_loss(encoder_out, ys_in, ys_out)
        decoder_out, _ = self.decoder(encoder_out, encoder_out_lens, ys_in, ys_in_lens)  # (B, L+1, V)
        loss_att = self.criterion_att(decoder_out, ys_out)
        acc_att = th_accuracy(decoder_out.view(-1, self.vocab_size), ys_out, ignore_label=self.ignore_id)
        return loss_att, acc_att, None, None

    def _fused_att_loss(self, encoder_out, ys_in, ys_out):
        from twister_plugin.kernels import fused_linear_cross_entropy

        hidden = self.decoder.hidden(encoder_out, ys_in)  # (B, L+1, D)
        weight = self.decoder.decoders.token_embedding.weight  # (V, D), tied output projection
        loss_sum = fused_linear_cross_entropy(
            hidden.reshape(-1, hidden.shape[-1]), weight, ys_out.reshape(-1),
            ignore_index=self.ignore_id, label_smoothing=self.lsm_weight, reduction="sum",
        )
        # ESPnet's LabelSmoothingLoss divides the summed loss by the batch size.
        return loss_sum / ys_in.shape[0], None, None, None


class UnitCtc(torch.nn.Module):
    """ESPnet-style CTC module over sentencepiece units: summed loss / batch size."""

    def __init__(self, head) -> None:
        super().__init__()
        self.head = head

    def forward(self, hs_pad, hlens, ys_pad, ys_lens):
        from twister_plugin.ctc.head import ctc_loss

        logp = self.head(hs_pad)  # (B, F, V)
        return ctc_loss(logp, hlens, ys_pad, ys_lens, reduction="sum") / hs_pad.shape[0]

    def argmax(self, hs_pad):
        return self.head(hs_pad).argmax(-1)


def _unit_ctc(bpemodel: str | None, in_dim: int, hidden_layers: int) -> UnitCtc:
    from twister_plugin.ctc.head import CtcHead, HeadSizes
    from twister_plugin.ctc.units import CtcUnits

    if not bpemodel:
        raise ValueError("ctc_weight > 0 needs model_conf ctc_bpemodel (a twister_plugin.ctc.units model)")
    units = CtcUnits(bpemodel)
    return UnitCtc(CtcHead(HeadSizes(in_dim=in_dim, n_classes=units.n_classes, hidden_layers=hidden_layers)))
