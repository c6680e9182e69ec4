"""Shallow fusion: weight 0 reproduces plain search; an in-domain LM fixes a homophone.

The in-domain LM here is :class:`twister_plugin.testing.lm.BigramLM` (bigram counts over the
first 5000 lines of the news corpus, ESPnet's ``batch_score`` interface, as every ESPnet LM):
seconds to build, deterministic, in place of a trained LM for this test.
"""
from __future__ import annotations

import pytest

from twister_plugin.decode import BatchedDecoder, DecoderConfig
from twister_plugin.decode.beam import BeamSearch
from twister_plugin.decode.search import Greedy
from twister_plugin.lm.fusion import ShallowFusion
from twister_plugin.testing.data import shared_data
from twister_plugin.data import load_audio
from twister_plugin.testing.decode import base_checkpoint, ending_model, load_base, tones
from twister_plugin.testing.lm import BigramLM

needs_data = pytest.mark.skipif(shared_data() is None, reason="needs shared/data")
needs_base = pytest.mark.skipif(base_checkpoint() is None or shared_data() is None,
                                reason="needs tools/whisper/base.pt and shared/data")


@pytest.fixture(scope="module")
def lm():
    return BigramLM(shared_data() / "text" / "zh_news_open.txt", max_lines=5000)


def _decode(model, waves, search: str, fusion=None):
    dec = BatchedDecoder(model, DecoderConfig(search=search, beam_size=3, max_new_tokens=40))
    if fusion is not None:
        eot = dec.tokenizer.eot
        dec.new_search = lambda: (BeamSearch(3, eot, fusion=fusion) if search == "beam"
                                  else Greedy(eot, fusion))
    return dec.decode_batch(waves, ["zh"] * len(waves))


@needs_data
@pytest.mark.parametrize("search", ["beam", "greedy"])
def test_weight_zero_equals_plain_on_tiny_model(lm, search):
    model, waves = ending_model(), tones(4, seed=1)
    plain = _decode(model, waves, search)
    zero = _decode(model, waves, search, ShallowFusion(lm, 50257, weight=0.0))
    assert [r.tokens for r in zero] == [r.tokens for r in plain]
    assert [r.avg_logprob for r in zero] == pytest.approx([r.avg_logprob for r in plain], abs=1e-5)
    assert len({len(r.tokens) for r in plain}) > 1  # audios finished at different steps
    strong = _decode(model, waves, search, ShallowFusion(lm, 50257, weight=3.0))
    assert [r.tokens for r in strong] != [r.tokens for r in plain]


@needs_base
def test_fusion_on_real_clips(lm):
    model = load_base()
    root = shared_data() / "zh" / "aishell_sample_S0150" / "audio"
    waves = [load_audio(str(root / f"BAC009S0150W{n}.flac"), 16000) for n in ("0148", "0298")]
    plain = _decode(model, waves, "beam")
    zero = _decode(model, waves, "beam", ShallowFusion(lm, 50257, weight=0.0))
    assert [r.tokens for r in zero] == [r.tokens for r in plain]
    fused = _decode(model, waves, "beam", ShallowFusion(lm, 50257, weight=0.3))
    # truth 韩国当地媒体报道称: zero-shot writes the homophone 報導 (导), the news LM prefers 报道
    assert "導" in plain[1].text or "导" in plain[1].text, plain[1].text
    assert "报道" in fused[1].text, fused[1].text
    assert fused[1].avg_logprob < 0  # Whisper's own log-prob of the fused text (LM not added)
