"""openai-whisper .pt checkpoints: round trip, compatibility, and refusal of hostile pickles."""
from __future__ import annotations

import os
import random
from dataclasses import asdict

import pytest
import torch
import whisper

from twister_plugin.testing.whisper import (
    random_mel,
    random_whisper,
    tiny_dims,
    write_hostile_checkpoint,
)
from twister_plugin.whisper import WhisperFormatError, load_whisper, save_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return random_whisper(tiny_dims(n_mels=128), seed=3)


def test_round_trip_fp32_exact_and_fp16(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path / "m32.pt", dtype=torch.float32)
    save_checkpoint(tiny, tmp_path / "m16.pt")
    raw = torch.load(tmp_path / "m16.pt", weights_only=True)
    assert raw["dims"] == asdict(tiny.dims)
    assert raw["model_state_dict"]["decoder.token_embedding.weight"].dtype == torch.float16
    assert raw["alignment_heads"].dtype == torch.bool
    assert raw["alignment_heads"].nonzero().tolist() == [[0, 1], [1, 0]]
    m32, m16 = load_whisper(tmp_path / "m32.pt"), load_whisper(tmp_path / "m16.pt")
    for name, t in tiny.state_dict().items():
        assert torch.equal(m32.state_dict()[name], t), name
        assert torch.allclose(m16.state_dict()[name], t, atol=1e-3, rtol=1e-3), name
    assert m16.alignment_heads.to_dense().nonzero().tolist() == [[0, 1], [1, 0]]
    tokens = torch.tensor([[50258, 50259, 50359, 50363]])
    mel = random_mel(tiny.dims)
    with torch.no_grad():
        assert torch.equal(m32(mel, tokens), tiny(mel, tokens))


def test_openai_whisper_reads_our_checkpoint(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path / "m.pt", dtype=torch.float32)
    theirs = whisper.load_model(str(tmp_path / "m.pt"), device="cpu")
    assert theirs.dims == tiny.dims
    for name, t in tiny.state_dict().items():
        assert torch.equal(theirs.state_dict()[name], t), name


def test_load_options_dtype_and_eval(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path / "m.pt")
    model = load_whisper(tmp_path / "m.pt", device="cpu", dtype=torch.float16)
    assert next(model.parameters()).dtype == torch.float16 and not model.training


def test_checkpoint_without_alignment_heads_keeps_default(tiny, tmp_path):
    ckpt = {"dims": asdict(tiny.dims), "model_state_dict": tiny.state_dict()}
    torch.save(ckpt, tmp_path / "openai.pt")
    model = load_whisper(tmp_path / "openai.pt")
    assert model.alignment_heads.to_dense().nonzero().tolist() == [[1, 0], [1, 1], [1, 2], [1, 3]]


def test_save_is_atomic_on_failure(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path / "m.pt")
    before = (tmp_path / "m.pt").read_bytes()

    class Boom(torch.nn.Module):
        dims = tiny.dims

        def state_dict(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_checkpoint(Boom(), tmp_path / "m.pt")
    assert (tmp_path / "m.pt").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]


# ------------------------------------------------------------------ refused inputs

@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("style", ["zip", "legacy", "raw"])
def test_hostile_pickle_refused_and_not_run(tmp_path, style):
    marker = tmp_path / "pwned"
    path = write_hostile_checkpoint(tmp_path / f"evil_{style}.pt", marker, style)
    with pytest.raises(WhisperFormatError) as info:
        load_whisper(path)
    assert str(path) in str(info.value) and "refused" in str(info.value)
    if style != "raw":  # torch formats get as far as the forbidden call
        assert "would call io.open" in str(info.value)
    assert not marker.exists(), "loading ran code stored in the checkpoint"


def _refused(path, *words):
    with pytest.raises(WhisperFormatError) as info:
        load_whisper(path)
    for word in (str(path), *words):
        assert word in str(info.value), str(info.value)


def test_not_a_checkpoint(tmp_path):
    # CI once drew bytes whose unpickling raised KeyError: try many fixed draws, not one random one
    rng = random.Random(0)
    for i in range(300):
        noise = tmp_path / f"noise{i}.pt"
        noise.write_bytes(bytes(rng.randrange(256) for _ in range(rng.choice([1, 10, 100, 1000]))))
        _refused(noise, "not a readable torch checkpoint")
    (tmp_path / "empty.pt").write_bytes(b"")
    _refused(tmp_path / "empty.pt")


def test_truncated_checkpoint(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path / "m.pt")
    blob = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "m.pt").write_bytes(blob[: len(blob) // 2])
    _refused(tmp_path / "m.pt")


def test_wrong_contents(tiny, tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "a.pt")
    _refused(tmp_path / "a.pt", "model_state_dict")
    dims = asdict(tiny.dims)
    torch.save({"dims": {**dims, "n_mels": 0}, "model_state_dict": {}}, tmp_path / "b.pt")
    _refused(tmp_path / "b.pt", "n_mels")
    torch.save({"dims": {**dims, "n_vocab": 500}, "model_state_dict": {}}, tmp_path / "c.pt")
    _refused(tmp_path / "c.pt", "500 rows")
    state = dict(tiny.state_dict())
    state.pop("decoder.ln.bias")
    torch.save({"dims": dims, "model_state_dict": state}, tmp_path / "d.pt")
    _refused(tmp_path / "d.pt", "missing decoder.ln.bias")
    state = dict(tiny.state_dict())
    state["decoder.ln.bias"] = torch.zeros(3)
    torch.save({"dims": dims, "model_state_dict": state}, tmp_path / "e.pt")
    _refused(tmp_path / "e.pt", "decoder.ln.bias has shape (3,)")
    heads = torch.zeros(5, 5, dtype=torch.bool)
    torch.save({"dims": dims, "model_state_dict": tiny.state_dict(), "alignment_heads": heads},
               tmp_path / "f.pt")
    _refused(tmp_path / "f.pt", "alignment_heads")
