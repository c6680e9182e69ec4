"""TwisterFastSpeech: a non-autoregressive log-mel TTS that learns its own alignment.

Built from ESPnet modules: a conformer/transformer text encoder, a (D,) speaker embedding
projected and added to the encoder output, JETS's ``AlignmentModule`` (text-to-frame
log-probabilities with a static beta-binomial prior added, as in "One TTS Alignment To Rule
Them All": the prior makes the alignment usable within a few hundred steps) trained by the
forward-sum loss, hard durations by monotonic alignment search (plus the binarisation loss
after ``bin_loss_start_steps``; ``align_loss: batched``: prior and forward-sum loss of
``twister_plugin.tts.align_loss``, batched on the model's device, ``espnet``: ESPnet's, per
utterance, prior via scipy on the host; same values; ``mas: torch``: the batched search of
``twister_plugin.tts.mas`` on the model's device, ``mas: numba``: ESPnet's ``viterbi_decode``,
per utterance on the CPU; identical durations), a ``DurationPredictor`` trained on those
durations (log domain), a hard ``LengthRegulator``, a conformer/transformer decoder,
Linear -> log-mel and a ``Postnet``.
No external aligner, no pitch/energy targets, no collect_stats pass: log-mels are normalised by
a fixed affine (``feats_mean``, ``feats_std``) and denormalised at inference.
With ``durations_prior`` > 0 the prior is instead a band around durations the batch brings
(``durations``: Whisper's own timing of each character, ``twister_plugin.tts.whisper_align``),
so the alignment is right from the first step; ``teacher_durations`` uses them as they are.

Shapes: B batch, T_text phone tokens, T_feats frames, A attention dim, M mel bins, D spembs dim.
Batch (from ESPnetTTSModel): text (B, T_text), text_lengths (B,), feats (B, T_feats, M) log-mel,
feats_lengths (B,), spembs (B, D), durations (B, T_text) when the config uses them; sids are
accepted and ignored (voices come from spembs).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from espnet.nets.pytorch_backend.conformer.encoder import Encoder as ConformerEncoder
from espnet.nets.pytorch_backend.fastspeech.duration_predictor import DurationPredictor
from espnet.nets.pytorch_backend.fastspeech.length_regulator import LengthRegulator
from espnet.nets.pytorch_backend.nets_utils import make_non_pad_mask, make_pad_mask
from espnet.nets.pytorch_backend.tacotron2.decoder import Postnet
from espnet.nets.pytorch_backend.transformer.encoder import Encoder as TransformerEncoder
from espnet2.gan_tts.jets.alignments import AlignmentModule, viterbi_decode
from espnet2.gan_tts.jets.loss import ForwardSumLoss
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.tts.abs_tts import AbsTTS

from twister_plugin.tts.align_loss import (BatchedForwardSumLoss, BatchedPriorAlignmentModule,
                                            span_prior, token_spans)
from twister_plugin.tts.mas import monotonic_alignment_search

# hard-alignment search: (log_p_attn (B, T_feats, T_text), text_lengths, feats_lengths) ->
# (durations (B, T_text), bin_loss ()); identical durations, different device/speed
ALIGNMENT_SEARCHES = {"torch": monotonic_alignment_search, "numba": viterbi_decode}
# soft alignment: (aligner class (beta-binomial prior), forward-sum loss class); same values
# and gradients, "batched" builds the prior on the device and runs one ctc_loss per batch
ALIGN_LOSSES = {"batched": (BatchedPriorAlignmentModule, BatchedForwardSumLoss),
                "espnet": (AlignmentModule, ForwardSumLoss)}


@dataclass(frozen=True)
class FastSpeechConfig:
    adim: int = 256  # attention / hidden size A
    aheads: int = 2  # attention heads
    elayers: int = 4  # encoder blocks
    eunits: int = 1024  # encoder feed-forward units
    dlayers: int = 4  # decoder blocks
    dunits: int = 1024  # decoder feed-forward units
    block_type: str = "conformer"  # "conformer" or "transformer" (encoder and decoder)
    conformer_kernel_size: int = 7  # conformer convolution module kernel
    positionwise_conv_kernel_size: int = 3  # feed-forward as 1-D convolutions of this kernel
    dropout_rate: float = 0.1  # encoder/decoder dropout
    duration_predictor_layers: int = 2  # duration predictor conv layers
    duration_predictor_chans: int = 256  # duration predictor channels
    duration_predictor_dropout_rate: float = 0.1  # duration predictor dropout
    postnet_layers: int = 5  # postnet conv layers (0: none)
    postnet_chans: int = 256  # postnet channels
    postnet_filts: int = 5  # postnet kernel size
    postnet_dropout_rate: float = 0.5  # postnet dropout
    feats_mean: float = -3.0  # fixed log10-mel normalisation: (x - mean) / std
    feats_std: float = 1.0  # (S0150: mean -3.03, std 0.83 over 40 utterances)
    use_mse: bool = False  # add an MSE term to the L1 mel loss
    lambda_align: float = 1.0  # forward-sum (alignment) loss weight
    lambda_bin: float = 1.0  # binarisation loss weight (after bin_loss_start_steps)
    lambda_dur: float = 1.0  # duration loss weight
    bin_loss_start_steps: int = 1000  # training steps before the binarisation loss is used
    mas: str = "numba"  # hard-alignment search: "numba" (ESPnet) or "torch" (batched, on device; same result)
    align_loss: str = "batched"  # prior + forward-sum loss: "batched" (on device), "espnet" (same)
    # Given durations (the dump's "durations": tts_prepare --durations whisper, Whisper's own
    # timing of each character/word): durations_prior > 0 replaces the beta-binomial prior by a
    # band around them (this many frames wide; needs align_loss batched), the alignment search
    # still picking the frames; teacher_durations uses them as the hard durations (no alignment
    # learned, no align/bin loss).
    durations_prior: float = 0.0
    teacher_durations: bool = False


def _blocks(c: FastSpeechConfig, idim: int, layers: int, units: int, input_layer):
    common = dict(idim=idim, attention_dim=c.adim, attention_heads=c.aheads, linear_units=units,
                  num_blocks=layers, input_layer=input_layer, dropout_rate=c.dropout_rate,
                  positional_dropout_rate=c.dropout_rate, attention_dropout_rate=c.dropout_rate,
                  positionwise_layer_type="conv1d",
                  positionwise_conv_kernel_size=c.positionwise_conv_kernel_size)
    if c.block_type == "transformer":
        return TransformerEncoder(**common)
    if c.block_type == "conformer":
        return ConformerEncoder(**common, macaron_style=True, pos_enc_layer_type="rel_pos",
                                selfattention_layer_type="rel_selfattn", activation_type="swish",
                                use_cnn_module=True, cnn_module_kernel=c.conformer_kernel_size)
    raise ValueError(f"TwisterFastSpeech: block_type {c.block_type!r}: want conformer or "
                     "transformer")


def uses_durations(tts_conf: Mapping[str, Any]) -> bool:
    """Whether a model of this ``tts_conf`` trains on the dump's durations (tts_train then passes
    them): ``durations_prior`` > 0 or ``teacher_durations``."""
    return float(tts_conf.get("durations_prior") or 0) > 0 or bool(tts_conf.get("teacher_durations"))


def fit_durations(durations: torch.Tensor, text_lengths: torch.Tensor,
                  feats_lengths: torch.Tensor) -> torch.Tensor:
    """Integer durations (B, N) rescaled to sum exactly to feats_lengths (B,) (a dump's durations
    may be off by a frame from ESPnet's fbank); zero beyond each item's text."""
    keep = ~make_pad_mask(text_lengths).to(text_lengths.device)  # (B, max N)
    _, ends = token_spans(durations, text_lengths, feats_lengths)
    ends = torch.round(ends).long().masked_fill(~keep, 0)
    ends = torch.maximum(ends, torch.cummax(ends, 1).values)  # monotone after rounding
    ds = torch.diff(ends, dim=1, prepend=ends.new_zeros(ends.size(0), 1)).clamp(min=0)
    return ds.masked_fill(~keep, 0)


def frames_of(log_d: torch.Tensor, alpha: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Predicted log(d + 1) -> whole frames per phone (scaled by ``alpha``), as synthesis speaks."""
    return torch.round(torch.clamp(log_d.exp() - 1.0, min=0.0) * alpha)


def duration_health(ds: torch.Tensor, log_d: torch.Tensor, keep: torch.Tensor,
                    feats_lengths: torch.Tensor) -> dict[str, float]:
    """Whether durations make speech, per batch (logged every epoch next to the losses): the share
    of phones the alignment gives no frame (``dur_zero``), the largest share of an utterance's
    frames on one phone (``dur_max_share``), the same two for the predictor's durations
    (``pred_zero``; synthesis speaks those), and predicted / true length (``pred_len_ratio``).
    A healthy model: few zero phones, max share well under 0.3, length ratio near 1. Session 3's
    unintelligible H200 model spoke 3-5 voiced blobs per 15-20-syllable sentence."""
    pred = frames_of(log_d).masked_fill(~keep, 0)
    frames = feats_lengths.to(ds.device).clamp(min=1).float()
    return dict(dur_zero=float((ds[keep] == 0).float().mean()),
                dur_max_share=float((ds.float().max(1).values / frames).mean()),
                pred_zero=float((pred[keep] == 0).float().mean()),
                pred_len_ratio=float((pred.sum(1) / frames).mean()))


class TwisterFastSpeech(AbsTTS):
    """Text + speaker embedding -> log-mel, with internally learned hard alignment."""

    def __init__(self, idim: int, odim: int, spk_embed_dim: int | None = None, **conf):
        super().__init__()
        c = self.conf = FastSpeechConfig(**conf)
        if c.mas not in ALIGNMENT_SEARCHES:
            raise ValueError(f"TwisterFastSpeech: mas {c.mas!r}: want one of "
                             f"{sorted(ALIGNMENT_SEARCHES)}")
        if c.align_loss not in ALIGN_LOSSES:
            raise ValueError(f"TwisterFastSpeech: align_loss {c.align_loss!r}: want one of "
                             f"{sorted(ALIGN_LOSSES)}")
        if c.durations_prior > 0 and c.align_loss != "batched":
            raise ValueError("TwisterFastSpeech: durations_prior needs align_loss: batched")
        aligner_cls, forward_sum_cls = ALIGN_LOSSES[c.align_loss]
        self.idim, self.odim, self.spk_embed_dim = idim, odim, spk_embed_dim
        self.uses_durations = uses_durations(asdict(c))
        embed = torch.nn.Embedding(idim, c.adim, padding_idx=0)
        self.encoder = _blocks(c, idim, c.elayers, c.eunits, embed)
        self.spk_proj = torch.nn.Linear(spk_embed_dim, c.adim) if spk_embed_dim else None
        self.aligner = aligner_cls(c.adim, odim)
        self.duration_predictor = DurationPredictor(
            idim=c.adim, n_layers=c.duration_predictor_layers, n_chans=c.duration_predictor_chans,
            dropout_rate=c.duration_predictor_dropout_rate)
        self.length_regulator = LengthRegulator()
        self.decoder = _blocks(c, 0, c.dlayers, c.dunits, None)
        self.feat_out = torch.nn.Linear(c.adim, odim)
        self.postnet = None if c.postnet_layers == 0 else Postnet(
            idim=odim, odim=odim, n_layers=c.postnet_layers, n_chans=c.postnet_chans,
            n_filts=c.postnet_filts, dropout_rate=c.postnet_dropout_rate)
        self.forward_sum = forward_sum_cls()
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # saved: resume-safe

    def extra_repr(self) -> str:
        return f"idim={self.idim}, odim={self.odim}, {asdict(self.conf)}"

    # --- shared pieces -----------------------------------------------------------------------
    def encode(self, text: torch.Tensor, text_lengths: torch.Tensor,
               spembs: torch.Tensor | None) -> torch.Tensor:
        """(B, T_text) ids -> (B, T_text, A) speaker-conditioned encodings."""
        masks = make_non_pad_mask(text_lengths).to(text.device).unsqueeze(-2)  # (B, 1, T_text)
        hs, _ = self.encoder(text, masks)
        if self.spk_proj is not None:
            if spembs is None:
                raise ValueError("TwisterFastSpeech: the model was built with spk_embed_dim="
                                 f"{self.spk_embed_dim} but no spembs were given")
            hs = hs + self.spk_proj(F.normalize(spembs, dim=-1)).unsqueeze(1)
        return hs

    def decode(self, hs: torch.Tensor, ds: torch.Tensor,
               frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Upsample (B, T_text, A) by durations ds (B, T_text) -> normalised mels (before, after)
        (B, T_feats, M) with T_feats = max(frames)."""
        up = self.length_regulator(hs, ds)  # (B, T_feats, A)
        masks = make_non_pad_mask(frames).to(hs.device).unsqueeze(-2)  # (B, 1, T_feats)
        zs, _ = self.decoder(up, masks)
        before = self.feat_out(zs)  # (B, T_feats, M)
        if self.postnet is None:
            return before, before
        return before, before + self.postnet(before.transpose(1, 2)).transpose(1, 2)

    # --- training ----------------------------------------------------------------------------
    def align(self, hs: torch.Tensor, ys: torch.Tensor, text_lengths: torch.Tensor,
              feats_lengths: torch.Tensor, durations: torch.Tensor | None = None):
        """Encodings (B, T_text, A) + normalised mels (B, T_feats, M) -> (durations (B, T_text)
        summing to feats_lengths, log_p_attn (B, T_feats, T_text) with the prior, bin_loss)."""
        if bool((feats_lengths < text_lengths).any()):
            raise ValueError("TwisterFastSpeech: an utterance has fewer frames than phones "
                             f"(frames {feats_lengths.tolist()}, phones {text_lengths.tolist()})")
        text_pad = make_pad_mask(text_lengths).to(hs.device)  # (B, T_text) True = padding
        if self.conf.durations_prior > 0:
            prior = span_prior(durations, text_lengths.to(hs.device),
                               feats_lengths.to(hs.device), self.conf.durations_prior)
            with self.aligner.given_prior(prior):
                log_p_attn = self.aligner(hs, ys, text_lengths, feats_lengths, text_pad)
        else:
            log_p_attn = self.aligner(hs, ys, text_lengths, feats_lengths, text_pad)
        ds, bin_loss = ALIGNMENT_SEARCHES[self.conf.mas](log_p_attn, text_lengths, feats_lengths)
        return ds.long(), log_p_attn, bin_loss

    def forward(self, text: torch.Tensor, text_lengths: torch.Tensor, feats: torch.Tensor,
                feats_lengths: torch.Tensor, spembs: torch.Tensor | None = None,
                durations: torch.Tensor | None = None, durations_lengths: torch.Tensor | None = None,
                **kwargs):
        c = self.conf
        text, feats = text[:, : int(text_lengths.max())], feats[:, : int(feats_lengths.max())]
        if self.uses_durations:
            durations = self._check_durations(durations, durations_lengths, text_lengths)
        ys = (feats - c.feats_mean) / c.feats_std  # (B, T_feats, M)
        hs = self.encode(text, text_lengths, spembs)
        if c.teacher_durations:
            ds = fit_durations(durations, text_lengths, feats_lengths.to(text.device))
            align_loss = bin_loss = hs.new_zeros(())
        else:
            ds, log_p_attn, bin_loss = self.align(hs, ys, text_lengths, feats_lengths, durations)
            align_loss = self.forward_sum(log_p_attn, text_lengths, feats_lengths)
        text_pad = make_pad_mask(text_lengths).to(text.device)  # (B, T_text)
        log_d = self.duration_predictor(hs, text_pad)  # (B, T_text), log(d + 1)
        keep = ~text_pad
        dur_loss = F.mse_loss(log_d[keep], torch.log(ds[keep].float() + 1.0))
        before, after = self.decode(hs, ds, feats_lengths)
        frame = make_non_pad_mask(feats_lengths).to(ys.device)  # (B, T_feats)
        mel_loss = sum(self._mel_loss(x[frame], ys[frame]) for x in (before, after))
        use_bin = float(int(self.steps) >= c.bin_loss_start_steps)
        loss = (mel_loss + c.lambda_dur * dur_loss + c.lambda_align * align_loss
                + use_bin * c.lambda_bin * bin_loss)
        if self.training:
            self.steps += 1
        # synth_loss: what synthesis depends on (no alignment/binarisation terms, which jump when
        # the binarisation loss starts); the configs pick their best epoch by it
        stats = dict(loss=loss.item(), mel_loss=mel_loss.item(), duration_loss=dur_loss.item(),
                     synth_loss=(mel_loss + dur_loss).item(),
                     align_loss=align_loss.item(), bin_loss=float(bin_loss.detach()),
                     **duration_health(ds, log_d.detach(), keep, feats_lengths))
        return force_gatherable((loss, stats, text.new_tensor(text.size(0))), loss.device)

    def _check_durations(self, durations: torch.Tensor | None, lengths: torch.Tensor | None,
                         text_lengths: torch.Tensor) -> torch.Tensor:
        if durations is None:
            raise ValueError("TwisterFastSpeech: durations_prior / teacher_durations need the "
                             "dump's durations (tts_prepare --durations whisper)")
        if lengths is not None and not torch.equal(lengths.cpu(), text_lengths.cpu()):
            raise ValueError("TwisterFastSpeech: durations and phones differ in number "
                             f"({lengths.tolist()} vs {text_lengths.tolist()}): a dump written "
                             "with another frontend?")
        return durations[:, : int(text_lengths.max())].to(text_lengths.device)

    def _mel_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.l1_loss(pred, target)
        return loss + F.mse_loss(pred, target) if self.conf.use_mse else loss

    # --- inference ---------------------------------------------------------------------------
    @torch.inference_mode()
    def infer_batch(self, text: torch.Tensor, text_lengths: torch.Tensor,
                    spembs: torch.Tensor | None = None, alpha: torch.Tensor | float = 1.0,
                    max_frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T_text) ids -> (log-mels (B, T_feats, M), frames (B,)), denormalised.

        alpha: scalar or (B,) duration scale (1 / speaking-rate factor). With ``max_frames``,
        longer sentences are decoded only up to it and ``frames`` keeps their full predicted
        length (so the caller can tell that they were cut).
        """
        hs = self.encode(text, text_lengths, spembs)
        text_pad = make_pad_mask(text_lengths).to(text.device)
        log_d = self.duration_predictor(hs, text_pad)  # (B, T_text)
        alpha = torch.as_tensor(alpha, dtype=log_d.dtype, device=log_d.device).reshape(-1, 1)
        ds = frames_of(log_d, alpha).long()
        ds = ds.masked_fill(text_pad, 0)
        ds[:, 0] += (ds.sum(1) == 0).long()  # at least one frame per sentence
        frames = ds.sum(1)  # (B,)
        if max_frames is not None:  # cut durations so that no sentence exceeds max_frames
            ends = torch.cumsum(ds, 1).clamp(max=max_frames)
            ds = torch.diff(ends, dim=1, prepend=ends.new_zeros(ends.size(0), 1))
        _, after = self.decode(hs, ds, ds.sum(1))
        mels = after * self.conf.feats_std + self.conf.feats_mean
        return mels, frames

    def inference(self, text: torch.Tensor, spembs: torch.Tensor | None = None,
                  alpha: float = 1.0, **kwargs) -> dict[str, torch.Tensor]:
        """One sentence (T_text,) -> {"feat_gen": (T_feats, M) log-mel} (ESPnet Text2Speech)."""
        mels, frames = self.infer_batch(text[None], text.new_tensor([text.size(0)]),
                                        None if spembs is None else spembs[None], alpha)
        return dict(feat_gen=mels[0, : int(frames[0])])
