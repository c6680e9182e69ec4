"""Label-free filters: each rule on its own, then real bad cases decoded by Whisper base."""
from __future__ import annotations

from dataclasses import replace

import pytest
from whisper.utils import compression_ratio

from twister_plugin.asr.filters import (
    FILTER_NAMES, FilterConfig, apply_filters, max_ngram_count, repeated_suffix, speech_rate,
    text_units,
)
from twister_plugin.decode import BatchedDecoder, DecodeResult, DecoderConfig
from twister_plugin.testing.data import shared_data
from twister_plugin.testing.decode import (
    base_checkpoint, load_base, noise_and_silence, real_clips,
)

CFG = FilterConfig()
CLEAN_ZH = "广州市房地产中介协会分析"  # a real AISHELL transcript, 4.281 s
CLEAN_CS = "苹果表配apple pay"  # code-switching, as in AISHELL S0150


def hyp(text: str = CLEAN_ZH, **kw) -> DecodeResult:
    fields = dict(text=text, tokens=[1] * max(len(text) // 2, 1), language="zh", language_prob=0.99,
                  detected_language="zh", avg_logprob=-0.2, no_speech_prob=0.05,
                  compression_ratio=compression_ratio(text), finished=True)
    fields.update(kw)
    return DecodeResult(**fields)


def test_clean_hypotheses_pass():
    assert apply_filters(hyp(), 4.281, CFG) == []
    assert apply_filters(hyp(CLEAN_CS), 1.8, CFG) == []
    en = "he was not an ill disposed young man"
    assert apply_filters(hyp(en, language="en", detected_language="en"), 2.99, CFG) == []


def test_text_units_and_rates():
    assert text_units(CLEAN_CS + "，10个!") == ["苹", "果", "表", "配", "apple", "pay", "10", "个"]
    assert speech_rate(CLEAN_CS, "zh", 2.0) == 3.0
    assert speech_rate("I am here.", "en", 2.0) == 3.5  # letters and digits per second
    assert speech_rate("bonjour", "fr", 2.0) is None


@pytest.mark.parametrize("kw, reason", [
    (dict(text=" ,。 "), "empty"),
    (dict(no_speech_prob=0.7, avg_logprob=-1.5), "no_speech"),
    (dict(no_speech_prob=0.95), "no_speech"),
    (dict(avg_logprob=-1.2), "avg_logprob"),
    (dict(finished=False), "unfinished"),
    (dict(detected_language="nn"), "language"),
    (dict(language="ja", detected_language="ja"), "language"),
    (dict(language_prob=0.01), "language_prob"),
])
def test_each_rule(kw, reason):
    assert reason in apply_filters(hyp(**kw), 4.281, CFG)


def test_no_speech_needs_low_logprob_below_the_hard_threshold():
    assert "no_speech" not in apply_filters(hyp(no_speech_prob=0.7, avg_logprob=-0.3), 4.3, CFG)


def test_rates_and_duration():
    assert apply_filters(hyp("好"), 10.0, CFG) == ["rate_low"]
    assert "rate_high" in apply_filters(hyp(CLEAN_ZH * 3), 2.0, CFG)
    en = dict(language="en", detected_language="en")
    assert "rate_low" in apply_filters(hyp("The", **en), 10.0, CFG)
    assert "rate_high" in apply_filters(hyp("supercalifragilistic " * 5, **en), 2.0, CFG)
    assert "too_long" in apply_filters(hyp(CLEAN_ZH * 10), 31.0, CFG)


def test_repetition_rules():
    loop = "mountains, rivers, " * 6 + "mountains, ri"
    assert max_ngram_count(text_units(loop), 4) == 5
    assert repeated_suffix(text_units(loop), 20) == (2, 13)  # the cut word "ri" is ignored
    reasons = apply_filters(hyp("The love is the " + loop, language="en"), 9.6, CFG)
    assert {"repeated_ngram", "repeated_suffix", "compression_ratio"} <= set(reasons)
    # a long period repeated 3 times at the end: only the suffix rule sees it
    tail = "我们今天去公园散步然后回家吃饭"
    reasons = apply_filters(hyp("他说" + tail * 3), 12.0, CFG)
    assert "repeated_suffix" in reasons and "repeated_ngram" not in reasons
    assert repeated_suffix(list("abcd"), 20) == (0, 0) and max_ngram_count([], 4) == 0


def test_thresholds_come_from_the_config():
    loose = replace(CFG, logprob_threshold=-5.0, reject_unfinished=False)
    assert apply_filters(hyp(avg_logprob=-1.2, finished=False), 4.3, loose) == []
    assert set(FILTER_NAMES) >= {"unfinished", "no_speech", "rate_low", "language"}


def test_refused_config():
    with pytest.raises(ValueError, match="unknown filter option.*'logprob'"):
        FilterConfig.from_dict({"logprob": -1.0})
    with pytest.raises(ValueError, match="ngram_size"):
        FilterConfig(ngram_size=0)
    assert FilterConfig.from_dict({"allowed_languages": ["zh"]}).allowed_languages == ("zh",)


# ------------------------------------------------------------------------- real bad cases
needs_base = pytest.mark.skipif(base_checkpoint() is None or shared_data() is None,
                                reason="needs tools/whisper/base.pt and shared/data")


@pytest.fixture(scope="module")
def decoded():
    """Whisper base, greedy, on real inputs (decoded once for the tests below)."""
    model = load_base()
    ns = noise_and_silence(5.0)
    good = real_clips("zh/aishell1_dev_S0724", 2)
    thchs = {u: w for u, w, _ in real_clips("zh/thchs30_D4", 5)}
    items = {"silence_zh": (ns["silence"], "zh"), "silence_auto": (ns["silence"], None),
             "noise_auto": (ns["noise"], None),
             # Mandarin forced to English: base loops "The Taiwan-China-China-China-..."
             "mandarin_as_en": (thchs["D4_754"], "en"),
             "good1": (good[0][1], "zh"), "good2": (good[1][1], "zh")}
    dec = BatchedDecoder(model, DecoderConfig(max_new_tokens=96, detect_among=("zh", "en")))
    results = dec.decode_batch([w for w, _ in items.values()], [lang for _, lang in items.values()])
    out = {name: (r, len(w) / 16000) for (name, (w, _)), r in zip(items.items(), results)}
    # a real 9.6-s clip with a one-token hypothesis (decoding stopped after the first token)
    one_token = BatchedDecoder(model, DecoderConfig(max_new_tokens=1))
    short = one_token.decode_batch([thchs["D4_750"]], ["zh"])
    out["one_word_for_10s"] = (short[0], len(thchs["D4_750"]) / 16000)
    return out


@needs_base
def test_real_speech_is_kept(decoded):
    for name in ("good1", "good2"):
        r, dur = decoded[name]
        assert apply_filters(r, dur, CFG) == [], (name, r)


@needs_base
def test_real_silence_and_noise_are_rejected(decoded):
    for name in ("silence_zh", "silence_auto", "noise_auto"):
        r, dur = decoded[name]
        assert r.no_speech_prob > 0.6, (name, r)
        assert "no_speech" in apply_filters(r, dur, CFG), (name, r)


@needs_base
def test_real_hallucination_loop_is_rejected(decoded):
    r, dur = decoded["mandarin_as_en"]
    assert max_ngram_count(text_units(r.text), 4) > 3, r.text  # a real loop, not a constructed one
    reasons = apply_filters(r, dur, CFG)
    assert {"repeated_ngram", "repeated_suffix", "compression_ratio", "unfinished",
            "language_prob"} <= set(reasons), (reasons, r.text)
    assert r.avg_logprob > CFG.logprob_threshold  # confident: the log-probability alone misses it


@needs_base
def test_real_long_clip_with_one_word_is_rejected(decoded):
    r, dur = decoded["one_word_for_10s"]
    assert dur > 9 and len(text_units(r.text)) <= 2
    assert "rate_low" in apply_filters(r, dur, replace(CFG, reject_unfinished=False))
