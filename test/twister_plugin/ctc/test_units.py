"""Sentencepiece CTC units: normalisation, training, round trip on real S0150 text, unknowns."""
from __future__ import annotations

import re

import pytest
import sentencepiece as spm

from twister_plugin.ctc.units import (
    BLANK_ID, UNK_ID, CtcUnits, UnitsConfig, UnitsError, normalize_text, train_units,
)
from twister_plugin.testing.ctc import S0150, s0150_texts

pytestmark = pytest.mark.skipif(not S0150.exists(), reason="shared/data not present")


def test_normalize_text():
    assert normalize_text("苹果表配Apple Pay!") == "苹果表配 apple pay"
    assert normalize_text("百盛(天山店A楼)") == "百盛天山店 a 楼"
    assert normalize_text("  ，。 ") == ""


def test_round_trip_on_every_s0150_transcript(tmp_path):
    texts = list(s0150_texts().values())
    units = CtcUnits(train_units(texts, tmp_path / "u.model", UnitsConfig(vocab_size=500, character_coverage=1.0)))
    latin = [t for t in texts if re.search("[A-Za-z]", t)]
    assert len(latin) >= 30
    for t in texts:
        ids = units.encode(t, on_unknown="error")
        assert BLANK_ID not in ids and UNK_ID not in ids
        assert units.decode(ids) == normalize_text(t)
    assert units.pieces([0, 1]) == ["<blank>", "<unk>"]
    assert units.n_classes >= len({c for t in texts for c in normalize_text(t) if c != " "})


def test_unknown_characters_are_unk_or_an_error(tmp_path):
    units = CtcUnits(train_units(["设定二十九度", "设定三十度 apple"], tmp_path / "u.model"))
    ids = units.encode("设定龘度")
    assert UNK_ID in ids and units.unknown_chars("设定龘度") == ["龘"]
    with pytest.raises(UnitsError, match="龘"):
        units.encode("设定龘度", on_unknown="error")
    with pytest.raises(UnitsError, match="on_unknown"):
        units.encode("设定", on_unknown="drop")


def test_refused_inputs(tmp_path):
    with pytest.raises(UnitsError, match="no text"):
        train_units(["，。", ""], tmp_path / "x.model")
    with pytest.raises(FileNotFoundError):
        CtcUnits(tmp_path / "missing.model")
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["设定二十九度", "设定三十度"] * 5),
                                   model_prefix=str(tmp_path / "plain"), vocab_size=12,
                                   minloglevel=2)
    with pytest.raises(UnitsError, match="train it with train_units"):
        CtcUnits(tmp_path / "plain.model")
