"""Phone durations from Whisper's cross-attention: pure span/duration arithmetic, and Whisper base
timing real S0150 speech (two utterances joined by a known silence)."""
import numpy as np
import pytest

from twister_plugin.testing.decode import base_checkpoint
from twister_plugin.testing.tts import S0150, read_manifest
from twister_plugin.tts.frontend import Frontend, Unit
from twister_plugin.tts.whisper_align import (AlignError, phone_durations, spoken_string,
                                              unit_spans)
from twister_plugin.testing.data import shared_data


def test_units_spell_the_forced_text_and_flatten_to_the_phones():
    fe = Frontend()
    text = "苹果表配apple pay，2024年涨了3.5%"
    units = fe.units_batch([text])[0]
    assert [p for u in units for p in u.phones] == fe.phonemize(text)
    spoken, offsets = spoken_string(units)
    assert spoken == "苹果表配 apple pay,二零二四年涨了百分之三点五"
    assert [spoken[a:b] for a, b in offsets] == [u.text for u in units]


def test_unit_spans_share_a_piece_between_its_characters():
    units = [Unit("zh", "中", ["zh", "ong1"]), Unit("zh", "国", ["g", "uo2"]),
             Unit("en", "ok", ["OW1", "K", "EY1"])]
    text, offsets = spoken_string(units)
    spans = unit_spans(text, offsets, [("中国", 0.2, 0.6), (" ok", 0.7, 1.0)])
    assert spans == [(0.2, 0.4), (0.4, 0.6), (pytest.approx(0.8), 1.0)]
    with pytest.raises(AlignError, match="do not spell"):
        unit_spans(text, offsets, [("中", 0.2, 0.6), (" ok", 0.7, 1.0)])


def test_phone_durations_fill_the_frames_with_pauses_taking_gaps():
    units = [Unit("zh", "好", ["h", "ao3"]), Unit("pause", ",", [","]),
             Unit("zh", "的", ["d", "e5"])]
    frame = 0.01
    d = phone_durations(units, [(0.1, 0.5), (0.5, 0.52), (0.9, 1.3)], 150, frame)
    assert sum(d) == 150 and len(d) == 5
    # h takes the leading silence, the pause the whole 0.5-0.9 gap, e5 the trailing silence
    assert d == [30, 20, 40, 20, 40]
    d = phone_durations(units[:1] + units[2:], [(0.1, 0.5), (0.9, 1.3)], 150, frame)
    assert d == [30, 40, 40, 40]  # no pause: the gap is split at its middle (0.7 s)
    many = [Unit("zh", c, ["a1"]) for c in "一二三四五"]
    d = phone_durations(many, [(0.0, 0.0)] * 5, 5, frame)  # Whisper squeezed them: 1 frame each
    assert d == [1, 1, 1, 1, 1]


@pytest.fixture(scope="module")
def aligner():
    if base_checkpoint() is None or shared_data() is None:
        pytest.skip("needs tools/whisper/base.pt and ../shared/data")
    from twister_plugin.tts.whisper_align import WhisperAligner
    from twister_plugin.whisper import load_whisper

    return WhisperAligner(load_whisper(base_checkpoint()), language="zh")


def test_whisper_base_finds_a_known_boundary_in_real_speech(aligner):
    import soundfile as sf

    rows = [r for r in read_manifest(shared_data(), S0150) if 2.0 < float(r["duration_s"]) < 5][:2]
    a, b = (sf.read(r["audio"], dtype="float32")[0] for r in rows)
    gap = np.zeros(16000, dtype=np.float32)  # 1 s of silence between the two sentences
    audio = np.concatenate([a, gap, b])
    fe = Frontend()
    ua, ub = fe.units_batch([rows[0]["text"], rows[1]["text"]])
    spans = aligner(audio, ua + ub)
    starts, ends = np.array(spans).T
    assert np.all(np.diff(starts) >= 0) and np.all(ends >= starts) and ends[-1] <= len(audio) / 16e3
    # Whisper was not told about the silence: the first sentence's last character ends before
    # it (S0150's own trailing silence is ~0.6 s: 设定二十九度 is voiced until ~1.9 s of 2.43 s),
    # the second sentence's first character ends after it (its span holds the silence: DTW spans
    # are contiguous, so silence joins the next character)
    join = len(a) / 16000
    assert join - 0.9 < ends[len(ua) - 1] < join, spans
    assert join + 1.0 < ends[len(ua)] < join + 1.0 + 1.2, spans
    d = phone_durations(ua + ub, spans, len(audio) // 256 + 1, 256 / 16000)
    assert sum(d) == len(audio) // 256 + 1 and min(d) >= 1
    assert len(d) == sum(len(u.phones) for u in ua + ub)


def test_text_longer_than_whisper_reads_is_refused_clearly(tmp_path):
    from twister_plugin.testing.tts import tiny_whisper_checkpoint
    from twister_plugin.tts.whisper_align import WhisperAligner
    from twister_plugin.whisper import load_whisper

    aligner = WhisperAligner(load_whisper(tiny_whisper_checkpoint(tmp_path / "w.pt")))
    units = Frontend().units_batch(["天气很好" * 150])[0]  # 600 characters
    with pytest.raises(AlignError, match="text tokens"):
        aligner(np.zeros(16000 * 20, dtype=np.float32), units)
    with pytest.raises(AlignError, match="need"):
        aligner(np.zeros(16000 * 31, dtype=np.float32), units[:4])
    for seed in range(3):  # random weights: any spans (the DTW may start a frame early), but in the audio
        aligner = WhisperAligner(load_whisper(tiny_whisper_checkpoint(tmp_path / f"w{seed}.pt", seed)))
        spans = aligner(np.zeros(16000 * 2, dtype=np.float32), units[:4])
        assert len(spans) == 4 and all(0 <= s <= e <= 2.0 for s, e in spans), spans


def test_spans_before_the_audio_are_kept_inside_it(tmp_path, monkeypatch):
    """whisper.timing.find_alignment's DTW backtrace can start a word at frame -1 (-0.02 s)."""
    import whisper.timing
    from whisper.timing import WordTiming

    from twister_plugin.testing.tts import tiny_whisper_checkpoint
    from twister_plugin.tts.whisper_align import WhisperAligner
    from twister_plugin.whisper import load_whisper

    aligner = WhisperAligner(load_whisper(tiny_whisper_checkpoint(tmp_path / "w.pt")))
    units = Frontend().units_batch(["天气"])[0]
    text, _ = spoken_string(units)
    words = [WordTiming(text[:1], [0], -0.02, -0.02, 0.5), WordTiming(text[1:], [0], -0.02, 2.4, 0.5)]
    monkeypatch.setattr(whisper.timing, "find_alignment", lambda *a, **k: words)
    assert aligner(np.zeros(16000 * 2, dtype=np.float32), units) == [(0.0, 0.0), (0.0, 2.0)]
