"""The exported tokenizers (tokenizers' tokenizer.json, transformers' WhisperTokenizer) give the
same ids as openai-whisper's tiktoken tokenizer, and match the files shipped with the
CTranslate2 models of tools/get_whisper.sh.

Measured on the dev box: tokenizer.json == tiktoken on all 34,651 texts of shared/data
(zh_news_open.txt + every manifest), multilingual and English-only; the tokenizer.json shipped
with the base CTranslate2 package (made from Hugging Face's files, which lack the first merge,
"Ġ t") differs from tiktoken on 128 of them.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from twister_plugin.testing.whisper import random_whisper, tiny_dims
from twister_plugin.whisper.export import export_whisper
from twister_plugin.whisper.tokenizer_files import tokenizer_json, vocabulary_txt
from twister_plugin.whisper.vocab import bytes_to_token, openai_tokenizer, whisper_vocab

ROOT = Path(__file__).resolve().parents[3]
WEIGHTS = Path(os.environ.get("TWISTER_WHISPER_DIR", ROOT / "tools" / "whisper"))
DATA = ROOT / ".." / "shared" / "data"
SENTENCES = [
    "苹果表配apple pay，我们today去McDonald's吃饭。",
    "  Hello, world! It's 3.14 -- isn't it?\n\tTabs and  two  spaces ",
    "设定二十九度 OK吗？Let's go 🚀 naïve café",
    " t tt the",
]
VOCABS = {"base": 51865, "tiny.en": 51864}


def _texts(n_news: int | None = None) -> list[str]:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} absent")
    news = DATA / "text" / "zh_news_open.txt"
    texts = news.read_text(encoding="utf-8").splitlines()[:n_news] if news.is_file() else []
    for manifest in sorted(DATA.glob("*/*/manifest.tsv")):
        with open(manifest, encoding="utf-8", newline="") as f:
            texts += [row["text"] for row in csv.DictReader(f, delimiter="\t")]
    return texts + SENTENCES


@pytest.mark.parametrize("n_vocab", [51865, 51864])
def test_merges_rebuild_the_bpe_history(n_vocab):
    v = whisper_vocab(n_vocab)
    enc = openai_tokenizer(n_vocab).encoding
    multi_byte = [i for i in range(v.n_bpe) if len(enc.decode_single_token_bytes(i)) >= 2]
    assert len(v.merges) == len(multi_byte) == 50000  # every multi-byte token has its merge
    ids = [v.tokens.index(a + b) for a, b in v.merges[:2000]]
    assert ids == sorted(ids)  # merges come in the order their tokens were learnt
    for a, b in v.merges[:2000]:
        assert v.tokens.index(a) < v.tokens.index(a + b) > v.tokens.index(b)
    assert bytes_to_token(" the".encode()) == "Ġthe" and bytes_to_token(b"\n") == "Ċ"


@pytest.mark.parametrize("n_vocab", [51865, 51864])
def test_tokenizer_json_equals_tiktoken(n_vocab):
    tokenizers = pytest.importorskip("tokenizers")
    ours = tokenizers.Tokenizer.from_str(json.dumps(tokenizer_json(whisper_vocab(n_vocab))))
    ref = openai_tokenizer(n_vocab).encoding
    texts = _texts()
    got = ours.encode_batch(texts, add_special_tokens=False)
    differ = [t for t, e in zip(texts, got) if e.ids != ref.encode(t)]
    print(f"{n_vocab}: {len(texts) - len(differ)}/{len(texts)} texts tokenised as tiktoken does")
    assert not differ, differ[:3]
    for text in SENTENCES:
        assert ours.decode(ref.encode(text)) == text
    eot = ref.eot_token
    assert ours.token_to_id("<|endoftext|>") == eot and ours.token_to_id("<|30.00|>") == n_vocab - 1
    no_ts = ref.encode_single_token("<|notimestamps|>")
    template = [eot + 1, no_ts, *ref.encode("hi"), eot]  # sot, notimestamps, text, eot
    assert ours.encode("hi", add_special_tokens=True).ids == template


@pytest.mark.parametrize("name", ["base", "tiny.en"])
def test_matches_the_shipped_ctranslate2_files(name):
    folder = WEIGHTS / "ct2" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} absent: run bash tools/get_whisper.sh {name}")
    v = whisper_vocab(VOCABS[name])
    shipped_vocab = (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    ours = vocabulary_txt(v).split("\n")
    differ = [(i, a, b) for i, (a, b) in enumerate(zip(shipped_vocab, ours)) if a != b]
    # Hugging Face's English-only tokenizer still names Hebrew by its old code (unused by .en)
    assert differ == ([] if v.multilingual else [(50278, "<|iw|>", "<|he|>")])
    assert len(shipped_vocab) == v.n_vocab + 1
    config = json.loads((folder / "config.json").read_text())
    assert v.suppress_tokens == config["suppress_ids"]
    assert v.begin_suppress_tokens == config["suppress_ids_begin"]
    if v.multilingual:
        assert sorted(v.language_ids.values()) == config["lang_ids"]
    shipped = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    merges = [f"{a} {b}" for a, b in v.merges]
    assert shipped["vocab"] == {t: i for i, t in enumerate(v.tokens[: v.n_bpe + 1])}
    # the shipped multilingual tokenizer lacks the very first merge, "Ġ t"
    assert shipped["merges"] == (merges[1:] if v.multilingual else merges)


def test_transformers_tokenizer_and_processor(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = export_whisper(random_whisper(tiny_dims(n_layer=1)), tmp_path / "hf", "hf")
    processor = transformers.WhisperProcessor.from_pretrained(str(out))
    tok = processor.tokenizer
    ref = openai_tokenizer(51865)
    for text in SENTENCES:
        ids = tok.encode(text, add_special_tokens=False)
        assert ids == ref.encode(text), text
        assert tok.decode(ids) == ref.decode(ids) == text
    tok.set_prefix_tokens(language="zh", task="transcribe", predict_timestamps=False)
    ids = tok(SENTENCES[0]).input_ids
    assert ids[:4] == [ref.sot, ref.to_language_token("zh"), ref.transcribe, ref.no_timestamps]
    assert ids[4:-1] == ref.encode(SENTENCES[0]) and ids[-1] == ref.eot
    assert tok.decode(ids, skip_special_tokens=True) == SENTENCES[0]
    assert len(tok) == 51865 and tok.convert_ids_to_tokens(51864) == "<|30.00|>"
    features = processor.feature_extractor([0.0] * 16000, sampling_rate=16000,
                                           return_tensors="np").input_features
    assert features.shape == (1, 80, 3000)
