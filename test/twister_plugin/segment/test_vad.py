"""VAD strategies: streaming frames, the packaged Silero model, region hysteresis."""
from __future__ import annotations

import numpy as np
import pytest

from twister_plugin.segment.vad import (
    FRAME, FRAME_S, EnergyVad, VadConfig, VadError, frames_of, make_vad, speech_regions,
)


def test_frames_of_recuts_any_chunking():
    x = np.random.default_rng(0).standard_normal(10 * FRAME + 100).astype(np.float32)
    chunks = [x[:700], x[700:701], x[701:3000], x[3000:]]
    got = np.concatenate(list(frames_of(chunks)))
    assert got.shape == (11, FRAME)
    np.testing.assert_array_equal(got.reshape(-1)[: len(x)], x)
    assert not got.reshape(-1)[len(x):].any()


def test_silero_runs_offline_from_the_package():
    vad = make_vad(VadConfig(method="silero"))
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    silence = np.zeros(16000, dtype=np.float32) + 1e-4 * rng.standard_normal(16000).astype(np.float32)
    p = vad.probabilities([silence, tone[:5000], tone[5000:], silence])
    assert p.shape == (int(np.ceil(4 * 16000 / FRAME)),)
    assert p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
    assert p[: int(0.9 / FRAME_S)].max() < 0.5  # silence is not speech


def test_energy_vad_finds_a_loud_burst():
    x = np.zeros(16000 * 3, dtype=np.float32) + 1e-3 * np.random.default_rng(1).standard_normal(
        16000 * 3).astype(np.float32)
    x[16000:32000] += 0.3 * np.random.default_rng(2).standard_normal(16000).astype(np.float32)
    regions, _ = speech_regions(EnergyVad(15.0).probabilities([x]), VadConfig(method="energy"))
    assert len(regions) == 1
    assert regions[0] == pytest.approx((1.0, 2.0), abs=2 * FRAME_S)


def test_hysteresis_min_silence_and_min_speech():
    cfg = VadConfig(threshold=0.5, neg_threshold=0.3, min_speech_s=0.25, min_silence_s=0.1)
    n = lambda s: int(round(s / FRAME_S))  # noqa: E731
    p = np.concatenate([np.zeros(n(1)), np.full(n(1), 0.9), np.full(n(0.5), 0.4),  # 0.4: still speech
                        np.full(n(1), 0.9), np.zeros(n(0.064)),  # too short a pause to cut
                        np.full(n(1), 0.9), np.zeros(n(1)), np.full(n(0.1), 0.9),  # too short speech
                        np.zeros(n(1))]).astype(np.float32)
    regions, dropped = speech_regions(p, cfg)
    assert dropped == 1 and len(regions) == 1
    assert regions[0] == pytest.approx((1.0, 4.564), abs=FRAME_S)


@pytest.mark.parametrize("kw, match", [
    (dict(method="webrtc"), "vad.method must be one of"), (dict(threshold=0.0), "threshold"),
    (dict(neg_threshold=0.9), "neg_threshold"), (dict(min_speech_s=-1), ">= 0"),
    (dict(chunk_s=0.1), "chunk_s"),
])
def test_bad_vad_config(kw, match):
    with pytest.raises(VadError, match=match):
        VadConfig(**kw)
