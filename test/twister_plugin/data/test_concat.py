"""Concatenation of real S0150 utterances into <= max_seconds windows."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from twister_plugin.data.audio import load_utt
from twister_plugin.data.concat import (
    ConcatError, ConcatOptions, concat_dir, join_text, plan_windows, read_concat_map,
    window_language, write_concat_map,
)
from twister_plugin.data.kaldi import DataDir, DataError
from twister_plugin.data.manifest import read_manifest
from twister_plugin.testing.data import shared_data

SR = 16000


@pytest.fixture(scope="module")
def s0150() -> DataDir:
    root = shared_data()
    if root is None or not (root / "zh" / "aishell_sample_S0150" / "manifest.tsv").is_file():
        pytest.skip("shared/data/zh/aishell_sample_S0150 not present")
    return read_manifest(root / "zh" / "aishell_sample_S0150" / "manifest.tsv")


@pytest.fixture(scope="module")
def small(s0150) -> DataDir:
    return s0150.subset(s0150.utt_ids[:16])


def _check_windows(dd: DataDir, out: DataDir, rows, opts: ConcatOptions) -> int:
    """Every window equals its sources + gaps sample-exactly; returns the number of windows."""
    by_window: dict[str, list] = {}
    for r in rows:
        by_window.setdefault(r.window, []).append(r)
    gap = np.zeros(int(round(opts.gap_seconds * SR)), np.float32)
    for wid, rs in by_window.items():
        rs.sort(key=lambda r: r.start)
        y, sr = sf.read(out.wav_scp[wid], dtype="float32")
        assert sr == SR and len(y) <= opts.max_seconds * SR
        parts = []
        for i, r in enumerate(rs):
            parts += ([gap] if i else []) + [load_utt(dd, r.source)]
            assert y[int(round(r.start * SR)): int(round(r.end * SR))].shape == parts[-1].shape
        np.testing.assert_array_equal(y, np.concatenate(parts))
        assert out.text[wid] == join_text(dd.text[r.source] for r in rs)
        assert out.utt2dur[wid] == pytest.approx(len(y) / SR)
    return len(by_window)


def test_windows_equal_sources_plus_gaps(small, tmp_path):
    opts = ConcatOptions(max_seconds=10.0, gap_seconds=0.25, share=1.0)
    out, rows, st = concat_dir(small, tmp_path / "audio", opts)
    assert st.windows == _check_windows(small, out, rows, opts) >= 3
    assert st.joined + st.single == len(small.utt_ids)
    assert {r.source for r in rows} | (set(out.utt_ids) & set(small.utt_ids)) == set(small.utt_ids)
    for u in set(out.utt_ids) & set(small.utt_ids):  # untouched utterances keep their audio
        assert out.wav_scp[u] == small.wav_scp[u]


def test_join_text_rules():
    assert join_text(["设定二十九度", "设定三十度"]) == "设定二十九度设定三十度"
    assert join_text(["hello world.", "The end"]) == "hello world. The end"
    assert join_text(["苹果表配apple", "pay"]) == "苹果表配apple pay"
    assert join_text(["想听歌曲Let It Go", "想听歌曲"]) == "想听歌曲Let It Go想听歌曲"
    assert join_text(["hello", "你好", "world"]) == "hello你好world"
    assert join_text([" a ", "", "b"]) == "a b"
    assert window_language(["zh", "en"]) == "zh" and window_language(["en", "en"]) == "en"


def test_code_switched_window(s0150, tmp_path):
    dd = s0150.subset(["BAC009S0150W0048", "BAC009S0150W0031"])  # "想听歌曲Let It Go", "I T(番愚路店)"
    out, rows, st = concat_dir(dd, tmp_path, ConcatOptions(share=1.0))
    assert st.windows == 1
    (wid,) = out.utt_ids
    order = [r.source for r in sorted(rows, key=lambda r: r.start)]
    want = {("BAC009S0150W0048", "BAC009S0150W0031"): "想听歌曲Let It Go I T(番愚路店)",
            ("BAC009S0150W0031", "BAC009S0150W0048"): "I T(番愚路店)想听歌曲Let It Go"}
    assert out.text[wid] == want[tuple(order)]
    _check_windows(dd, out, rows, ConcatOptions(share=1.0))


def test_plan_is_deterministic_and_respects_speakers(small):
    durs = dict(small.utt2dur)
    two = DataDir(small.wav_scp, {u: ("A" if i % 2 else "B") for i, u in enumerate(small.utt_ids)},
                  small.text, utt2dur=durs)
    opts = ConcatOptions(max_seconds=12.0, share=1.0, seed=3)
    plan = plan_windows(two, durs, opts)
    assert plan == plan_windows(two, durs, opts)
    assert plan != plan_windows(two, durs, ConcatOptions(max_seconds=12.0, share=1.0, seed=4))
    assert sorted(u for g in plan for u in g) == sorted(small.utt_ids)
    for g in plan:
        assert len({two.utt2spk[u] for u in g}) == 1
        assert sum(durs[u] for u in g) + 0.3 * (len(g) - 1) <= 12.0 + 1e-9
    mixed = plan_windows(two, durs, ConcatOptions(max_seconds=12.0, share=1.0, by_speaker=False))
    assert any(len({two.utt2spk[u] for u in g}) == 2 for g in mixed)
    assert all(len(g) == 1 for g in plan_windows(two, durs, ConcatOptions(share=0.0)))
    half = plan_windows(small, durs, ConcatOptions(max_seconds=6.0, share=0.5))
    full = plan_windows(small, durs, ConcatOptions(max_seconds=6.0, share=1.0))
    assert 0 < sum(len(g) > 1 for g in half) < sum(len(g) > 1 for g in full)


def test_long_utterance_stays_single(small):
    durs = dict(small.utt2dur)
    plan = plan_windows(small, durs, ConcatOptions(max_seconds=2.0, share=1.0))
    assert all(len(g) == 1 for g in plan)  # every S0150 utterance here is > 2 s alone


def test_resume_reuses_complete_windows(small, tmp_path):
    opts = ConcatOptions(max_seconds=10.0, share=1.0)
    out1, rows1, st1 = concat_dir(small, tmp_path, opts)
    mtimes = {p: os.stat(p).st_mtime_ns for p in tmp_path.glob("*.flac")}
    victim = sorted(mtimes)[0]
    victim.write_bytes(victim.read_bytes()[:200])  # a broken file is redone
    out2, rows2, st2 = concat_dir(small, tmp_path, opts)
    assert (st2.written, st2.reused) == (1, st1.written - 1)
    assert rows2 == rows1 and out2 == out1
    for p, t in mtimes.items():
        assert p == victim or os.stat(p).st_mtime_ns == t
    assert not list(tmp_path.glob(".*.tmp"))


def test_concat_map_round_trip_and_errors(small, tmp_path):
    _, rows, _ = concat_dir(small, tmp_path / "a", ConcatOptions(max_seconds=10.0, share=1.0))
    write_concat_map(rows, tmp_path / "concat_map")
    back = read_concat_map(tmp_path / "concat_map")
    assert sorted(back) == sorted(rows) or all(
        (a.window, a.source) == (b.window, b.source) and a.start == pytest.approx(b.start, abs=1e-6)
        for a, b in zip(sorted(back), sorted(rows)))
    bad = tmp_path / "bad_map"
    bad.write_text("w1 u1 0 1.5\nw1 u2 2.0\n")
    with pytest.raises(DataError, match=r"bad_map:2: want"):
        read_concat_map(bad)
    bad.write_text("w1 u1 2 1\n")
    with pytest.raises(DataError, match=r"bad_map:1: bad span"):
        read_concat_map(bad)


def test_refused_inputs(small, tmp_path):
    with pytest.raises(ConcatError, match="max_seconds"):
        ConcatOptions(max_seconds=0)
    with pytest.raises(ConcatError, match="share"):
        ConcatOptions(share=1.5)
    with pytest.raises(ConcatError, match="gap_seconds"):
        ConcatOptions(gap_seconds=-1)
    unlabeled = DataDir(small.wav_scp, small.utt2spk, name="unlabeled_dir")
    with pytest.raises(ConcatError, match="unlabeled_dir.*no text"):
        concat_dir(unlabeled, tmp_path, ConcatOptions(share=1.0))
    lying = DataDir(small.wav_scp, small.utt2spk, small.text, utt2dur={u: 0.5 for u in small.utt_ids},
                    name="lying_dir")
    with pytest.raises(ConcatError, match="lying_dir.*utt2dur disagrees"):
        concat_dir(lying, tmp_path, ConcatOptions(max_seconds=4.0, share=1.0))


def test_segments_refused_and_bad_dir_named(small, tmp_path):
    from twister_plugin.data.kaldi import Segment

    seg = DataDir({"rec1": small.wav_scp[small.utt_ids[0]]}, {"a": "s", "b": "s"}, {"a": "你好", "b": "世界"},
                  segments={"a": Segment("rec1", 0.0, 1.0), "b": Segment("rec1", 1.0, 2.0)}, name="seg_dir")
    with pytest.raises(ConcatError, match="seg_dir: segments are not supported"):
        concat_dir(seg, tmp_path, ConcatOptions(max_seconds=1.5, share=1.0))
