"""Batched decoder vs openai-whisper on real clips with Whisper base (skipped without it)."""
from __future__ import annotations

import pytest

from twister_plugin.decode import BatchedDecoder, DecoderConfig
from twister_plugin.testing.data import shared_data
from twister_plugin.testing.decode import base_checkpoint, load_base, real_clips, whisper_reference

pytestmark = [pytest.mark.slow,  # ~40 s on the 2-core CPU
              pytest.mark.skipif(base_checkpoint() is None or shared_data() is None,
                                 reason="needs tools/whisper/base.pt and shared/data")]


@pytest.fixture(scope="module")
def base():
    return load_base()


@pytest.fixture(scope="module")
def clips():
    clips = real_clips("zh/aishell1_dev_S0724", 3) + real_clips("en/librivox_pocketsphinx", 2,
                                                                   max_seconds=3.5)
    return [w for _, w, _ in clips], [lang for _, _, lang in clips]


@pytest.fixture(scope="module")
def greedy(base, clips):
    waves, langs = clips
    return BatchedDecoder(base, DecoderConfig(suppress_timestamps=False)).decode_batch(waves, langs)


def test_greedy_equals_whisper_on_real_clips(base, clips, greedy):
    waves, langs = clips
    for wave, lang, ours in zip(waves, langs, greedy):
        ref = whisper_reference(base, wave, lang)
        assert ours.tokens == ref.tokens, (ours.text, ref.text)
        assert ours.finished and ours.avg_logprob == pytest.approx(ref.avg_logprob, abs=1e-4)
        assert ours.no_speech_prob == pytest.approx(ref.no_speech_prob, abs=1e-5)
        assert ours.detected_language == lang and ours.language_prob > 0.5


def test_detected_language_decodes_like_forced(base, clips, greedy):
    waves, langs = clips
    dec = BatchedDecoder(base, DecoderConfig(suppress_timestamps=False))
    detected = dec.decode_batch(waves[2:4])  # no languages given: detected
    assert [r.language for r in detected] == langs[2:4] == ["zh", "en"]
    assert [r.tokens for r in detected] == [r.tokens for r in greedy[2:4]]


def test_batched_beam_equals_single_on_real_clips(base, clips):
    waves, langs = clips
    beam = BatchedDecoder(base, DecoderConfig(search="beam", beam_size=3))
    batched = beam.decode_batch(waves[2:4], langs[2:4])  # batch 2 (zh, en), beam 3
    for wave, lang, ours in zip(waves[2:4], langs[2:4], batched):
        assert ours.tokens == beam.decode_batch([wave], [lang])[0].tokens
