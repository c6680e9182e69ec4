from pypinyin.pinyin_dict import pinyin_dict

from twister_plugin.tts.g2p_zh import ZhG2P, ZhG2PConfig
from twister_plugin.tts.symbols import SymbolTable

G2P = ZhG2P()


def flat(run):
    return [p for syl in G2P(run) for p in syl]


def test_initials_finals_tones_and_special_vowels():
    assert flat("资料") == ["z", "ii1", "l", "iao4"]
    assert flat("知道") == ["zh", "iii1", "d", "ao4"]
    assert flat("学习") == ["x", "ve2", "x", "i2"]
    assert flat("鱼") == ["v2"]  # zero initial, ü spelled v
    assert flat("他们的")[-1] == "e5"  # neutral tone is 5


def test_polyphones_use_phrase_context():
    assert flat("银行") == ["in2", "h", "ang2"]
    assert flat("行走") == ["x", "ing2", "z", "ou3"]


def test_tone_sandhi_switch():
    assert flat("你好")[1] == "i2"
    assert ZhG2P(ZhG2PConfig(tone_sandhi=False))("你好")[0] == ["n", "i3"]


def test_erhua():
    assert flat("一会儿")[-1] == "rr"
    assert G2P._syllable("h", "uar1") == ["h", "ua1", "rr"]
    assert ZhG2P(ZhG2PConfig(erhua=False))("一会儿")[-1] == ["er5"]


def test_character_without_reading_is_none():
    out = G2P("中\ue815文")
    assert out[0] == ["zh", "ong1"] and out[1] is None and out[2] == ["uen2"]


def test_every_dictionary_character_maps_into_the_table():
    table = SymbolTable.default()
    chars = "".join(chr(k) for k in pinyin_dict)
    out = G2P(chars)
    assert len(out) == len(chars)
    readable = [s for s in out if s is not None]
    assert len(readable) > 0.99 * len(chars)
    assert not table.missing(p for syl in readable for p in syl)


def test_one_pinyin_pass_splits_as_pypinyins_initial_and_final_styles():
    """One pypinyin pass per run, split per syllable, gives what pypinyin's INITIALS and
    FINALS_TONE3 styles give for the same run (polyphones, sandhi, neutral tones, erhua, ü, nasals)."""
    from pypinyin import Style, lazy_pinyin

    from twister_plugin.tts.g2p_zh import _split

    kw = dict(strict=True, neutral_tone_with_five=True, tone_sandhi=True)
    for run in ("银行行走一个不是", "花儿哪儿玩儿去", "儿子的女孩绿色", "嗯呣亚运你好", "资料知道学习鱼",
                "我们一起去看看吧", "不要不对一样一天"):
        marks = lazy_pinyin(run, style=Style.TONE, **kw)
        want = list(zip(lazy_pinyin(run, style=Style.INITIALS, **kw),
                        lazy_pinyin(run, style=Style.FINALS_TONE3, **kw), strict=True))
        assert [_split(m) for m in marks] == want, run
    assert _split("zi") == ("z", "i5")  # no tone mark: the neutral tone, 5
    assert _split("nǚ") == ("n", "v3") and _split("ń") == ("", "n2")
