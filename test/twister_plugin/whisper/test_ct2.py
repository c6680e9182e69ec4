"""CTranslate2 folders written from a tiny random Whisper load back into the same model."""
from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
import torch

from twister_plugin.testing.whisper import (
    ct2_binary_bytes,
    ct2_variables,
    random_mel,
    random_whisper,
    tiny_dims,
    write_ct2_dir,
)
from twister_plugin.whisper import WhisperFormatError, load_whisper

torch.set_num_threads(1)
FLOAT_TOL = {"float32": 0.0, "float16": 1e-3, "bfloat16": 8e-3}


@pytest.fixture(scope="module")
def tiny():
    return random_whisper(seed=1)


def _state_diff(a, b) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa)


def _heads(model) -> list[list[int]]:
    return model.alignment_heads.to_dense().nonzero().tolist()


@pytest.mark.parametrize("quantization", ["float32", "float16", "bfloat16"])
def test_float_dirs_round_trip(tiny, tmp_path, quantization):
    loaded = load_whisper(write_ct2_dir(tiny, tmp_path / quantization, quantization))
    assert loaded.dims == tiny.dims
    assert _state_diff(tiny, loaded) <= FLOAT_TOL[quantization]
    assert _heads(loaded) == _heads(tiny) == [[0, 1], [1, 0]]
    assert next(loaded.parameters()).dtype == torch.float32


@pytest.mark.parametrize("quantization", ["int8", "int8_float16", "int16"])
def test_quantised_dirs_within_quantisation_error(tiny, tmp_path, quantization):
    variables = ct2_variables(tiny, quantization)
    loaded = load_whisper(write_ct2_dir(tiny, tmp_path / quantization, quantization))
    orig, got = tiny.state_dict(), loaded.state_dict()
    # every quantised weight: |error| <= half a step (1 / scale) of its row
    w = orig["decoder.blocks.0.attn.query.weight"]
    scale = variables["decoder/layer_0/self_attention/linear_0/weight_scale"]
    step = (1.0 / scale[: w.shape[0]]).reshape(-1, 1) if scale.dim() else 1.0 / scale
    err = (got["decoder.blocks.0.attn.query.weight"] - w).abs()
    assert bool((err <= step / 2 + 1e-6).all())
    assert err.max() > 0  # really quantised
    conv = orig["encoder.conv1.weight"]
    cscale = variables["encoder/conv1/weight_scale"]
    cstep = (1.0 / cscale).reshape(-1, 1, 1) if cscale.dim() else 1.0 / cscale
    assert bool(((got["encoder.conv1.weight"] - conv).abs() <= cstep / 2 + 1e-6).all())
    assert _state_diff(tiny, loaded) < 2e-3
    mel = random_mel(tiny.dims)
    with torch.no_grad():
        diff = (loaded.encoder(mel) - tiny.encoder(mel)).abs().max().item()
    assert diff < 0.1, diff


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_writer_agrees_with_ctranslate2(tiny, tmp_path, quantization):
    """CTranslate2 itself reads the test writer's folder to the same encoder output as ours."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    model_dir = write_ct2_dir(tiny, tmp_path / quantization, quantization)
    ours = load_whisper(model_dir)
    mel = random_mel(tiny.dims)
    ct2 = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="float32",
                                     intra_threads=1)
    ref = np.array(ct2.encode(ctranslate2.StorageView.from_array(mel.numpy())))
    with torch.no_grad():
        got = ours.encoder(mel).numpy()
    assert np.abs(ref - got).max() < 1e-4


def test_split_parts_read_as_one_stream(tiny, tmp_path):
    whole = load_whisper(write_ct2_dir(tiny, tmp_path / "one"))
    split = load_whisper(write_ct2_dir(tiny, tmp_path / "three", n_parts=3))
    assert sorted(p.name for p in (tmp_path / "three").glob("model.bin*")) == [
        "model.bin.part1", "model.bin.part2", "model.bin.part3"]
    assert _state_diff(whole, split) == 0.0


def test_128_mel_bins_and_english_vocab(tmp_path):
    model = random_whisper(tiny_dims(n_mels=128, n_vocab=51864, n_layer=1), seed=2)
    loaded = load_whisper(write_ct2_dir(model, tmp_path / "m"))
    assert loaded.dims.n_mels == 128 and loaded.dims.n_vocab == 51864
    assert loaded.dims.n_text_layer == 1 and loaded.dims.n_text_head == 4
    assert _state_diff(model, loaded) == 0.0


# ------------------------------------------------------------------ refused inputs

def _refused(path, *words):
    with pytest.raises(WhisperFormatError) as info:
        load_whisper(path)
    msg = str(info.value)
    for word in words:
        assert word in msg, msg
    return msg


@pytest.fixture()
def good_dir(tiny, tmp_path):
    return write_ct2_dir(tiny, tmp_path / "good")


def test_truncated_model_bin(good_dir):
    blob = (good_dir / "model.bin").read_bytes()
    for cut in (3, 200, len(blob) // 2, len(blob) - 1):
        (good_dir / "model.bin").write_bytes(blob[:cut])
        _refused(good_dir, str(good_dir / "model.bin"), "truncated")


def test_truncated_last_part_names_the_part(tiny, tmp_path):
    d = write_ct2_dir(tiny, tmp_path / "p", n_parts=2)
    part2 = d / "model.bin.part2"
    part2.write_bytes(part2.read_bytes()[:-10])
    _refused(d, str(part2), "truncated")


def test_trailing_bytes(good_dir):
    with open(good_dir / "model.bin", "ab") as f:
        f.write(b"\0\0junk")
    _refused(good_dir, str(good_dir / "model.bin"), "after the last alias")


@pytest.mark.parametrize("head", [b"PK\x03\x04" + b"\0" * 60, b"\x89PNG" + b"\0" * 60,
                                  struct.pack("<I", 5) + b"\0" * 60, b""])
def test_foreign_file_or_version(good_dir, head):
    (good_dir / "model.bin").write_bytes(head)
    _refused(good_dir, str(good_dir / "model.bin"))


def test_other_spec_refused(tiny, good_dir):
    variables = ct2_variables(tiny)
    (good_dir / "model.bin").write_bytes(ct2_binary_bytes(variables, spec="TransformerSpec"))
    _refused(good_dir, str(good_dir / "model.bin"), "TransformerSpec", "WhisperSpec")


def test_unknown_dtype_id(tiny, good_dir):
    blob = bytearray(ct2_binary_bytes({"encoder/num_heads": torch.tensor(2, dtype=torch.int16)}))
    # layout: version, spec, revision, count, name, rank=0, dtype id, nbytes, data, aliases
    dtype_at = len(blob) - 4 - 2 - 4 - 1
    assert blob[dtype_at] == 2  # int16
    blob[dtype_at] = 9
    (good_dir / "model.bin").write_bytes(bytes(blob))
    _refused(good_dir, str(good_dir / "model.bin"), "dtype id 9")


def test_missing_part2(tiny, tmp_path):
    d = write_ct2_dir(tiny, tmp_path / "p", n_parts=2)
    (d / "model.bin.part2").unlink()
    # part1 alone parses as truncated: the stream ends inside part1
    _refused(d, str(d / "model.bin.part1"), "truncated", "model.bin.part2 missing?")


def test_gap_in_part_numbers(tiny, tmp_path):
    d = write_ct2_dir(tiny, tmp_path / "p", n_parts=3)
    (d / "model.bin.part2").unlink()
    _refused(d, str(d / "model.bin.part2"), "missing part 2", "part1, part3")


def test_parts_without_part1(tiny, tmp_path):
    d = write_ct2_dir(tiny, tmp_path / "p", n_parts=2)
    (d / "model.bin.part1").unlink()
    _refused(d, str(d / "model.bin.part1"), "missing part 1")


def test_both_whole_and_parts(tiny, tmp_path):
    d = write_ct2_dir(tiny, tmp_path / "p", n_parts=2)
    shutil.copy(d / "model.bin.part1", d / "model.bin")
    _refused(d, str(d / "model.bin"), "both")


@pytest.mark.parametrize("n_vocab", [1000, 51863, 51867])
def test_wrong_vocabulary_size(tmp_path, n_vocab):
    model = random_whisper(tiny_dims(n_vocab=n_vocab, n_layer=1))
    d = write_ct2_dir(model, tmp_path / "v")
    _refused(d, str(d / "model.bin"), f"{n_vocab} rows")


def test_vocabulary_txt_mismatch(good_dir):
    lines = (good_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    (good_dir / "vocabulary.txt").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    _refused(good_dir, str(good_dir / "vocabulary.txt"), f"{len(lines) - 1} tokens")


def test_missing_variable(tiny, good_dir):
    variables = ct2_variables(tiny)
    del variables["decoder/layer_1/ffn/linear_0/bias"]
    (good_dir / "model.bin").write_bytes(ct2_binary_bytes(variables))
    _refused(good_dir, str(good_dir / "model.bin"), "decoder/layer_1/ffn/linear_0/bias")


def test_bad_alignment_heads_in_config(good_dir):
    config = json.loads((good_dir / "config.json").read_text())
    config["alignment_heads"] = [[7, 0]]
    (good_dir / "config.json").write_text(json.dumps(config))
    _refused(good_dir, str(good_dir / "config.json"), "[7, 0]")
    (good_dir / "config.json").write_text("{not json")
    _refused(good_dir, str(good_dir / "config.json"), "JSON")


def test_empty_dir_and_missing_path(tmp_path):
    _refused(tmp_path / "nothing", str(tmp_path / "nothing"), "no such")
    (tmp_path / "empty").mkdir()
    _refused(tmp_path / "empty", str(tmp_path / "empty"), "not a Whisper model")


def test_path_to_model_bin_reads_its_folder(tiny, tmp_path):
    d = write_ct2_dir(tiny, tmp_path / "p", n_parts=2)
    assert _state_diff(tiny, load_whisper(d / "model.bin.part2")) == 0.0
