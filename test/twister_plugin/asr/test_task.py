"""The plugin's Whisper ASR task: registration, model build, prompts, forward/backward, LoRA."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from espnet2.train.collate_fn import CommonCollateFn

from twister_plugin.asr.lora import apply_delta, lora_state, merge_lora
from twister_plugin.asr.task import TwisterASRTask
from twister_plugin.asr.tokenizer import TwisterWhisperPreprocessor, WhisperPrompt, token_strings, write_token_list
from twister_plugin.testing.asr import build_args


@pytest.fixture(scope="module")
def token_list(tmp_path_factory):
    return write_token_list(tmp_path_factory.mktemp("tok") / "tokens.txt", 51865)


def _model(token_list, **conf):
    args = TwisterASRTask.get_parser().parse_args(build_args(token_list, **conf))
    torch.manual_seed(0)
    return TwisterASRTask.build_model(args)


def _batch(token_list, texts_langs):
    pre = TwisterWhisperPreprocessor(True, token_list=str(token_list))
    rng = np.random.default_rng(0)
    items = [(f"u{i}", pre(f"u{i}", {"speech": rng.standard_normal(8000 * (i + 1)).astype(np.float32),
                                      "text": t, "lang": lang}))
             for i, (t, lang) in enumerate(texts_langs)]
    return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)(items)[1]


def test_token_list_matches_whisper_vocabulary(token_list):
    lines = token_list.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 51865
    assert lines[50257] == "<|endoftext|>" and lines[50258] == "<|startoftranscript|>"
    assert lines[50260] == "<|zh|>" and lines[50363] == "<|notimestamps|>"
    assert len(token_strings(51864)) == 51864


def test_prompt_follows_language():
    p = WhisperPrompt(51865)
    assert p.encode("你好", "zh")[:3] == [50260, 50359, 50363]
    assert p.encode("hello", "en")[:3] == [50259, 50359, 50363]
    assert p.tok.decode(p.encode("hello", "en")[3:]) == " hello"  # Latin text gets Whisper's leading space
    en = WhisperPrompt(51864)
    assert en.encode("hello", "en")[0] == en.tok.no_timestamps
    with pytest.raises(ValueError, match="English-only"):
        en.encode("你好", "zh")
    with pytest.raises(ValueError, match="not one of Whisper's languages"):
        p.encode("x", "klingon")
    with pytest.raises(ValueError, match="exceed"):
        p.encode("字" * 500, "zh")


def test_build_registers_classes_and_drops_normalize(token_list):
    model = _model(token_list)
    assert type(model).__name__ == "TwisterWhisperASRModel"
    assert "Whisper" in type(model.encoder).__name__ and model.is_encoder_whisper
    assert model.normalize is None  # ESPnet's default utterance_mvn would run on raw audio
    assert model.sos == 50258 and model.eos == 50257


def test_forward_backward_mixed_languages(token_list):
    model = _model(token_list, lsm_weight=0.1)
    batch = _batch(token_list, [("苹果表配apple pay", "zh"), ("hello world", "en")])
    loss, stats, _ = model(**batch)
    loss.backward()
    assert torch.isfinite(loss) and stats["acc"] is not None
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_prompt_tokens_are_not_scored(token_list):
    model = _model(token_list).eval()
    batch = _batch(token_list, [("你好", "zh")])
    with torch.no_grad():
        loss_masked = model(**batch)[0]
        model.prompt_loss = True
        loss_all = model(**batch)[0]
    assert loss_all > loss_masked  # the 3 prompt targets add loss when scored


def test_fused_loss_matches_plain_without_smoothing(token_list):
    plain, fused = _model(token_list), _model(token_list, fused_loss="true")
    fused.load_state_dict(plain.state_dict())
    batch = _batch(token_list, [("今天天气很好", "zh"), ("good morning", "en")])
    a, b = plain(**batch)[0], fused(**batch)[0]
    assert torch.allclose(a, b, rtol=1e-4), (a, b)


def test_freeze_encoder_and_last_layers(token_list):
    args = TwisterASRTask.get_parser().parse_args(
        build_args(token_list) + ["--encoder_conf", "trainable_layers=0", "--decoder_conf", "trainable_layers=1"])
    model = TwisterASRTask.build_model(args)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    dec = model.decoder.decoders
    assert all(p.requires_grad for p in dec.blocks[-1].parameters())
    assert not any(p.requires_grad for p in dec.blocks[0].parameters())


def test_lora_delta_is_small_and_reapplies(token_list):
    model = _model(token_list, lora_rank=4)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_b" in n:
                p.normal_()
    delta = lora_state(model)
    n_delta = sum(t.numel() for t in delta.values())
    n_all = sum(p.numel() for p in model.parameters())
    assert n_delta < 0.05 * n_all
    other = _model(token_list, lora_rank=4)
    other.load_state_dict({k: v for k, v in model.state_dict().items() if ".lora_" not in k}, strict=False)
    apply_delta(other, delta)
    batch = _batch(token_list, [("你好", "zh")])
    model.eval(), other.eval()
    with torch.no_grad():
        before = model(**batch)[0]
        assert torch.allclose(before, other(**batch)[0])
        merge_lora(other)
        assert torch.allclose(before, other(**batch)[0], rtol=1e-4)


def test_base_delta_size_is_a_few_mb():
    from twister_plugin.asr.lora import add_lora
    from twister_plugin.asr.modules import _new
    from twister_plugin.asr.sizes import dims_for

    dec = _new("decoder", dims_for("base"))
    add_lora(dec, rank=8, alpha=16, targets=("query", "value"))
    mb = sum(t.numel() for t in lora_state(dec).values()) * 2 / 2**20  # fp16
    assert 0.1 < mb < 5, mb


def test_specaugment_only_in_training():
    from twister_plugin.asr.modules import TwisterWhisperEncoder

    torch.manual_seed(0)
    enc = TwisterWhisperEncoder(size="test", specaug_conf=dict(
        apply_time_warp=False, apply_freq_mask=True, freq_mask_width_range=[10, 20], num_freq_mask=2,
        apply_time_mask=True, time_mask_width_range=[20, 50], num_time_mask=2))
    x = torch.randn(2, 32000)
    lens = torch.tensor([32000, 16000])
    enc.eval()
    with torch.no_grad():
        a, olens, _ = enc(x, lens)
        b, _, _ = enc(x, lens)
        enc.train()
        c, _, _ = enc(x, lens)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert a.shape == (2, 1500, 64) and olens.tolist() == [1500, 1500]
