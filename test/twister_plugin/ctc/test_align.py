"""Forced alignment on emissions built so the answer is known."""
from __future__ import annotations

import pytest

from twister_plugin.ctc.align import AlignmentError, align_ids, align_text
from twister_plugin.ctc.head import FRAME_SECONDS
from twister_plugin.ctc.units import CtcUnits, UnitsConfig, normalize_text, train_units
from twister_plugin.testing.ctc import spiky_emissions


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    path = tmp_path_factory.mktemp("u") / "u.model"
    return CtcUnits(train_units(["设定二十九度", "苹果表配apple pay", "你好世界"], path,
                                UnitsConfig(model_type="char", character_coverage=1.0)))


def _layout(n_units: int, first: int = 5, width: int = 3, gap: int = 2) -> list[tuple[int, int]]:
    return [(first + k * (width + gap), first + k * (width + gap) + width) for k in range(n_units)]


def test_units_chars_and_words_land_on_known_frames(units):
    text = "苹果表配Apple Pay"
    ids = units.encode(text)
    spans = _layout(len(ids))
    logp = spiky_emissions(ids, spans, spans[-1][1] + 6, units.n_classes)
    al = align_text(logp, text, units)
    assert [(u.start, u.end) for u in al.units] == [(s * FRAME_SECONDS, e * FRAME_SECONDS) for s, e in spans]
    assert "".join(c.label for c in al.chars) == normalize_text(text).replace(" ", "")
    assert [w.label for w in al.words] == ["苹", "果", "表", "配", "apple", "pay"]
    apple = al.words[4]
    pieces = units.pieces(ids)
    a_idx = pieces.index("a") if "a" in pieces else pieces.index("▁a")
    assert apple.start == pytest.approx(spans[a_idx][0] * FRAME_SECONDS)
    assert apple.end == pytest.approx(spans[a_idx + 4][1] * FRAME_SECONDS)  # a p p l e: repeats kept apart
    assert all(not s.unknown for s in al.units) and al.log_likelihood < 0


def test_too_many_units_for_the_frames(units):
    ids = units.encode("设定二十九度")
    logp = spiky_emissions(ids[:2], _layout(2, first=0, width=1, gap=0), 3, units.n_classes)
    with pytest.raises(AlignmentError, match="do not fit"):
        align_ids(logp, ids)


def test_unknown_characters(units):
    text = "设定龘度"
    ids = units.encode(text)
    spans = _layout(len(ids))
    logp = spiky_emissions(ids, spans, spans[-1][1] + 2, units.n_classes)
    al = align_text(logp, text, units)
    unk = [c for c in al.chars if c.unknown]
    assert [c.label for c in unk] == ["龘"]
    assert [u.label for u in al.units if u.unknown] == ["龘"]  # <unk> unit, labelled with its text
    with pytest.raises(AlignmentError, match="龘"):
        align_text(logp, text, units, on_unknown="error")


def test_empty_text_aligns_to_nothing(units):
    logp = spiky_emissions([], [], 10, units.n_classes)
    al = align_text(logp, "，", units)
    assert al.units == [] and al.words == []
