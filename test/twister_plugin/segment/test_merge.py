"""Regions -> segments: splitting over-long speech, joining across pauses, padding, min_len."""
from __future__ import annotations

import numpy as np
import pytest

from twister_plugin.segment.merge import MergeConfig, MergeError, merge_regions, split_long
from twister_plugin.segment.merge import MergeStats
from twister_plugin.segment.vad import FRAME_S


def test_long_region_is_cut_at_the_least_speechy_frame():
    probs = np.full(int(70 / FRAME_S), 0.9, dtype=np.float32)  # 70 s of speech
    dip = int(20 / FRAME_S)
    probs[dip] = 0.1  # a breath at 20 s
    segs, stats = merge_regions([(0.0, 70.0)], MergeConfig(pad=0.0), 70.0, probs)
    assert all(e - s <= 30.0 for s, e in segs)
    assert segs[0][1] == pytest.approx(20.0, abs=FRAME_S)
    assert segs[0][0] == 0.0 and segs[-1][1] == 70.0 and stats.n_split >= 2
    assert all(e1 == s2 for (_, e1), (s2, _) in zip(segs, segs[1:]))  # nothing lost


def test_split_without_probabilities_stays_within_limit():
    pieces = split_long((5.0, 100.0), 29.0, None, MergeStats())
    assert all(e - s <= 29.0 for s, e in pieces) and pieces[0][0] == 5.0 and pieces[-1][1] == 100.0


def test_join_pad_and_min_len():
    regions = [(1.0, 3.0), (3.4, 5.0), (9.0, 9.1), (12.0, 14.0)]
    segs, stats = merge_regions(regions, MergeConfig(max_gap=0.5, pad=0.3, min_len=0.8), 14.1)
    assert segs == [(0.7, 5.3), (11.7, 14.1)]  # padding clipped at the end of the recording
    assert stats.n_short == 1 and stats.short_seconds == pytest.approx(0.7)


def test_padding_stops_mid_pause():
    segs, _ = merge_regions([(1.0, 2.0), (2.2, 3.0)], MergeConfig(max_gap=0.0, pad=0.5), 4.0)
    assert segs == [(0.5, 2.1), (2.1, 3.5)]


def test_joining_respects_max_len():
    regions = [(float(i), i + 0.8) for i in range(0, 60)]
    segs, _ = merge_regions(regions, MergeConfig(max_gap=1.0, pad=0.2, max_len=10.0), 61.0)
    assert len(segs) > 5 and all(e - s <= 10.0 for s, e in segs)


@pytest.mark.parametrize("kw", [dict(max_len=31), dict(max_len=0.5), dict(max_gap=-1),
                                dict(pad=8.0), dict(min_len=40)])
def test_bad_merge_config(kw):
    with pytest.raises(MergeError):
        MergeConfig(**kw)
