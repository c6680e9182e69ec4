"""Griffin-Lim vocoder: inverts ESPnet fbank log-mels of real S0150 speech."""
from pathlib import Path

import pytest
import soundfile as sf
import torch
import yaml
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from twister_plugin.testing.tts import S0150, read_manifest
from twister_plugin.tts.vocoder import (FbankConfig, GriffinLimConfig, GriffinLimVocoder,
                                        VocoderConfigError, spectral_convergence)

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / ".." / "shared" / "data"
BASE = REPO / "egs2" / "twister" / "asr1" / "conf" / "tts" / "fastspeech_base.yaml"
# Measured on S0150 utterance 1 (2.4 s): SC 0.25 after 1 iteration, 0.084 after 32.
SC_BOUND = 0.12


@pytest.fixture(scope="module")
def fbank_conf():
    return yaml.safe_load(BASE.read_text())["feats_extract_conf"]


@pytest.fixture(scope="module")
def logmels(fbank_conf):
    if not (DATA / S0150 / "manifest.tsv").exists():
        pytest.skip("shared data not available")
    fbank = LogMelFbank(**fbank_conf)
    wavs = [torch.from_numpy(sf.read(r["audio"], dtype="float32")[0])
            for r in read_manifest(DATA, S0150)[:2]]
    lens = torch.tensor([len(w) for w in wavs])
    feats, flens = fbank(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)
    return fbank, feats, flens


def _vocoder(conf, n_iter):
    return GriffinLimVocoder(FbankConfig.from_task_args("fbank", conf), GriffinLimConfig(n_iter))


def test_griffin_lim_reconstructs_real_speech(fbank_conf, logmels):
    fbank, feats, flens = logmels
    ref = feats[:1, : int(flens[0])]
    scs = {}
    for n_iter in (1, 32):
        wav = _vocoder(fbank_conf, n_iter)(ref)
        assert wav.shape == (1, (ref.size(1) - 1) * 256)
        again, _ = fbank(wav)
        scs[n_iter] = spectral_convergence(ref[0], again[0])
    assert scs[32] < SC_BOUND and scs[32] < scs[1] / 2, scs


def test_batch_with_padding_inverts_each_utterance(fbank_conf, logmels):
    fbank, feats, flens = logmels
    padded = feats.masked_fill(feats == 0, -5.0)  # LogMel zero-fills padding: make it silence
    wav = _vocoder(fbank_conf, 32)(padded)
    for b, n in enumerate(flens.tolist()):
        again, _ = fbank(wav[b: b + 1, : (n - 1) * 256])
        assert spectral_convergence(feats[b, :n], again[0]) < SC_BOUND


def test_mel_basis_is_espnets(fbank_conf, logmels):
    fbank, _, _ = logmels
    voc = _vocoder(fbank_conf, 1)
    melmat = fbank.logmel.melmat.double()  # (F, M)
    torch.testing.assert_close(voc.inv_basis, torch.linalg.pinv(melmat.T).float())


@pytest.mark.parametrize("kind,conf,match", [
    ("linear_spectrogram", {}, "fbank"),
    (None, {}, "fbank"),
    ("fbank", {"center": False}, "center"),
    ("fbank", {"n_fft": 512, "preemph": 0.97}, "unknown keys"),
])
def test_refused_feature_configs(kind, conf, match):
    with pytest.raises(VocoderConfigError, match=match):
        FbankConfig.from_task_args(kind, conf)


def test_refused_input_shape(fbank_conf):
    with pytest.raises(VocoderConfigError, match="log-mels"):
        _vocoder(fbank_conf, 1)(torch.zeros(1, 10, 40))
