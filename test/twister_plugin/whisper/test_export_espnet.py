"""Export from an ESPnet exp dir of our fine-tuning (LoRA merged, base alignment heads kept).

Builds one exp dir: a test-size "base" Whisper (random, with its own alignment heads) is
fine-tuned with LoRA (rank 2) for one epoch on 4 AISHELL utterances of shared/data (~20 s),
then exported to ct2 / hf / pt through the command line. Skipped when shared/data is absent.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from twister_plugin.asr.sizes import dims_for
from twister_plugin.testing.whisper import random_whisper
from twister_plugin.whisper import load_whisper, save_checkpoint
from twister_plugin.whisper.export import export_whisper
from twister_plugin.whisper.weights import set_alignment_mask

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / ".." / "shared" / "data" / "zh" / "aishell_sample_S0150"
CONFIG = ROOT / "egs2" / "twister" / "asr1" / "conf" / "asr" / "finetune_test.yaml"
LORA_RANK, LORA_ALPHA = 2, 16.0  # alpha: the model's default

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """(exp dir, base checkpoint path, base model) after one LoRA epoch."""
    from twister_plugin.data.kaldi import write_kaldi_dir
    from twister_plugin.data.manifest import read_manifest

    if not (DATA / "manifest.tsv").is_file():
        pytest.skip(f"{DATA} absent")
    tmp = tmp_path_factory.mktemp("espnet")
    dd = read_manifest(DATA / "manifest.tsv")
    write_kaldi_dir(dd.subset(sorted(dd.utt2dur, key=dd.utt2dur.get)[:4]), tmp / "data")
    base = random_whisper(dims_for("test"), seed=5)
    heads = torch.zeros(2, 2, dtype=torch.bool)
    heads[1, 0] = True
    set_alignment_mask(base, heads)
    save_checkpoint(base, tmp / "base.pt", dtype=torch.float32)
    from twister_plugin.bin.asr_train import main as asr_train

    asr_train(["--config", str(CONFIG), "--train_data", str(tmp / "data"),
               "--valid_data", str(tmp / "data"), "--output_dir", str(tmp / "exp"),
               "--init", str(tmp / "base.pt"), "--ngpu", "0", "--max_epoch", "1",
               "--model_conf", f"lora_rank={LORA_RANK}"])
    assert (tmp / "exp" / "valid.loss.best.pth").is_file()
    return tmp / "exp", tmp / "base.pt", base


def _merged_query(exp_dir: Path) -> torch.Tensor:
    """Encoder block 0 query weight + LoRA delta, computed from the raw ESPnet checkpoint."""
    sd = torch.load(exp_dir / "valid.loss.best.pth", map_location="cpu", weights_only=True)
    prefix = "encoder.encoders.blocks.0.attn.query."
    a, b = sd[prefix + "lora_a"], sd[prefix + "lora_b"]  # A: [r, in], B: [out, r]
    assert b.abs().max() > 0  # the adapter was trained
    return sd[prefix + "base.weight"] + LORA_ALPHA / LORA_RANK * (b @ a)


@pytest.fixture(scope="module")
def reference(exp):
    """The exp dir as openai-whisper (LoRA merged by load_any)."""
    from twister_plugin.asr.inference import load_any

    return load_any(exp[0])


def test_ct2_export_of_a_lora_exp_dir(exp, reference, tmp_path):
    from twister_plugin.bin.export_whisper import main

    exp_dir, _, base = exp
    out = tmp_path / "ct2"
    main(["--model", str(exp_dir), "--format", "ct2", "--out", str(out), "--dtype", "float32"])
    exported = load_whisper(out)
    for name, t in reference.state_dict().items():
        assert torch.equal(exported.state_dict()[name], t), name
    query = exported.state_dict()["encoder.blocks.0.attn.query.weight"]
    assert torch.allclose(query, _merged_query(exp_dir), atol=1e-6)
    assert not torch.allclose(query, base.state_dict()["encoder.blocks.0.attn.query.weight"])
    # an exp dir stores no alignment heads: they come from its --init checkpoint
    assert exported.alignment_heads.to_dense().nonzero().tolist() == [[1, 0]]


def test_hf_export_of_the_exp_dir_with_base(exp, reference, tmp_path):
    from twister_plugin.bin.export_whisper import main

    exp_dir, base_path, _ = exp
    main(["--model", str(exp_dir), "--format", "hf", "--out", str(tmp_path / "hf"),
          "--base", str(base_path)])
    exported = load_whisper(tmp_path / "hf")
    for name, t in reference.state_dict().items():  # float16 export: the model rounded
        assert torch.equal(exported.state_dict()[name], t.half().float()), name
    assert exported.alignment_heads.to_dense().nonzero().tolist() == [[1, 0]]
    default = reference.alignment_heads.to_dense().nonzero().tolist()
    assert default == [[1, 0], [1, 1]]  # without a base: openai's default, the last half


def test_pt_export_of_the_loaded_exp_dir(reference, tmp_path):
    out = export_whisper(reference, tmp_path / "m.pt", "pt", "float32")
    import whisper

    model = whisper.load_model(str(out), device="cpu")  # openai-whisper reads it as well
    for name, t in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], t), name


def test_exp_dir_without_model_file_is_refused(exp, tmp_path):
    from twister_plugin.bin.export_whisper import main

    broken = tmp_path / "broken_exp"
    broken.mkdir()
    (broken / "config.yaml").write_text((exp[0] / "config.yaml").read_text())
    with pytest.raises(SystemExit, match="broken_exp: no model file"):
        main(["--model", str(broken), "--format", "ct2", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
