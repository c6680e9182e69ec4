"""avoid_cudnn_attention: Whisper's ASR model build (training, inference) takes cuDNN out of SDPA,
since it builds a plan per new shape; TWISTER_CUDNN_SDPA=1 keeps torch's default."""
from __future__ import annotations

import pytest
import torch

from twister_plugin.asr.task import TwisterASRTask
from twister_plugin.asr.tokenizer import write_token_list
from twister_plugin.testing.asr import build_args
from twister_plugin.utils.attention import avoid_cudnn_attention


@pytest.fixture
def cudnn_sdp_on():
    before = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(True)
    yield
    torch.backends.cuda.enable_cudnn_sdp(before)


def test_switches_cudnn_off_and_leaves_the_other_backends(cudnn_sdp_on, monkeypatch):
    monkeypatch.delenv("TWISTER_CUDNN_SDPA", raising=False)
    others = (torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.mem_efficient_sdp_enabled(),
              torch.backends.cuda.math_sdp_enabled())
    assert avoid_cudnn_attention() is True
    assert not torch.backends.cuda.cudnn_sdp_enabled()
    assert (torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.mem_efficient_sdp_enabled(),
            torch.backends.cuda.math_sdp_enabled()) == others
    assert avoid_cudnn_attention() is False  # already off


def test_env_keeps_torch_default(cudnn_sdp_on, monkeypatch):
    monkeypatch.setenv("TWISTER_CUDNN_SDPA", "1")
    assert avoid_cudnn_attention() is False
    assert torch.backends.cuda.cudnn_sdp_enabled()


def test_asr_model_build_switches_it_off(cudnn_sdp_on, monkeypatch, tmp_path):
    monkeypatch.delenv("TWISTER_CUDNN_SDPA", raising=False)
    tl = write_token_list(tmp_path / "tokens.txt", 51865)
    TwisterASRTask.build_model(TwisterASRTask.get_parser().parse_args(build_args(tl)))
    assert not torch.backends.cuda.cudnn_sdp_enabled()
