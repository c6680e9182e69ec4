"""Speed perturbation and additive noise on real S0150 utterances."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from twister_plugin.data.audio import load_utt
from twister_plugin.data.kaldi import DataDir, DataError
from twister_plugin.data.manifest import read_manifest
from twister_plugin.data.perturb import (
    NoiseOptions, PerturbError, SpeedOptions, add_noise, coloured_noise, mix_at_snr, read_noise_list,
    speed_perturb,
)
from twister_plugin.testing.data import shared_data

SR = 16000


@pytest.fixture(scope="module")
def small() -> DataDir:
    root = shared_data()
    if root is None or not (root / "zh" / "aishell_sample_S0150" / "manifest.tsv").is_file():
        pytest.skip("shared/data/zh/aishell_sample_S0150 not present")
    dd = read_manifest(root / "zh" / "aishell_sample_S0150" / "manifest.tsv")
    return dd.subset(dd.utt_ids[:4])


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR of ``noisy`` = a * (clean + noise): a by least squares, noise the rest."""
    c, y = clean.astype(np.float64), noisy.astype(np.float64)
    a = float(y @ c / (c @ c))
    noise = y / a - c
    return 10 * np.log10(np.mean(c**2) / np.mean(noise**2))


def test_speed_copies_have_duration_over_factor(small, tmp_path):
    out, origin, st = speed_perturb(small, tmp_path, SpeedOptions(factors=(0.9, 1.0, 1.1)))
    assert st.speed_copies == 8 and len(out.utt_ids) == 12
    for u in small.utt_ids:
        n = len(load_utt(small, u))
        assert out.wav_scp[u] == small.wav_scp[u]  # factor 1 keeps the original
        for f in (0.9, 1.1):
            new = f"sp{f:g}-{u}"
            y, sr = sf.read(out.wav_scp[new], dtype="float32")
            assert sr == SR and abs(len(y) - n / f) <= 1
            assert out.utt2dur[new] == pytest.approx(n / f / SR, abs=1 / SR)
            assert out.utt2spk[new] == f"sp{f:g}-{small.utt2spk[u]}"
            assert out.text[new] == small.text[u] and origin[new] == (u, f)
    again, _, st2 = speed_perturb(small, tmp_path, SpeedOptions(factors=(0.9, 1.0, 1.1)))
    assert (st2.written, st2.reused) == (0, 8) and again == out


def test_speed_skips_copies_longer_than_the_window(small, tmp_path):
    out, _, st = speed_perturb(small, tmp_path, SpeedOptions(factors=(0.5,), max_seconds=4.0))
    longer = [u for u in small.utt_ids if small.utt2dur[u] / 0.5 > 4.0]
    assert st.speed_skipped == len(longer) > 0
    assert len(out.utt_ids) == len(small.utt_ids) - len(longer)  # no factor 1: originals dropped


def test_mix_at_snr_hits_target_on_real_audio(small):
    x = load_utt(small, small.utt_ids[0])
    rng = np.random.default_rng(0)
    for target in (0.0, 10.0, 25.0):
        for a in (0, 1, 2):
            y, scale = mix_at_snr(x, coloured_noise(len(x), a, rng), target)
            assert abs(snr_db(x, y) - target) < 0.5
            assert np.max(np.abs(y)) <= 0.99 + 1e-6
    loud = np.clip(x * 30, -1, 1)
    y, scale = mix_at_snr(loud, coloured_noise(len(x), 0, rng), 5.0)
    assert scale < 1 and abs(snr_db(loud, y) - 5.0) < 0.5  # scaled down, SNR kept
    with pytest.raises(PerturbError, match="all zeros"):
        mix_at_snr(np.zeros(100, np.float32), np.ones(100, np.float32), 10.0)


def test_coloured_noise_slopes():
    rng = np.random.default_rng(1)
    for a in (0, 1, 2):
        z = coloured_noise(2**16, a, rng)
        assert np.sqrt(np.mean(z**2)) == pytest.approx(1.0, rel=1e-3)
        p = np.abs(np.fft.rfft(z)) ** 2
        f = np.fft.rfftfreq(len(z))
        lo, hi = p[(f > 0.001) & (f < 0.002)].mean(), p[(f > 0.2) & (f < 0.4)].mean()
        slope = np.log10(lo / hi) / np.log10(0.3 / 0.0015)
        assert slope == pytest.approx(a, abs=0.3)


def test_add_noise_files_deterministic_resumable(small, tmp_path):
    opts = NoiseOptions(share=1.0, snr_db=(5.0, 20.0), seed=7)
    out, st = add_noise(small, tmp_path / "a", opts)
    assert st.noisy == 4 and set(out.utt_ids) == set(small.utt_ids)
    for row in st.noise_rows:
        y, _ = sf.read(out.wav_scp[row.utt], dtype="float32")
        assert 5.0 <= row.snr_db <= 20.0
        assert abs(snr_db(load_utt(small, row.utt), y) - row.snr_db) < 0.5
    out_b, _ = add_noise(small, tmp_path / "b", opts)
    for u in small.utt_ids:
        assert (tmp_path / "a" / f"{u}.flac").read_bytes() == (tmp_path / "b" / f"{u}.flac").read_bytes()
    mtimes = {p: os.stat(p).st_mtime_ns for p in (tmp_path / "a").glob("*.flac")}
    again, st2 = add_noise(small, tmp_path / "a", opts)
    assert (st2.written, st2.reused) == (0, 4) and again == out and st2.noise_rows == st.noise_rows
    assert all(os.stat(p).st_mtime_ns == t for p, t in mtimes.items())
    part, st3 = add_noise(small, tmp_path / "c", NoiseOptions(share=0.0))
    assert st3.noisy == 0 and part.wav_scp == small.wav_scp


def test_noise_from_a_list_of_files(small, tmp_path):
    noise = tmp_path / "hum.wav"
    sf.write(noise, 0.1 * coloured_noise(8000, 1, np.random.default_rng(2)), SR)  # 0.5 s, looped
    lst = tmp_path / "noise.list"
    lst.write_text(f"{noise}\n")
    out, st = add_noise(small, tmp_path / "out", NoiseOptions(share=1.0, snr_db=(12.0, 12.0), source=str(lst)))
    assert {r.noise for r in st.noise_rows} == {str(noise)}
    for u in small.utt_ids:
        y, _ = sf.read(out.wav_scp[u], dtype="float32")
        assert abs(snr_db(load_utt(small, u), y) - 12.0) < 0.5


def test_refused_inputs(tmp_path):
    with pytest.raises(PerturbError, match="speed factors"):
        SpeedOptions(factors=(3.0,))
    with pytest.raises(PerturbError, match="repeat"):
        SpeedOptions(factors=(0.9, 0.9))
    with pytest.raises(PerturbError, match="share"):
        NoiseOptions(share=2.0)
    with pytest.raises(PerturbError, match="low, high"):
        NoiseOptions(snr_db=(30.0, 10.0))
    with pytest.raises(PerturbError, match="low, high"):
        NoiseOptions(snr_db=(10.0,))
    lst = tmp_path / "noise.list"
    lst.write_text(f"{tmp_path / 'nope.wav'}\n")
    with pytest.raises(DataError, match=r"noise.list:1: noise file .*nope.wav.* does not exist"):
        read_noise_list(lst)
    lst.write_text("\n")
    with pytest.raises(DataError, match=r"noise.list:1: blank line"):
        read_noise_list(lst)
