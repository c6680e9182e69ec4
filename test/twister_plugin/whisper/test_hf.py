"""Hugging Face Whisper folders (safetensors, HF names) load into the same openai model."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from twister_plugin.testing.whisper import (
    hf_state_dict,
    random_mel,
    random_whisper,
    tiny_dims,
    write_hf_dir,
)
from twister_plugin.whisper import WhisperFormatError, load_whisper

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return random_whisper(tiny_dims(), seed=4)


def _same(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("n_shards", [1, 3])
def test_round_trip(tiny, tmp_path, n_shards):
    loaded = load_whisper(write_hf_dir(tiny, tmp_path / "hf", n_shards=n_shards))
    assert loaded.dims == tiny.dims
    _same(tiny, loaded)
    assert loaded.alignment_heads.to_dense().nonzero().tolist() == [[0, 1], [1, 0]]
    mel, tokens = random_mel(tiny.dims), torch.tensor([[50258, 50259, 50359]])
    with torch.no_grad():
        assert torch.equal(loaded(mel, tokens), tiny(mel, tokens))


def test_tied_proj_out_and_no_model_prefix_accepted(tiny, tmp_path):
    d = write_hf_dir(tiny, tmp_path / "hf")
    tensors = load_file(str(d / "model.safetensors"))
    tensors = {k.removeprefix("model."): v for k, v in tensors.items()}
    tensors["proj_out.weight"] = tensors["decoder.embed_tokens.weight"].clone()
    save_file(tensors, str(d / "model.safetensors"))
    _same(tiny, load_whisper(d))


def test_transformers_cross_check(tiny, tmp_path):
    transformers = pytest.importorskip("transformers")
    d = write_hf_dir(tiny, tmp_path / "hf")
    hf = transformers.WhisperForConditionalGeneration.from_pretrained(str(d)).eval()
    ours = load_whisper(d)
    mel, tokens = random_mel(tiny.dims), torch.tensor([[50258, 50259, 50359]])
    with torch.no_grad():
        ref = hf(input_features=mel, decoder_input_ids=tokens).logits
        assert (ours(mel, tokens) - ref).abs().max() < 1e-4


# ------------------------------------------------------------------ refused inputs

def _refused(src, named, *words):
    with pytest.raises(WhisperFormatError) as info:
        load_whisper(src)
    for word in (str(named), *words):
        assert word in str(info.value), str(info.value)


@pytest.fixture()
def hf_dir(tiny, tmp_path):
    return write_hf_dir(tiny, tmp_path / "hf")


def test_missing_config(hf_dir):
    (hf_dir / "config.json").unlink()
    _refused(hf_dir, hf_dir / "config.json", "missing")


def test_config_not_whisper_or_incomplete(hf_dir):
    config = json.loads((hf_dir / "config.json").read_text())
    (hf_dir / "config.json").write_text(json.dumps({**config, "model_type": "bert",
                                                    "architectures": ["BertModel"]}))
    _refused(hf_dir, hf_dir / "config.json", "not a Whisper config")
    del config["decoder_layers"]
    (hf_dir / "config.json").write_text(json.dumps(config))
    _refused(hf_dir, hf_dir / "config.json", "decoder_layers")
    (hf_dir / "config.json").write_text("[1, 2]")
    _refused(hf_dir, hf_dir / "config.json", "JSON object")


def test_corrupt_or_truncated_safetensors(hf_dir):
    path = hf_dir / "model.safetensors"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    _refused(hf_dir, path, "not a readable safetensors")
    path.write_bytes(b"\xff" * 64)
    _refused(hf_dir, path, "not a readable safetensors")


def test_missing_tensor_and_wrong_shape(tiny, hf_dir):
    tensors = hf_state_dict(tiny)
    del tensors["model.decoder.layers.1.encoder_attn.k_proj.weight"]
    save_file(tensors, str(hf_dir / "model.safetensors"))
    _refused(hf_dir, hf_dir / "model.safetensors", "decoder.blocks.1.cross_attn.key.weight")
    tensors = hf_state_dict(tiny)
    tensors["model.encoder.conv1.weight"] = torch.zeros(64, 80, 5)
    save_file(tensors, str(hf_dir / "model.safetensors"))
    _refused(hf_dir, hf_dir / "model.safetensors", "encoder.conv1.weight")


def test_untied_proj_out_refused(tiny, hf_dir):
    tensors = hf_state_dict(tiny)
    tensors["proj_out.weight"] = torch.zeros_like(tensors["model.decoder.embed_tokens.weight"])
    save_file(tensors, str(hf_dir / "model.safetensors"))
    _refused(hf_dir, hf_dir / "model.safetensors", "proj_out")


def test_vocab_mismatch(tiny, hf_dir):
    config = json.loads((hf_dir / "config.json").read_text())
    (hf_dir / "config.json").write_text(json.dumps({**config, "vocab_size": 51864}))
    _refused(hf_dir, hf_dir / "model.safetensors", "51865 rows", "vocab_size=51864")
    (hf_dir / "config.json").write_text(json.dumps({**config, "vocab_size": 1234}))
    _refused(hf_dir, hf_dir / "config.json", "1234 rows")


def test_sharded_index_pointing_to_missing_shard(tiny, tmp_path):
    d = write_hf_dir(tiny, tmp_path / "hf", n_shards=2)
    (d / "model-00002-of-00002.safetensors").unlink()
    _refused(d, d / "model-00002-of-00002.safetensors", "missing")


def test_bad_generation_heads(hf_dir):
    (hf_dir / "generation_config.json").write_text(json.dumps({"alignment_heads": [[0, 9]]}))
    _refused(hf_dir, hf_dir / "generation_config.json", "[0, 9]")
