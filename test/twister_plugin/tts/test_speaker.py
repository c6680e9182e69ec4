from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from twister_plugin.testing.tts import S0150, read_manifest, tiny_whisper_checkpoint
from twister_plugin.tts.speaker import VoiceBank, VoiceBankError, WhisperSpeakerEncoder

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    path = tiny_whisper_checkpoint(tmp_path_factory.mktemp("w") / "tiny.pt")
    return WhisperSpeakerEncoder.from_checkpoint(path)


def test_embedding_of_real_audio(encoder):
    if not (DATA / S0150 / "manifest.tsv").exists():
        pytest.skip("shared data not available")
    row = read_manifest(DATA, S0150)[0]
    audio, sr = sf.read(row["audio"], dtype="float32")
    assert sr == 16000
    emb = encoder(audio)
    assert emb.shape == (encoder.dim,) == (64,) and np.isfinite(emb).all()
    np.testing.assert_allclose(encoder(audio), emb, rtol=1e-5)  # deterministic
    assert not np.allclose(encoder(audio[: len(audio) // 2]), emb)
    assert encoder(np.zeros(40 * 16000, dtype=np.float32)).shape == (64,)  # > 30 s: cropped
    with pytest.raises(ValueError, match="too short"):
        encoder(np.zeros(100, dtype=np.float32))


def _bank(rng, speakers=3, per=6, dim=16):
    centres = rng.normal(size=(speakers, dim)) * 3
    raw = np.concatenate([c + rng.normal(size=(per, dim)) for c in centres])
    spks = [f"spk{i}" for i in range(speakers) for _ in range(per)]
    return VoiceBank.build(raw, spks, keep_per_speaker=4), raw, spks


def test_voice_bank_normalisation_seen_and_sampled(tmp_path):
    rng = np.random.default_rng(0)
    bank, raw, spks = _bank(rng)
    emb = bank.normalise(raw)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert list(bank.speakers) == ["spk0", "spk1", "spk2"] and bank.sid("spk2") == 2
    seen = bank.seen("spk1", np.random.default_rng(1))
    assert any(np.allclose(seen, e) for e in bank.utt_emb[bank.utt_spk == 1])
    samples = np.stack([bank.sample(np.random.default_rng(i)) for i in range(50)])
    np.testing.assert_allclose(np.linalg.norm(samples, axis=1), 1.0, rtol=1e-5)
    assert samples.std(0).mean() > 0.01  # voices differ
    assert bank.nearest_sid(bank.spk_mean[1]) == 1
    bank.save(tmp_path / "voices.npz")
    again = VoiceBank.load(tmp_path / "voices.npz")
    np.testing.assert_array_equal(again.between, bank.between)
    assert list(again.speakers) == list(bank.speakers)
    with pytest.raises(VoiceBankError, match="not in the voice bank"):
        bank.sid("nobody")


def test_single_speaker_still_samples_distinct_voices():
    rng = np.random.default_rng(0)
    bank, _, _ = _bank(rng, speakers=1)
    a, b = bank.sample(np.random.default_rng(1)), bank.sample(np.random.default_rng(2))
    assert not np.allclose(a, b) and np.isfinite(a).all()


def test_voice_bank_missing_field_is_refused(tmp_path):
    np.savez(tmp_path / "bad.npz", speakers=np.array(["a"]))
    with pytest.raises(VoiceBankError, match="missing"):
        VoiceBank.load(tmp_path / "bad.npz")
