"""Audio loading: every bad-file type is refused with the file named; good files of any rate,
width or channel count come out as 16 kHz float32 mono."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from twister_plugin.data.audio import AudioError, load_audio, load_utt, probe_audio, resample
from twister_plugin.data.kaldi import DataDir, Segment
from twister_plugin.testing.data import ACCEPTED, REFUSED, write_audio_cases

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"

REFUSAL = {
    "missing": "no such file",
    "empty": "empty file (0 bytes)",
    "zero_length": "zero-length audio",
    "truncated_flac": "decoding failed; truncated or corrupt file",
    "truncated_wav": "truncated WAV: data chunk says",
    "random_bytes": "not a readable audio file",
    "nan_wav": "NaN/Inf samples (first at sample",
    "inf_wav": "NaN/Inf samples (first at sample",
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Path]:
    return write_audio_cases(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="module")
def clip(cases) -> np.ndarray:
    x, sr = sf.read(cases["good"], dtype="float32")
    assert sr == 16000
    return x


def test_cases_cover_the_contract():
    assert set(REFUSAL) == set(REFUSED)


@pytest.mark.parametrize("name", REFUSED)
def test_refused(cases, name):
    with pytest.raises(AudioError) as err:
        load_audio(cases[name])
    assert str(err.value).startswith(f"{cases[name]}: ")
    assert REFUSAL[name] in str(err.value)


@pytest.mark.parametrize("name", [n for n in REFUSED if n not in ("nan_wav", "inf_wav")])
def test_probe_refuses_without_decoding(cases, name):
    if name == "truncated_flac":  # only decoding finds a cut FLAC stream
        assert probe_audio(cases[name]).num_samples > 0
        return
    with pytest.raises(AudioError, match=REFUSAL[name].split("(")[0]):
        probe_audio(cases[name])


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_as_16k_mono(cases, clip, name):
    x = load_audio(cases[name], 16000)
    assert x.dtype == np.float32 and x.ndim == 1 and np.isfinite(x).all()
    assert abs(len(x) - len(clip)) <= 1
    n = min(len(x), len(clip))
    corr = np.corrcoef(x[:n], clip[:n])[0, 1]
    assert corr > (0.99 if name == "sr8000" else 0.9995), corr  # 8 kHz loses the top band


def test_stereo_is_the_channel_mean(cases, clip):
    x = load_audio(cases["stereo"])
    np.testing.assert_allclose(x, 0.75 * clip, atol=1e-3)  # channels were clip and 0.5 * clip


def test_resample_to_other_rates(cases, clip):
    assert len(load_audio(cases["good"], 8000)) == len(clip) // 2
    assert len(load_audio(cases["sr48000"], 48000)) == 3 * len(clip)


def test_torchaudio_fallback_when_soxr_missing(cases, clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "soxr", None)  # import soxr now raises ImportError
    y = resample(load_audio(cases["sr48000"], 48000), 48000, 16000)
    assert len(y) == len(clip) and np.corrcoef(y, clip)[0, 1] > 0.9995


def test_ten_minutes_refused_with_its_duration_never_cut(cases):
    with pytest.raises(AudioError, match=r"ten_minutes.flac: audio is 600.00 s long, more than "
                                         r"max_seconds=30 \(refused, never cut\)"):
        load_audio(cases["ten_minutes"], max_seconds=30)
    assert len(load_audio(cases["ten_minutes"], max_seconds=600.5)) == 600 * 16000


def test_segments(cases, clip):
    x = load_audio(cases["good"], start=0.5, end=1.0)
    np.testing.assert_array_equal(x, clip[8000:16000])
    with pytest.raises(AudioError, match=r"good.flac: segment \[1.0, 9.0\] s does not fit"):
        load_audio(cases["good"], start=1.0, end=9.0)
    with pytest.raises(AudioError, match="good.flac: segment start 5.0 s is outside the audio"):
        load_audio(cases["good"], start=5.0)
    with pytest.raises(AudioError, match="audio is 0.50 s long, more than max_seconds=0.4"):
        load_audio(cases["good"], start=0.5, end=1.0, max_seconds=0.4)


def test_load_utt_uses_segments(cases, clip):
    dd = DataDir(wav_scp={"r": str(cases["good"]), "bad": str(cases["nan_wav"])},
                 utt2spk={"u1": "s", "u2": "s"},
                 segments={"u1": Segment("r", 1.0, 1.5), "u2": Segment("bad", 0.0, 1.0)})
    np.testing.assert_array_equal(load_utt(dd, "u1"), clip[16000:24000])
    with pytest.raises(AudioError, match=r"utterance 'u2': .*nan_wav.wav: 1 NaN/Inf samples"):
        load_utt(dd, "u2")


def test_pipes_only_when_allowed(cases, clip):
    entry = f"cat {cases['good']} |"
    with pytest.raises(AudioError, match="pipe entries run a shell command; refused"):
        load_audio(entry)
    np.testing.assert_array_equal(load_audio(entry, allow_pipes=True), clip)
    assert probe_audio(entry, allow_pipes=True).num_samples == len(clip)
    with pytest.raises(AudioError, match="command failed with exit code 3"):
        load_audio("sh -c 'exit 3' |", allow_pipes=True)
    with pytest.raises(AudioError, match="command wrote no bytes"):
        load_audio("true |", allow_pipes=True)
    with pytest.raises(AudioError, match="truncated WAV"):
        load_audio(f"cat {cases['truncated_wav']} |", allow_pipes=True)


def test_directory_is_refused(tmp_path):
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/data absent")
@pytest.mark.parametrize("rel, rate", [
    ("zh/commonvoice_zh_cn/audio/common_voice_zh-CN_18531674.flac", 48000),
    ("en/ljspeech/audio/LJ001-0002.flac", 22050),
    ("en/fsdd_digits/audio/0_george_0.flac", 8000),
])
def test_real_files_at_native_rates(rel, rate):
    info = probe_audio(SHARED / rel)
    assert info.sample_rate == rate and info.channels == 1
    x = load_audio(SHARED / rel)
    assert abs(len(x) - round(info.num_samples * 16000 / rate)) <= 1
    assert 0 < np.abs(x).max() <= 1.0
