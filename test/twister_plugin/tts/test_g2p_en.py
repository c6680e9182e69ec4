import shutil

import pytest

from twister_plugin.tts.g2p_en import EnG2P, EnG2PConfig, EnG2PError, ipa_to_arpabet, load_cmudict
from twister_plugin.tts.symbols import SymbolTable


@pytest.fixture(scope="module")
def g2p():
    return EnG2P()


def test_cmudict_letters_and_article(g2p):
    apple, pay, g, a_art, big_a = g2p(["apple", "PAY", "G", "a", "A"])
    assert apple == ["AE1", "P", "AH0", "L"] and pay == ["P", "EY1"]
    assert g == ["JH", "IY1"] and a_art == ["AH0"] and big_a == ["EY1"]


def test_all_caps_oov_is_spelled(g2p):
    assert g2p(["TCUBEX"])[0] == g2p.spell("TCUBEX") == [
        p for c in "tcubex" for p in g2p.letters[c]]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_fallback_batched_and_cached(g2p):
    before = g2p.source_counts["espeak"]
    out = g2p(["xiaomi", "wechat", "xiaomi"])
    assert out[0] == out[2] and out[0][0] == "Z" and "CH" in out[1]
    assert g2p.source_counts["espeak"] == before + 2
    g2p(["wechat"])  # cached: no new espeak call
    assert g2p.source_counts["espeak"] == before + 2
    assert not SymbolTable.default().missing(p for w in out for p in w)


def test_without_espeak_oov_is_spelled():
    g2p = EnG2P(EnG2PConfig(use_espeak=False))
    assert g2p(["wechat"])[0] == g2p.spell("wechat")


def test_ipa_mapping_stress_and_unmapped():
    assert ipa_to_arpabet(["h", "ə", "l", "ˈoʊ"]) == ["HH", "AH0", "L", "OW1"]
    assert ipa_to_arpabet(["ˌaɪɚ"]) == ["AY2", "ER0"]
    assert ipa_to_arpabet(["q"]) is None


def test_refused_inputs(tmp_path):
    with pytest.raises(ValueError, match="not an English word"):
        EnG2P(EnG2PConfig(use_espeak=False))(["apple pie"])
    bad = tmp_path / "bad.dict"
    bad.write_text("apple AE1 P AH0 L\nlonely\n", encoding="utf-8")
    with pytest.raises(EnG2PError, match="line 2"):
        load_cmudict(str(bad))
