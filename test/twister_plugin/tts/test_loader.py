"""Which configs the synthesis loader builds itself and which it leaves to ESPnet's task."""
from __future__ import annotations

import argparse

import pytest

from twister_plugin.tts.loader import direct_build_supported

BASE = dict(tts="twister_fastspeech", feats_extract="fbank", feats_extract_conf={}, normalize=None,
            normalize_conf={}, odim=None, token_list=["<blank>", "a", "<sos/eos>"], tts_conf={})


@pytest.mark.parametrize("change, reason", [
    ({}, None),
    ({"tts": "vits", "feats_extract": "linear_spectrogram"}, None),
    ({"normalize": "global_mvn"}, None),
    ({"tts": "fastspeech2"}, "tts 'fastspeech2'"),
    ({"odim": 80}, "odim 80"),
    ({"feats_extract": "linear_spectrogram_dio"}, "feats_extract"),
    ({"normalize": "utterance_mvn"}, "normalize 'utterance_mvn'"),
    ({"pitch_extract": "dio"}, "pitch_extract set"),
    ({"use_adapter": True}, "adapter set"),
    ({"token_list": "tokens.txt"}, "token_list"),
])
def test_supported_configs_and_the_reason_for_the_others(change, reason):
    why = direct_build_supported(argparse.Namespace(**{**BASE, **change}))
    assert why == reason if reason is None else reason in why
