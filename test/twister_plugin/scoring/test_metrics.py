"""CER / WER / MER tokenisation and counts on hand-checkable examples and on real transcripts."""
from __future__ import annotations

from pathlib import Path

import pytest
import regex

from twister_plugin.data.manifest import read_manifest
from twister_plugin.scoring import get_metric, pick_metric, score

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
S0150 = SHARED / "zh" / "aishell_sample_S0150" / "manifest.tsv"
needs_shared = pytest.mark.skipif(not S0150.is_file(), reason="shared/data absent")


def counts(metric: str, ref: str, hyp: str) -> tuple[int, int, int, int]:
    """(n_ref, sub, del, ins) of one utterance."""
    (u,), _ = score({"u": ref}, {"u": hyp}, get_metric(metric))
    return u.n_ref, u.n_sub, u.n_del, u.n_ins


@pytest.mark.parametrize("text, tokens", [
    ("你好，世界！", list("你好世界")),
    ("這個電腦", list("这个电脑")),  # Traditional -> Simplified
    ("ＡＢＣ　１２３", list("abc123")),  # full-width -> half-width, ideographic space removed
    ("《红楼梦》、“水浒”…", list("红楼梦水浒")),
    ("Apple Pay", list("applepay")),
])
def test_cer_tokens(text, tokens):
    assert get_metric("cer").tokens(text) == tokens


def test_cer_counts():
    assert counts("cer", "這個", "这个") == (2, 0, 0, 0)
    assert counts("cer", "今天天气很好", "今天天很好啊") == (6, 0, 1, 1)
    assert counts("cer", "今天天气很好", "今天天汽很好") == (6, 1, 0, 0)
    assert counts("cer", "你好。", "你好！") == (2, 0, 0, 0)


def test_wer_uses_whisper_english_normaliser():
    assert counts("wer", "Mr. Smith's car", "mister smith's car") == (4, 0, 0, 0)
    assert counts("wer", "The colour is grey.", "the color is gray") == (4, 0, 0, 0)
    assert counts("wer", "hello world", "hello word") == (2, 1, 0, 0)
    assert counts("wer", "the cat sat", "the cat sat on") == (3, 0, 0, 1)
    assert counts("wer", "the cat sat", "cat sat") == (3, 0, 1, 0)


@pytest.mark.parametrize("text, tokens", [
    ("苹果表配apple pay", ["苹", "果", "表", "配", "apple", "pay"]),
    ("想听歌曲Let It Go", ["想", "听", "歌", "曲", "let", "it", "go"]),
    ("他身穿黑色T恤", ["他", "身", "穿", "黑", "色", "t", "恤"]),
    ("星巴克咖啡(虹桥西航二店)", list("星巴克咖啡虹桥西航二店")),
    ("2015年iPhone6發佈", ["2015", "年", "iphone6", "发", "布"]),
    ("I don't know，這個", ["i", "dont", "know", "这", "个"]),
])
def test_mer_tokens(text, tokens):
    assert get_metric("mer").tokens(text) == tokens


def test_mer_counts():
    assert counts("mer", "苹果表配apple pay", "苹果表配apple") == (6, 0, 1, 0)
    assert counts("mer", "苹果表配Apple Pay", "蘋果錶配apple pay") == (6, 0, 0, 0)  # t2s, case fold
    assert counts("mer", "想听歌曲Let It Go", "想听歌曲let it go") == (7, 0, 0, 0)
    assert counts("mer", "我用python写代码", "我用pyton写代码") == (6, 1, 0, 0)


@needs_shared
def test_mer_on_s0150_code_mixed_utterances():
    """Every S0150 transcript with Han and Latin: delete one Han char, substitute one English
    word -> exactly 1 deletion and 1 substitution each."""
    dd = read_manifest(S0150)
    mixed = {u: t for u, t in dd.text.items()
             if regex.search(r"\p{Han}", t) and regex.search(r"[A-Za-z]", t)}
    assert len(mixed) == 33
    hyps = {}
    for utt, ref in mixed.items():
        han = regex.search(r"\p{Han}", ref).start()
        hyp = ref[:han] + ref[han + 1:]
        hyps[utt] = regex.sub(r"[A-Za-z]+", "qqq", hyp, count=1)
    utts, summary = score(mixed, hyps, get_metric("mer"))
    assert all((u.n_sub, u.n_del, u.n_ins) == (1, 1, 0) for u in utts)
    assert (summary.n_sub, summary.n_del, summary.n_ins) == (33, 33, 0)
    by_id = {u.utt_id: u for u in utts}
    assert by_id["BAC009S0150W0277"].n_ref == 6  # 苹 果 表 配 apple pay
    assert by_id["BAC009S0150W0279"].n_ref == 19  # 新款的三星表将标配 (9) + S A M S U N G P A Y
    assert summary.n_ref_tokens == sum(len(get_metric("mer").tokens(t)) for t in mixed.values())
    assert summary.rate == pytest.approx(100 * 66 / summary.n_ref_tokens, abs=1e-4)


def test_pick_metric():
    assert pick_metric(["设定二十九度"], ["zh"]) == "cer"
    assert pick_metric(["hello world"], ["en"]) == "wer"
    assert pick_metric(["设定二十九度", "苹果表配apple pay"], ["zh", "zh"]) == "mer"
    assert pick_metric(["二零一五年", "2015 was good"], ["zh", "en"]) == "mer"
    assert pick_metric(["打开 2015"], []) == "cer"  # digits are not Latin words
    assert pick_metric(["yes"], ["zh-CN"]) == "cer"


@needs_shared
@pytest.mark.parametrize("rel, metric", [
    ("zh/aishell_sample_S0150", "mer"), ("zh/aishell1_dev_S0724", "cer"),
    ("en/librispeech", "wer"), ("en/ljspeech", "wer"),
])
def test_auto_metric_on_real_sets(rel, metric):
    dd = read_manifest(SHARED / rel / "manifest.tsv")
    assert pick_metric(dd.text.values(), dd.utt2lang.values()) == metric


@pytest.mark.parametrize("text, tokens", [
    ("环比六月", ["huan2", "bi3", "liu4", "yue4"]),
    ("環比6月", ["huan2", "bi3", "liu4", "yue4"]),  # Traditional, digits read as the TTS reads them
    ("下降6.5%", ["xia4", "jiang4", "bai3", "fen1", "zhi1", "liu4", "dian3", "wu3"]),
    ("我们用 Python 写", ["wo3", "men5", "yong4", "python", "xie3"]),  # neutral tone 5, words kept
])
def test_ser_tokens(text, tokens):
    assert get_metric("ser").tokens(text) == tokens


def test_ser_counts_homophones_as_equal_but_not_other_tones():
    assert counts("cer", "期中考试", "期终考试") == (4, 1, 0, 0)
    assert counts("ser", "期中考试", "期终考试") == (4, 0, 0, 0)  # zhong1 = zhong1
    assert counts("ser", "买东西", "卖东西") == (3, 1, 0, 0)  # mai3 != mai4
    assert counts("ser", "三千元", "3000元") == (3, 0, 0, 0)


@needs_shared
def test_ser_not_above_cer_on_real_transcripts():
    """A syllable per Han character: on the S0150 transcripts against themselves with every
    character replaced by a homophone, SER stays 0 while CER counts every replacement."""
    from pypinyin import Style, lazy_pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    by_sound: dict[str, str] = {}
    for code, readings in pinyin_dict.items():  # monophonic characters only, first one wins
        c = chr(code)
        if "," not in readings and regex.fullmatch(r"\p{Han}", c) and 0x4E00 <= code <= 0x9FFF:
            by_sound.setdefault(lazy_pinyin(c, style=Style.TONE3, neutral_tone_with_five=True)[0], c)
    dd = read_manifest(S0150)
    refs = {u: dd.text[u] for u in dd.utt_ids[:40]}
    hyps, swapped = {}, 0
    for u, t in refs.items():
        out = []
        for c, p in zip(t, lazy_pinyin(t, style=Style.TONE3, neutral_tone_with_five=True)):
            h = by_sound.get(p, c) if pinyin_dict.get(ord(c), ",").count(",") == 0 else c
            swapped += h != c
            out.append(h)
        hyps[u] = "".join(out)
    _, cer = score(refs, hyps, get_metric("cer"))
    _, ser = score(refs, hyps, get_metric("ser"))
    assert swapped > 100 and cer.rate > 20
    assert ser.rate < 0.2 * cer.rate, (ser.rate, cer.rate)


def test_mer_spoken_ignores_how_numbers_are_written():
    assert counts("cer", "设定二十九度", "設定29度") == (6, 2, 1, 0)
    assert counts("mer_spoken", "设定二十九度", "設定29度") == (6, 0, 0, 0)
    assert counts("mer_spoken", "一三七零二六六二零九七", "13702662097") == (11, 0, 0, 0)  # digits alone: Mandarin
    assert counts("mer_spoken", "百分之六十", "60%") == (5, 0, 0, 0)
    assert counts("mer_spoken", "设定二十九度", "设定三十度") == (6, 1, 1, 0)  # a wrong number still counts
