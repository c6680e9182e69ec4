"""The plugin's ASR task: ESPnet's ASRTask with the Twister Whisper classes registered.

Registered names (use them in a training config):
  encoder: twister_whisper    decoder: twister_whisper    model: twister_whisper
  preprocessor: twister_whisper
Extra data key: ``lang`` (from ``utt2lang``) selects each utterance's Whisper prompt.
Hybrid CTC: ``model_conf: {ctc_weight: 0.3, ctc_bpemodel: exp/ctc/units.model}``; the task hands
``ctc_bpemodel`` to the preprocessor, which adds the ``text_ctc`` batch key.
"""
from __future__ import annotations

import argparse
import logging
from typing import Tuple

from espnet2.tasks import asr as _asr

from twister_plugin.asr.model import TwisterWhisperASRModel
from twister_plugin.asr.modules import TwisterWhisperDecoder, TwisterWhisperEncoder
from twister_plugin.asr.tokenizer import TwisterWhisperPreprocessor
from twister_plugin.utils.attention import avoid_cudnn_attention

_REGISTRY = {
    _asr.encoder_choices: TwisterWhisperEncoder,
    _asr.decoder_choices: TwisterWhisperDecoder,
    _asr.model_choices: TwisterWhisperASRModel,
    _asr.preprocessor_choices: TwisterWhisperPreprocessor,
}
for _choices, _cls in _REGISTRY.items():
    _choices.classes.setdefault("twister_whisper", _cls)

class TwisterASRTask(_asr.ASRTask):
    """ASRTask plus the ``lang`` data key; everything else is ESPnet's trainer."""

    @classmethod
    def build_model(cls, args: argparse.Namespace):
        # ESPnet's ASR default normalize (utterance_mvn) would treat raw audio as features:
        # wrong values and O(samples^2) memory. Whisper normalises its own log-mel.
        if getattr(args, "encoder", None) == "twister_whisper" and getattr(args, "normalize", None):
            logging.getLogger(__name__).warning("normalize=%s ignored: Whisper encoders take raw audio", args.normalize)
            args.normalize, args.normalize_conf = None, {}
        avoid_cudnn_attention()  # Whisper's token lengths change every batch (utils/attention.py)
        return super().build_model(args)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool):
        bpemodel = (getattr(args, "model_conf", None) or {}).get("ctc_bpemodel")
        hybrid = (getattr(args, "model_conf", {}) or {}).get("ctc_weight", 0.0) > 0
        if bpemodel and hybrid and getattr(args, "preprocessor", None) == "twister_whisper":
            args.preprocessor_conf = {"ctc_bpemodel": bpemodel, **(args.preprocessor_conf or {})}
        return super().build_preprocess_fn(args, train)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return tuple(super().optional_data_names(train, inference)) + ("lang",)
