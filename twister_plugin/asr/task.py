"""The plugin's ASR task: ESPnet's ASRTask with the Twister Whisper classes registered.

Registered names (use them in a training config):
  encoder: twister_whisper    decoder: twister_whisper    model: twister_whisper
  preprocessor: twister_whisper
Extra data key: ``lang`` (from ``utt2lang``) selects each utterance's Whisper prompt.
"""
from __future__ import annotations

from typing import Tuple

from espnet2.tasks import asr as _asr

from twister_plugin.asr.model import TwisterWhisperASRModel
from twister_plugin.asr.modules import TwisterWhisperDecoder, TwisterWhisperEncoder
from twister_plugin.asr.tokenizer import TwisterWhisperPreprocessor

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
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return tuple(super().optional_data_names(train, inference)) + ("lang",)
