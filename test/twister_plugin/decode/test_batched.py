"""Batched decoder vs openai-whisper's own decode, batched beam search, refused inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper

from twister_plugin.decode import (
    BatchedDecoder, DecoderConfig, LanguageError, length_sorted_batches, waves_to_mel,
)
from twister_plugin.testing.decode import (
    ending_model, tiny_model, tones, whisper_reference,
)

LANGS = ["zh", "en", "zh", None, "en", None]  # None: detected from the first decoder step
MAX_NEW = 60


@pytest.fixture(scope="module")
def model():
    return ending_model(0)


@pytest.fixture(scope="module")
def waves():
    return tones(6, seed=0)


def _config(**kw) -> DecoderConfig:
    # whisper.decode(without_timestamps=True) does not suppress timestamp tokens; match it
    return DecoderConfig(max_new_tokens=MAX_NEW, suppress_timestamps=False, **kw)


def test_batch_log_mel_equals_whisper_per_item():
    waves = tones(3, seed=1) + [np.zeros(16000, np.float32)]
    waves[1] = waves[1] * 0.01  # a quiet clip beside loud ones: the clamp is per utterance
    mel = waves_to_mel(waves, 80, "cpu")
    assert mel.shape == (4, 80, 3000)
    for i, w in enumerate(waves):
        ref = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(w)), 80)
        torch.testing.assert_close(mel[i], ref, rtol=0, atol=1e-6)


def test_greedy_equals_whisper_decode(model, waves):
    results = BatchedDecoder(model, _config()).decode_batch(waves, LANGS)
    for wave, lang, ours in zip(waves, LANGS, results):
        ref = whisper_reference(model, wave, lang, sample_len=MAX_NEW)
        assert ours.tokens == ref.tokens
        assert ours.text == ref.text
        assert ours.language == ref.language
        assert ours.avg_logprob == pytest.approx(ref.avg_logprob, abs=1e-5)
        assert ours.no_speech_prob == pytest.approx(ref.no_speech_prob, rel=1e-4, abs=1e-9)
        assert ours.compression_ratio == pytest.approx(ref.compression_ratio)


def test_sequences_finish_at_different_steps(model, waves):
    batched = BatchedDecoder(model, _config()).decode_batch(waves, LANGS)
    lengths = {len(r.tokens) for r in batched if r.finished}
    assert len(lengths) >= 3, f"want several finishing steps, got {lengths}"
    single = [BatchedDecoder(model, _config()).decode_batch([w], [lang])[0]
              for w, lang in zip(waves, LANGS)]
    assert [r.tokens for r in batched] == [r.tokens for r in single]


def test_max_length_stops_unfinished(model, waves):
    results = BatchedDecoder(model, DecoderConfig(max_new_tokens=5)).decode_batch(waves[:2])
    assert all(len(r.tokens) == 5 and not r.finished for r in results)


def test_beam_one_equals_greedy(model, waves):
    greedy = BatchedDecoder(model, _config()).decode_batch(waves, LANGS)
    beam1 = BatchedDecoder(model, _config(search="beam", beam_size=1)).decode_batch(waves, LANGS)
    assert [r.tokens for r in beam1] == [r.tokens for r in greedy]
    for a, b in zip(beam1, greedy):
        assert a.avg_logprob == pytest.approx(b.avg_logprob, abs=1e-6)


def test_batched_beam_equals_per_utterance_beam(model, waves):
    dec = BatchedDecoder(model, _config(search="beam", beam_size=3))
    batched = dec.decode_batch(waves[:4], LANGS[:4])  # batch 4, beam 3
    for wave, lang, ours in zip(waves[:4], LANGS[:4], batched):
        alone = dec.decode_batch([wave], [lang])[0]  # batch 1, beam 3
        assert ours.tokens == alone.tokens
        assert ours.avg_logprob == pytest.approx(alone.avg_logprob, abs=1e-5)
        # openai-whisper's beam search handles one audio at a time: compare there
        assert ours.tokens == whisper_reference(model, wave, lang, sample_len=MAX_NEW,
                                                beam_size=3).tokens


def test_beam_with_patience_and_length_penalty(model, waves):
    cfg = _config(search="beam", beam_size=2, patience=2.0, length_penalty=0.5)
    ours = BatchedDecoder(model, cfg).decode_batch(waves[:3], LANGS[:3])
    for wave, lang, r in zip(waves[:3], LANGS[:3], ours):
        ref = whisper_reference(model, wave, lang, sample_len=MAX_NEW, beam_size=2,
                                patience=2.0, length_penalty=0.5)
        assert r.tokens == ref.tokens


def test_decode_all_keeps_input_order(model, waves):
    dec = BatchedDecoder(model, _config())
    all_at_once = dec.decode_all(waves, LANGS, batch_size=4)
    one_by_one = [dec.decode_batch([w], [lang])[0] for w, lang in zip(waves, LANGS)]
    assert [r.tokens for r in all_at_once] == [r.tokens for r in one_by_one]


def test_length_sorted_batches():
    batches = length_sorted_batches([5, 1, 9, 3, 7], 2)
    assert batches == [[2, 4], [0, 3], [1]]
    with pytest.raises(ValueError, match="batch_size"):
        length_sorted_batches([1], 0)


def test_detect_among_restricts_languages(model, waves):
    results = BatchedDecoder(model, _config(detect_among=("zh", "en"))).decode_batch(waves)
    assert {r.language for r in results} <= {"zh", "en"}
    for r in results:  # detected_language is over every language; language_prob is of the prompt's
        assert 0.0 < r.language_prob <= 1.0


def test_english_only_model_has_no_language_token(waves):
    model = tiny_model(1, n_vocab=51864)
    assert not model.is_multilingual
    ours = BatchedDecoder(model, DecoderConfig(max_new_tokens=8, suppress_timestamps=False))
    results = ours.decode_batch(waves[:2])
    for wave, r in zip(waves[:2], results):
        assert r.language == "en" and r.language_prob == 1.0
        assert r.tokens == whisper_reference(model, wave, "en", sample_len=8).tokens
    with pytest.raises(LanguageError, match="'zh'"):
        ours.decode_batch(waves[:1], ["zh"])


def test_suppress_timestamps(model, waves):
    results = BatchedDecoder(model, DecoderConfig(max_new_tokens=MAX_NEW)).decode_batch(waves)
    tok = whisper.tokenizer.get_tokenizer(True, num_languages=model.num_languages)
    assert all(t < tok.timestamp_begin for r in results for t in r.tokens)


def test_bfloat16_runs(model, waves):
    results = BatchedDecoder(model, _config(dtype="bfloat16")).decode_batch(waves[:2], ["zh", "en"])
    assert all(r.tokens and np.isfinite(r.avg_logprob) for r in results)


def test_refused_inputs(model, waves):
    with pytest.raises(ValueError, match="search"):
        DecoderConfig(search="sampling")
    with pytest.raises(ValueError, match="dtype"):
        DecoderConfig(dtype="int4")
    with pytest.raises(ValueError, match="max_new_tokens"):
        DecoderConfig(max_new_tokens=0)
    with pytest.raises(ValueError, match="patience"):
        DecoderConfig(search="beam", patience=0.5)
    with pytest.raises(ValueError, match="length_penalty"):
        DecoderConfig(search="beam", length_penalty=2.0)
    with pytest.raises(ValueError, match="suppress_tokens"):
        BatchedDecoder(model, DecoderConfig(suppress_tokens="-1,x"))
    dec = BatchedDecoder(model, _config())
    with pytest.raises(LanguageError, match="'xx'"):
        dec.decode_batch(waves[:1], ["xx"])
    with pytest.raises(LanguageError, match="'xx'"):
        BatchedDecoder(model, DecoderConfig(detect_among=("zh", "xx")))
    with pytest.raises(ValueError, match="2 languages for 1"):
        dec.decode_batch(waves[:1], ["zh", "en"])
    with pytest.raises(ValueError, match="mono"):
        dec.decode_batch([np.zeros((2, 16000), np.float32)])


def test_token_caps_bound_outputs_and_leave_short_ones_unchanged(model, waves):
    """A per-item cap (the round trip's bound on looping outputs): outputs within their cap are
    exactly the uncapped ones; longer ones stop at the cap, marked unfinished; bad caps refused."""
    dec = BatchedDecoder(model, _config(search="greedy"))
    langs = ["zh"] * len(waves)
    free = dec.decode_all(waves, langs, batch_size=3)
    lengths = [len(r.tokens) for r in free]
    assert len(set(lengths)) > 1  # the model ends at different steps for different audio
    caps = [max(1, n - 2) if i % 2 else n + 5 for i, n in enumerate(lengths)]
    capped = dec.decode_all(waves, langs, batch_size=1, max_new_tokens=caps)  # each its own cap
    for i, (f, c) in enumerate(zip(free, capped)):
        if i % 2 == 0:  # cap above its length: the same result
            assert c.tokens == f.tokens and c.finished == f.finished
        else:  # stopped at its cap: a prefix of the free decode, marked unfinished
            assert len(c.tokens) == caps[i] < len(f.tokens) or len(f.tokens) <= 1
            assert c.tokens == f.tokens[: len(c.tokens)] and not c.finished
    roomy = dec.decode_all(waves, langs, batch_size=3, max_new_tokens=[n + 1 for n in lengths])
    assert [r.tokens for r in roomy] == [r.tokens for r in free]  # batches sorted by cap: same
    one = dec.decode_batch(waves[:2], langs[:2], max_new_tokens=1)
    assert all(len(r.tokens) <= 1 for r in one)
    with pytest.raises(ValueError, match="max_new_tokens"):
        dec.decode_batch(waves[:1], langs[:1], max_new_tokens=0)
    with pytest.raises(ValueError, match="token caps"):
        dec.decode_all(waves, langs, max_new_tokens=[5])
