import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twister_plugin.testing.tts import S0150, code_switched, read_manifest
from twister_plugin.tts.frontend import Frontend, FrontendConfig, FrontendError
from twister_plugin.tts.symbols import UNK, SymbolTable, en_tokens, zh_tokens

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
TABLE = SymbolTable.default()
ZH, EN = set(zh_tokens()), set(en_tokens())


@pytest.fixture(scope="module")
def fe():
    return Frontend(FrontendConfig())


def test_s0150_code_switched_transcripts(fe):
    if not (DATA / S0150 / "manifest.tsv").exists():
        pytest.skip("shared data not available")
    rows = code_switched(read_manifest(DATA, S0150))
    assert len(rows) >= 30
    texts = [r["text"] for r in rows]
    out = fe.phonemize_batch(texts, where="manifest.tsv")
    assert fe.sentences_with_unknown == 0
    for text, phones in zip(texts, out, strict=True):
        assert phones and not TABLE.missing(phones), text
        has_han = any("\u4e00" <= c <= "\u9fff" for c in text)
        assert bool(ZH & set(phones)) == has_han, text
        assert EN & set(phones), text
    apple = out[texts.index("苹果表配apple pay")]
    assert apple == ["p", "ing2", "g", "uo3", "b", "iao3", "p", "ei4",
                     "AE1", "P", "AH0", "L", "P", "EY1"]


def test_numbers_are_read_per_language(fe):
    assert fe.phonemize("2024年") == fe.phonemize("二零二四年")
    assert fe.phonemize("涨了3.5%") == fe.phonemize("涨了百分之三点五")
    assert fe.phonemize("3.5%") == fe.phonemize("three point five percent")  # no Han: English
    assert fe.phonemize("第3名") == fe.phonemize("第三名")
    assert fe.phonemize("in 2024") == fe.phonemize("in twenty twenty four")
    assert fe.normalize("In 2024, prices rose 3.5%.") == (
        "In twenty twenty four, prices rose three point five percent.")


def test_traditional_characters_read_like_simplified(fe):
    assert fe.phonemize("我們的電話號碼") == fe.phonemize("我们的电话号码")
    assert not TABLE.missing(fe.phonemize("臺灣開發銀行"))


def test_unknown_characters_are_reported_never_silently_dropped(caplog):
    fe = Frontend(FrontendConfig(on_unknown="report"))
    with caplog.at_level(logging.WARNING):
        out = fe.phonemize_batch(["你好😀", "ok", "Привет"], where="corpus.txt")
    assert out[0] == fe.phonemize("你好") and out[2] == []
    assert fe.unknown["😀"] == 1 and sum(fe.unknown.values()) == 1 + 6
    assert fe.sentences_with_unknown == 2
    assert "corpus.txt: line 1" in caplog.text and "U+1F600" in caplog.text
    assert "corpus.txt: line 3" in caplog.text
    assert fe.stats()["unknown_chars"]["😀"] == 1


def test_unk_policy_keeps_a_placeholder():
    fe = Frontend(FrontendConfig(on_unknown="unk"))
    assert fe.phonemize("好😀好") == ["h", "ao3", UNK, "h", "ao3"]


def test_strict_mode_raises_naming_the_line():
    fe = Frontend(FrontendConfig(on_unknown="error"))
    with pytest.raises(FrontendError, match=r"corpus.txt: line 12: unknown character '😀'"):
        fe.phonemize_batch(["你好", "😀"], where="corpus.txt", first_line=11)


def test_bad_config_is_refused():
    with pytest.raises(FrontendError, match="unknown frontend option"):
        FrontendConfig.from_dict({"tones": False})
    with pytest.raises(FrontendError, match="on_unknown"):
        Frontend(FrontendConfig(on_unknown="ignore"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_fuzz_no_crash_other_than_frontend_error(text):
    fe = _STRICT
    try:
        phones = fe.phonemize(text)
    except FrontendError:
        return
    assert not TABLE.missing(phones)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("中文银行2024年3.5%,.!? abcXYZ'-&+@#/:¥$😀")),
               max_size=40))
def test_fuzz_code_switched_alphabet(text):
    phones = _REPORT.phonemize(text)
    assert not TABLE.missing(phones)


_STRICT = Frontend(FrontendConfig(on_unknown="error", use_espeak=False))
_REPORT = Frontend(FrontendConfig(on_unknown="report"))
