"""Export a tiny random Whisper as .pt / Hugging Face / CTranslate2 and read it back.

Float exports read back bit-exactly (float32; float16 = the model rounded to float16); int8
reads back within half a quantisation step of every row. Refused requests never touch the
output and never leave a staging folder behind.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from twister_plugin.testing.whisper import random_mel, random_whisper, tiny_dims
from twister_plugin.whisper import load_whisper, save_checkpoint
from twister_plugin.whisper.ct2_binary import read_ct2_binary
from twister_plugin.whisper.export import (
    ExportError, check_request, export_whisper, readback_error)
from twister_plugin.whisper.weights import set_alignment_mask

torch.set_num_threads(1)
FLOAT_FORMATS = [("pt", "float32"), ("pt", "float16"), ("hf", "float32"), ("hf", "float16"),
                 ("ct2", "float32"), ("ct2", "float16"), ("ct2", "bfloat16")]


@pytest.fixture(scope="module")
def tiny():
    return random_whisper(tiny_dims(), seed=11)


def _out(tmp_path: Path, fmt: str, dtype: str = "float16") -> Path:
    return tmp_path / (f"{fmt}_{dtype}.pt" if fmt == "pt" else f"{fmt}_{dtype}")


def _heads(model) -> list[list[int]]:
    return model.alignment_heads.to_dense().nonzero().tolist()


@pytest.mark.parametrize("fmt,dtype", FLOAT_FORMATS)
def test_float_round_trip_is_exact(tiny, tmp_path, fmt, dtype):
    out = export_whisper(tiny, _out(tmp_path, fmt, dtype), fmt, dtype)
    back = load_whisper(out)
    assert back.dims == tiny.dims
    cast = getattr(torch, dtype)
    for name, t in tiny.state_dict().items():
        assert torch.equal(back.state_dict()[name], t.to(cast).float()), name
    assert _heads(back) == _heads(tiny) == [[0, 1], [1, 0]]
    assert readback_error(tiny, out, dtype) == 0.0


def test_float32_exports_compute_the_same_logits(tiny, tmp_path):
    mel, tokens = random_mel(tiny.dims), torch.tensor([[50258, 50260, 50359, 50363, 220]])
    with torch.no_grad():
        want = tiny(mel, tokens)
        for fmt in ("pt", "hf", "ct2"):
            back = load_whisper(export_whisper(tiny, _out(tmp_path, fmt, "x"), fmt, "float32"))
            assert torch.equal(back(mel, tokens), want), fmt


@pytest.mark.parametrize("dtype", ["int8", "int8_float16"])
def test_int8_within_half_a_step_per_row(tiny, tmp_path, dtype):
    out = export_whisper(tiny, tmp_path / dtype, "ct2", dtype)
    binary = read_ct2_binary(out)
    stored = binary.variables
    assert stored["decoder/embeddings/weight"].dtype == torch.int8
    assert stored["decoder/embeddings/weight_scale"].dtype == torch.float32
    assert binary.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    back = load_whisper(out).state_dict()
    worst = 0.0
    for name, t in tiny.state_dict().items():
        if t.dim() < 2 or "positional" in name:  # biases, norms, position tables: float
            atol = 1e-3 if dtype == "int8_float16" else 0.0
            assert torch.allclose(back[name], t, rtol=1e-3, atol=atol), name
            continue
        step = t.reshape(t.shape[0], -1).abs().amax(dim=1) / 127  # one int8 step per row
        err = (back[name] - t).reshape(t.shape[0], -1).abs().amax(dim=1)
        assert bool((err <= step / 2 * 1.001 + 1e-8).all()), name
        worst = max(worst, float((err / step).max()))
    print(f"{dtype}: worst error = {worst:.3f} of a quantisation step")
    assert 0.4 < worst <= 0.5 * 1.001  # float rounding of the scale


def test_ct2_export_runs_in_ctranslate2(tiny, tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    out = export_whisper(tiny, tmp_path / "ct2", "ct2", "float32")
    model = ctranslate2.models.Whisper(str(out), device="cpu", compute_type="float32",
                                       intra_threads=1)
    assert model.is_multilingual and model.n_mels == tiny.dims.n_mels
    mel = random_mel(tiny.dims)
    got = np.array(model.encode(ctranslate2.StorageView.from_array(mel.numpy())))
    with torch.no_grad():
        want = tiny.encoder(mel).numpy()
    assert np.abs(got - want).max() < 1e-4


def test_ct2_folder_files(tiny, tmp_path):
    out = export_whisper(tiny, tmp_path / "ct2", "ct2")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", "model.bin", "preprocessor_config.json", "tokenizer.json",
                     "vocabulary.txt"]
    config = json.loads((out / "config.json").read_text())
    assert config["alignment_heads"] == [[0, 1], [1, 0]]
    assert config["lang_ids"] == list(range(50259, 50358))  # 99 languages
    assert config["suppress_ids_begin"] == [220, 50257]
    assert 50258 in config["suppress_ids"] and 50363 not in config["suppress_ids"]
    vocab = (out / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    assert len(vocab) == tiny.dims.n_vocab + 1 and vocab[-1] == ""
    assert vocab[50257:50260] == ["<|endoftext|>", "<|startoftranscript|>", "<|en|>"]
    assert vocab[-2] == "<|30.00|>" and vocab[220] == "Ġ"
    pre = json.loads((out / "preprocessor_config.json").read_text())
    assert (pre["feature_size"], pre["sampling_rate"], pre["hop_length"]) == (80, 16000, 160)


def test_hf_folder_files(tiny, tmp_path):
    out = export_whisper(tiny, tmp_path / "hf", "hf")
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "whisper" and config["tie_word_embeddings"] is True
    assert (config["d_model"], config["encoder_layers"], config["decoder_attention_heads"],
            config["num_mel_bins"], config["vocab_size"]) == (64, 2, 4, 80, 51865)
    assert (config["decoder_start_token_id"], config["eos_token_id"], config["pad_token_id"],
            config["bos_token_id"]) == (50258, 50257, 50257, 50257)
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["lang_to_id"]["<|zh|>"] == 50260 and gen["task_to_id"]["transcribe"] == 50359
    assert gen["no_timestamps_token_id"] == 50363 and gen["is_multilingual"] is True
    assert gen["alignment_heads"] == [[0, 1], [1, 0]] and gen["forced_decoder_ids"] is None
    assert gen["max_length"] == 448 and gen["begin_suppress_tokens"] == [220, 50257]
    merges = (out / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[:2] == ["#version: 0.2", "Ġ t"] and len(merges) == 50001
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 50258 and vocab["<|endoftext|>"] == 50257 and vocab["Ġthe"] == 264


def test_english_only_ids(tmp_path):
    model = random_whisper(tiny_dims(n_vocab=51864, n_layer=1), seed=2)
    out = export_whisper(model, tmp_path / "hf", "hf", "float32")
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["is_multilingual"] is False and "lang_to_id" not in gen
    assert (gen["decoder_start_token_id"], gen["eos_token_id"]) == (50257, 50256)
    assert gen["no_timestamps_token_id"] == 50362


# ---------------------------------------------------------------- refused requests

def test_unknown_format_and_dtype(tiny, tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'onnx'.*pt, hf, ct2"):
        export_whisper(tiny, tmp_path / "x", "onnx")
    with pytest.raises(ExportError, match="dtype 'int8' is not available for pt"):
        export_whisper(tiny, tmp_path / "x.pt", "pt", "int8")
    with pytest.raises(ExportError, match="dtype 'int4' is not available for ct2"):
        export_whisper(tiny, tmp_path / "x", "ct2", "int4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["pt", "hf", "ct2"])
def test_existing_output_needs_force(tiny, tmp_path, fmt):
    out = export_whisper(tiny, _out(tmp_path, fmt), fmt)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ExportError, match=f"{out}: already exists; pass --force"):
        export_whisper(tiny, out, fmt)
    other = random_whisper(tiny_dims(), seed=12)
    export_whisper(other, out, fmt, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no staging or old copy left
    key = "decoder.token_embedding.weight"
    assert torch.equal(load_whisper(out).state_dict()[key],
                       other.state_dict()[key].half().float())


def test_force_never_replaces_unrelated_things(tiny, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("precious")
    with pytest.raises(ExportError, match="not an exported model folder"):
        export_whisper(tiny, notes, "ct2", force=True)
    assert (notes / "thesis.tex").read_text() == "precious"
    with pytest.raises(ExportError, match="is a folder, but a pt export writes a file"):
        export_whisper(tiny, notes, "pt", force=True)
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ExportError, match="is a file, but a hf export writes a folder"):
        export_whisper(tiny, tmp_path / "file.bin", "hf", force=True)


def test_unwritable_destination(tiny, tmp_path):
    (tmp_path / "plain_file").write_text("not a folder")
    with pytest.raises(ExportError, match="cannot write here: .*plain_file is not a folder"):
        export_whisper(tiny, tmp_path / "plain_file" / "sub" / "ct2", "ct2")
    with pytest.raises(ExportError, match="cannot write here"):
        check_request(tmp_path / "plain_file" / "m.pt", "pt", "float16")


def test_failed_write_leaves_nothing(tiny, tmp_path, monkeypatch):
    from twister_plugin.whisper import export

    def broken(model, out, dtype):
        (out / "model.bin").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(export.TARGETS, "ct2", export.TARGETS["ct2"].__class__(
        "ct2", "broken", ("float16",), True, broken))
    with pytest.raises(ExportError, match="ct2: cannot write the ct2 export .No space left"):
        export_whisper(tiny, tmp_path / "ct2", "ct2")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- command line

def test_cli_exports_a_checkpoint(tiny, tmp_path, capsys):
    from twister_plugin.bin.export_whisper import main

    src = tmp_path / "src.pt"
    save_checkpoint(tiny, src, dtype=torch.float32)
    main(["--model", str(src), "--format", "ct2", "--out", str(tmp_path / "ct2"),
          "--dtype", "int8"])
    assert "read back: max |exported - model| = " in capsys.readouterr().err
    back = load_whisper(tmp_path / "ct2")
    assert readback_error(tiny, tmp_path / "ct2", "int8") < 2e-3
    assert _heads(back) == _heads(tiny)
    with pytest.raises(SystemExit, match="already exists; pass --force"):
        main(["--model", str(src), "--format", "ct2", "--out", str(tmp_path / "ct2")])
    with pytest.raises(SystemExit, match="no such file or folder"):
        main(["--model", str(tmp_path / "missing.pt"), "--format", "hf", "--out",
              str(tmp_path / "hf")])


def test_cli_base_gives_alignment_heads(tiny, tmp_path):
    from twister_plugin.bin.export_whisper import main

    src, base = tmp_path / "src.pt", tmp_path / "base.pt"
    save_checkpoint(tiny, src)
    other = random_whisper(tiny_dims(), seed=3)
    heads = torch.zeros(2, 4, dtype=torch.bool)
    heads[1, 3] = True
    set_alignment_mask(other, heads)
    save_checkpoint(other, base)
    main(["--model", str(src), "--format", "pt", "--out", str(tmp_path / "o.pt"),
          "--base", str(base)])
    assert _heads(load_whisper(tmp_path / "o.pt")) == [[1, 3]]
    small = tmp_path / "small.pt"
    save_checkpoint(random_whisper(tiny_dims(n_layer=1)), small)
    with pytest.raises(SystemExit, match="small.pt: dims .* differ from the model's"):
        main(["--model", str(src), "--format", "pt", "--out", str(tmp_path / "o2.pt"),
              "--base", str(small)])


def test_cli_refuses_unknown_format(tmp_path, capsys):
    from twister_plugin.bin.export_whisper import main

    with pytest.raises(SystemExit):
        main(["--model", "x.pt", "--format", "onnx", "--out", str(tmp_path / "o")])
    assert "invalid choice: 'onnx'" in capsys.readouterr().err



def test_hf_names_invert_the_reader(tiny):
    from twister_plugin.testing.whisper import hf_state_dict
    from twister_plugin.whisper.hf import hf_to_openai_name
    from twister_plugin.whisper.hf_writer import hf_tensors

    ours = hf_tensors(tiny, torch.float32)
    assert sorted(ours) == sorted(hf_state_dict(tiny))  # the test helper spells names itself
    assert {hf_to_openai_name(n) for n in ours} == set(tiny.state_dict())


def test_vocabulary_without_a_tokenizer_is_refused_for_folders(tmp_path):
    odd = random_whisper(tiny_dims(n_vocab=1000, n_layer=1))
    for fmt in ("hf", "ct2"):
        with pytest.raises(ExportError, match="no Whisper tokenizer has a vocabulary of 1000"):
            export_whisper(odd, tmp_path / fmt, fmt)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in read-only folders")
def test_read_only_folder_is_refused(tiny, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="no write permission in .*locked"):
            export_whisper(tiny, locked / "ct2", "ct2")
    finally:
        locked.chmod(0o700)


def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "twister_plugin.bin.export_whisper", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Usage:" in done.stdout and "--format" in done.stdout
