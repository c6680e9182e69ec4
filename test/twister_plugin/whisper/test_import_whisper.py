"""``python -m twister_plugin.bin.import_whisper`` turns a CTranslate2 folder into a .pt."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from twister_plugin.bin import import_whisper
from twister_plugin.testing.whisper import random_whisper, write_ct2_dir
from twister_plugin.whisper import WhisperFormatError, load_whisper

torch.set_num_threads(1)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_import_split_ct2_dir(tmp_path, dtype):
    tiny = random_whisper(seed=5)
    src = write_ct2_dir(tiny, tmp_path / "ct2", "float32", n_parts=2)
    out = tmp_path / "out" / "tiny.pt"
    import_whisper.main(["--src", str(src), "--out", str(out), "--dtype", dtype, "--name", "t"])
    raw = torch.load(out, weights_only=True)
    assert raw["model_state_dict"]["encoder.conv1.weight"].dtype == getattr(torch, dtype)
    loaded = load_whisper(out)
    tol = 0.0 if dtype == "float32" else 1e-3
    for name, t in tiny.state_dict().items():
        assert (loaded.state_dict()[name] - t).abs().max() <= tol, name
    assert loaded.alignment_heads.to_dense().nonzero().tolist() == [[0, 1], [1, 0]]


def test_bad_source_leaves_no_output(tmp_path):
    (tmp_path / "ct2").mkdir()
    (tmp_path / "ct2" / "model.bin.part2").write_bytes(b"x")
    with pytest.raises(WhisperFormatError, match="model.bin.part1"):
        import_whisper.main(["--src", str(tmp_path / "ct2"), "--out", str(tmp_path / "o.pt")])
    assert not (tmp_path / "o.pt").exists()


def test_module_entry_point_help():
    res = subprocess.run([sys.executable, "-m", "twister_plugin.bin.import_whisper", "--help"],
                         capture_output=True, text=True, check=True)
    assert "--src" in res.stdout and "--dtype" in res.stdout
