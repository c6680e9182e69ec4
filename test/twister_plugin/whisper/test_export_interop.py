"""Our exports against the reference tools (transformers and CTranslate2's own converter).

The Hugging Face folder loads offline in ``WhisperForConditionalGeneration`` with the same
logits as openai-whisper, and CTranslate2's ``TransformersConverter`` run on that folder writes a
``model.bin`` byte-identical to our direct CTranslate2 export, for every quantisation, with the
same config.json and vocabulary. Skipped where transformers is not installed (CI).
"""
from __future__ import annotations

import json

import pytest
import torch

from twister_plugin.testing.whisper import random_mel, random_whisper, tiny_dims
from twister_plugin.whisper.export import export_whisper

torch.set_num_threads(1)
transformers = pytest.importorskip("transformers")
QUANTIZATIONS = ["float32", "float16", "bfloat16", "int8", "int8_float16", "int16"]


@pytest.fixture(scope="module")
def tiny():
    return random_whisper(tiny_dims(), seed=21)


@pytest.fixture(scope="module")
def hf_dir(tiny, tmp_path_factory):
    return export_whisper(tiny, tmp_path_factory.mktemp("interop") / "hf", "hf", "float32")


def test_transformers_loads_it_offline(tiny, hf_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf = transformers.WhisperForConditionalGeneration.from_pretrained(str(hf_dir)).eval()
    assert hf.proj_out.weight.data_ptr() == hf.model.decoder.embed_tokens.weight.data_ptr()
    mel = random_mel(tiny.dims)
    tokens = torch.tensor([[50258, 50260, 50359, 50363, 220, 1002]])
    with torch.no_grad():
        ours = tiny(mel, tokens)
        theirs = hf(input_features=mel, decoder_input_ids=tokens).logits
    diff = (ours - theirs).abs().max().item()
    print(f"logits max |openai-whisper - transformers| = {diff:.2e}")
    assert diff < 1e-4
    assert hf.generation_config.lang_to_id["<|zh|>"] == 50260
    assert hf.generation_config.alignment_heads == [[0, 1], [1, 0]]


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_ctranslate2_converter_writes_the_same_bytes(tiny, hf_dir, tmp_path, quantization):
    ctranslate2 = pytest.importorskip("ctranslate2")
    ours = export_whisper(tiny, tmp_path / "ours", "ct2", quantization)
    theirs = tmp_path / "theirs"
    converter = ctranslate2.converters.TransformersConverter(str(hf_dir), load_as_float16=False)
    converter.convert(str(theirs), quantization=quantization)
    assert (ours / "model.bin").read_bytes() == (theirs / "model.bin").read_bytes()
    assert json.loads((ours / "config.json").read_text()) == json.loads(
        (theirs / "config.json").read_text())
    vocabulary = (ours / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert vocabulary == json.loads((theirs / "vocabulary.json").read_text(encoding="utf-8"))
