"""LM task over Whisper tokens: training a tiny LM writes an exp dir that the decoder can fuse,
also through asr_inference's YAML."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from twister_plugin.bin import asr_inference, lm_train
from twister_plugin.decode import BatchedDecoder, DecoderConfig, batched
from twister_plugin.lm.fusion import ShallowFusion, load_lm
from twister_plugin.lm.task import EOT_NAME, LMTextError, lm_token_strings
from twister_plugin.testing.data import shared_data
from twister_plugin.testing.decode import REPO, ending_model, save_model, tones

pytestmark = pytest.mark.skipif(shared_data() is None, reason="needs shared/data")
CONF = REPO / "egs2" / "twister" / "asr1" / "conf"


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    lines = (shared_data() / "text" / "zh_news_open.txt").read_text(encoding="utf-8").splitlines()
    tmp = tmp_path_factory.mktemp("lm")
    (tmp / "train.txt").write_text("\n".join(lines[:300]) + "\n", encoding="utf-8")
    (tmp / "valid.txt").write_text("\n".join(lines[300:340]) + "\n", encoding="utf-8")
    lm_train.main(["--config", str(CONF / "lm" / "tiny.yaml"), "--train_text", str(tmp / "train.txt"),
                   "--valid_text", str(tmp / "valid.txt"), "--output_dir", str(tmp / "exp")])
    return tmp / "exp"


def test_training_writes_exp_dir_with_eot_as_sos_eos(exp):
    conf = yaml.safe_load((exp / "config.yaml").read_text(encoding="utf-8"))
    assert conf["token_list"] == lm_token_strings(51865) and conf["token_list"][-1] == EOT_NAME
    assert len(conf["token_list"]) == 50258  # Whisper ids 0..eot: ESPnet's sos/eos = eot
    assert (exp / "valid.loss.best.pth").exists()
    assert len((exp / "data" / "train" / "text_shape").read_text().splitlines()) == 300
    lm = load_lm(exp)
    logp, _ = lm.batch_score(torch.tensor([[50257, 0, 1]]), [None], None)
    assert logp.shape == (1, 50258) and torch.allclose(logp.exp().sum(), torch.tensor(1.0))


def test_decoder_fuses_trained_lm(exp):
    waves = tones(2, seed=3)
    plain = BatchedDecoder(ending_model(), DecoderConfig(search="beam", beam_size=2,
                                                         max_new_tokens=8)).decode_batch(waves, ["zh"] * 2)
    zero = BatchedDecoder(ending_model(), DecoderConfig(search="beam", beam_size=2, max_new_tokens=8,
                                                        lm_path=str(exp))).decode_batch(waves, ["zh"] * 2)
    fused = BatchedDecoder(ending_model(), DecoderConfig(search="beam", beam_size=2, max_new_tokens=8,
                                                         lm_path=str(exp), lm_weight=5.0))
    assert fused.lm is not None
    out = fused.decode_batch(waves, ["zh"] * 2)
    assert [r.tokens for r in zero] == [r.tokens for r in plain]
    assert [r.tokens for r in out] != [r.tokens for r in plain]


def test_asr_inference_reads_lm_weight_from_yaml(exp, tmp_path, monkeypatch):
    conf = yaml.safe_load((CONF / "decode_lm.yaml").read_text(encoding="utf-8"))
    assert conf["lm_weight"] > 0 and DecoderConfig(**{k: v for k, v in conf.items()
                                                     if k != "batch_size"}).lm_weight == conf["lm_weight"]
    conf.update(lm_path=str(exp), max_new_tokens=4, beam_size=2)
    (tmp_path / "decode.yaml").write_text(yaml.safe_dump(conf), encoding="utf-8")
    model = save_model(ending_model(), tmp_path / "tiny.pt")
    manifest = shared_data() / "zh" / "aishell1_dev_S0724" / "manifest.tsv"
    loaded = []
    monkeypatch.setattr(batched, "load_lm", lambda path, device: loaded.append(path) or load_lm(path, device))
    assert asr_inference.main(["--data", str(manifest), "--model", str(model), "--device", "cpu",
                               "--out", str(tmp_path / "out"), "--config", str(tmp_path / "decode.yaml")]) == 0
    assert loaded == [str(exp)]  # the YAML's lm_weight > 0 made the decoder load the LM
    lines = (tmp_path / "out" / "decode.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5 and all(len(json.loads(x)["tokens"]) <= 4 for x in lines)


def test_refused_inputs(tmp_path):
    (tmp_path / "bad.txt").write_text("好\n\n", encoding="utf-8")
    with pytest.raises(LMTextError, match=r"bad.txt:2: empty"):
        lm_train.write_split(tmp_path / "bad.txt", tmp_path / "d", 51865)
    with pytest.raises(ValueError, match="lm_path"):
        DecoderConfig(lm_weight=0.5)
    with pytest.raises(ValueError, match="lm_weight"):
        DecoderConfig(lm_path="x", lm_weight=-1.0)
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        load_lm(tmp_path)


def test_fusion_state_follows_reordered_rows(exp):
    lm = load_lm(exp)
    moved, fresh = ShallowFusion(lm, 50257), ShallowFusion(lm, 50257)
    first = torch.tensor([[11], [22], [33]])  # [R, n]: three rows, one token each
    moved.start(3, torch.device("cpu"))
    moved.advance(None, first)
    src = torch.tensor([2, 0, 0, 1])  # beam re-orders, duplicates and grows the rows
    second = torch.cat([first[src], torch.tensor([[5], [6], [7], [8]])], dim=1)
    moved.advance(src, second)
    fresh.start(4, torch.device("cpu"))
    fresh.advance(None, second[:, :1])
    fresh.advance(None, second)
    assert torch.allclose(moved.logp, fresh.logp, atol=1e-5)
    whisper_lp = torch.log_softmax(torch.randn(4, 51865), dim=-1)
    fused = ShallowFusion(lm, 50257, weight=0.5, length_bonus=0.25)
    fused.start(4, torch.device("cpu"))
    out = fused.fuse(whisper_lp)
    assert torch.allclose(out[:, :50257], whisper_lp[:, :50257] + 0.5 * fused.logp[:, :50257] + 0.25)
    assert torch.allclose(out[:, 50257], whisper_lp[:, 50257] + 0.5 * fused.logp[:, 50257])  # eos
    assert torch.isinf(out[:, 50258:]).all()  # specials: not in the LM, suppressed
