"""Hybrid CTC/attention in the plugin's ASR model: ctc_weight 0 is the attention model exactly,
w > 0 gives (1 - w) * att + w * ctc on sentencepiece targets from the preprocessor."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from espnet2.train.collate_fn import CommonCollateFn

from twister_plugin.asr.task import TwisterASRTask
from twister_plugin.asr.tokenizer import write_token_list
from twister_plugin.ctc.units import CtcUnits, train_units
from twister_plugin.testing.asr import build_args

TEXTS = ["设定二十九度", "苹果表配apple pay"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hyb")
    return write_token_list(d / "tokens.txt", 51865), train_units(TEXTS + ["你好世界"], d / "u.model")


def _model(token_list, **conf):
    args = TwisterASRTask.get_parser().parse_args(
        build_args(token_list, **conf) + ["--preprocessor", "twister_whisper"])
    torch.manual_seed(0)
    return TwisterASRTask.build_model(args).eval(), args


def _batch(args):
    pre = TwisterASRTask.build_preprocess_fn(args, True)
    rng = np.random.default_rng(0)
    items = [(f"u{i}", pre(f"u{i}", {"speech": rng.standard_normal(8000 * (i + 2)).astype(np.float32), "text": t}))
             for i, t in enumerate(TEXTS)]
    return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)(items)[1]


def test_ctc_weight_zero_is_the_attention_loss_exactly(files):
    token_list, bpe = files
    plain, args = _model(token_list)
    zero, _ = _model(token_list, ctc_weight=0.0, ctc_bpemodel=bpe)
    assert plain.ctc is None and zero.ctc is None
    batch = _batch(args)
    assert "text_ctc" not in batch  # no bpemodel handed over when w = 0
    with torch.no_grad():
        loss, stats, _ = plain(**batch)
        enc, enc_lens = plain.encode(batch["speech"], batch["speech_lengths"])
        att, *_ = plain._calc_att_loss(enc, enc_lens, batch["text"], batch["text_lengths"])
        loss0, _, _ = zero(**batch)
    assert torch.equal(loss.reshape(()), att.reshape(())) and torch.equal(loss, loss0)


def test_hybrid_loss_mixes_attention_and_unit_ctc(files):
    token_list, bpe = files
    hyb, args = _model(token_list, ctc_weight=0.3, ctc_bpemodel=bpe)
    plain, _ = _model(token_list)
    batch = _batch(args)
    units = CtcUnits(bpe)
    assert batch["text_ctc"][1, : batch["text_ctc_lengths"][1]].tolist() == units.encode(TEXTS[1])
    loss, stats, _ = hyb(**batch)
    assert float(stats["loss_att"]) == pytest.approx(float(plain(**batch)[1]["loss_att"]), rel=1e-6)
    assert float(loss) == pytest.approx(0.7 * float(stats["loss_att"]) + 0.3 * float(stats["loss_ctc"]), rel=1e-5)
    loss.backward()
    assert hyb.ctc.head.net[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="text_ctc"):
        hyb(**{k: v for k, v in batch.items() if not k.startswith("text_ctc")})


def test_hybrid_needs_a_unit_model(files):
    token_list, _ = files
    with pytest.raises(ValueError, match="ctc_bpemodel"):
        _model(token_list, ctc_weight=0.3)
