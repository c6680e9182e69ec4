import pytest

from twister_plugin.tts.text_norm import Chunk, ChunkBuilder, clean, spoken_text

BUILD = ChunkBuilder()


def spoken(text: str) -> str:
    return spoken_text(BUILD(clean(text)))


@pytest.mark.parametrize(
    "text, want",
    [
        ("2024年", "二零二四年"),
        ("涨了3.5%", "涨了百分之三点五"),
        ("第3名", "第三名"),
        ("设定29度", "设定二十九度"),
        ("给我2个", "给我两个"),
        ("2000人", "两千人"),
        ("电话13800138000", "电话一三八零零一三八零零零"),
        ("编号007", "编号零零七"),
        ("12:30开会", "十二点三十分开会"),
        ("-3度", "负三度"),
        ("3/4的人", "四分之三的人"),
        ("2020-2024年", "两千零二十至二零二四年"),
        ("你&我", "你和我"),
        ("A&B公司", "A and B公司"),
        ("价格¥20", "价格二十元"),
    ],
)
def test_numbers_and_symbols_in_mandarin_context(text, want):
    assert spoken(text) == want


@pytest.mark.parametrize(
    "text, want",
    [
        ("in 2024", "in twenty twenty four"),
        ("in 2005", "in two thousand five"),
        ("up 3.5%", "up three point five percent"),
        ("the 3rd place", "the third place"),
        ("rock & roll", "rock and roll"),
        ("1 + 1 = 2", "one plus one equals two"),
        ("apple.com", "apple dot com"),
        ("costs $5", "costs five dollars"),
        ("at 9:05", "at nine oh five"),
        ("1,234 cats", "one thousand two hundred thirty four cats"),
    ],
)
def test_numbers_and_symbols_in_english_context(text, want):
    assert spoken(text) == want


def test_number_language_follows_neighbours_in_code_switched_sentence():
    assert spoken("Windows 10系统") == "Windows十系统"
    assert spoken("我用iPhone 15 Pro") == "我用iPhone fifteen Pro"


def test_cleaning_fullwidth_traditional_accents():
    import opencc

    t2s = opencc.OpenCC("t2s").convert
    assert clean("ＡＢＣ１２３，電話", t2s) == "ABC123,电话"
    assert clean("café  Müller") == "cafe Muller"


def test_pauses_collapse_and_unknown_is_a_chunk():
    chunks = BUILD(clean("，你好！！……😀"))
    assert chunks == [Chunk("zh", "你好"), Chunk("pause", "!"), Chunk("unknown", "😀")]


def test_a_sentence_of_bare_numbers_is_read_in_the_language_asked():
    assert spoken_text(ChunkBuilder()("60%")) == "sixty percent"  # default: English
    assert spoken_text(ChunkBuilder(no_letters="zh")("60%")) == "百分之六十"
    assert spoken_text(ChunkBuilder(no_letters="zh")("60% off")) == "sixty percent off"  # a word decides
    with pytest.raises(ValueError, match="no_letters"):
        ChunkBuilder(no_letters="fr")
