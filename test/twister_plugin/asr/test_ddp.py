"""Data-parallel fine-tuning: a 2-process gloo DDP step of the plugin's ASR model equals the
single-process step on the same global batch; ESPnet's launcher options reach the trainer."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from espnet2.train.distributed_utils import resolve_distributed_mode

from twister_plugin.asr.tokenizer import write_token_list
from twister_plugin.bin import asr_train
from twister_plugin.testing.asr import SHARED, build_args
from twister_plugin.testing.ddp import build_model, gloo_worker, rank_slice, s0150_items, single_step

S0150 = SHARED / "zh" / "aishell_sample_S0150" / "manifest.tsv"
RECIPE = Path(__file__).resolve().parents[3] / "egs2" / "twister" / "asr1"
LR = 0.1  # SGD (see gloo_worker)


@pytest.fixture(scope="module")
def token_list(tmp_path_factory):
    return write_token_list(tmp_path_factory.mktemp("tok") / "tokens.txt", 51865)


@pytest.fixture(scope="module")
def items(token_list):
    if not S0150.exists():
        pytest.skip(f"{S0150} absent")
    return s0150_items(S0150, token_list, n=5, max_seconds=6.0)  # odd: ranks get 3 and 2


def _ddp_vs_single(tmp_path, model_args, items):
    torch.manual_seed(0)
    state = build_model(model_args).state_dict()
    ref = single_step(model_args, state, items, LR)
    # fork: the workers inherit the imports (spawn would re-import ESPnet, ~10 s a process)
    args = (2, str(tmp_path / "store"), model_args, state, items, LR, str(tmp_path))
    mp.start_processes(gloo_worker, args=args, nprocs=2, join=True, start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    return state, ref, ranks


def test_two_process_step_equals_single_process(tmp_path, token_list, items):
    model_args = build_args(token_list, lsm_weight=0.1)
    state, ref, ranks = _ddp_vs_single(tmp_path, model_args, items)
    assert ranks[0]["loss"] == pytest.approx(ref["loss"], rel=1e-6)  # float32 sums in another order
    assert ranks[1]["loss"] == ranks[0]["loss"]  # all-reduced: the same global-batch loss
    assert ref["grads"].keys() == ranks[0]["grads"].keys() and len(ref["grads"]) > 20
    for name, g in ref["grads"].items():
        for r in ranks:
            assert torch.allclose(r["grads"][name], g, atol=1e-6, rtol=1e-5), name
    for name, p in ref["params"].items():
        for r in ranks:
            assert torch.allclose(r["params"][name], p, atol=1e-6, rtol=0), name
    moved = [n for n, p in ref["params"].items() if not torch.equal(p, state[n])]
    assert len(moved) > 20  # the optimiser step really changed the weights


def test_rank_slices_follow_espnet(items):
    # ESPnet splits a global batch round robin; the ranks see disjoint utterances.
    a, b = rank_slice(items, 0, 2), rank_slice(items, 1, 2)
    assert [u for u, _ in a] == [items[0][0], items[2][0], items[4][0]]
    assert not {u for u, _ in a} & {u for u, _ in b}
    with pytest.raises(ValueError, match="smaller than the world size"):
        rank_slice(items[:1], 0, 2)


def _resolved(argv: list[str], env: dict, monkeypatch) -> argparse.Namespace:
    from twister_plugin.asr.task import TwisterASRTask

    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    args = TwisterASRTask.get_parser().parse_args(["--token_list", "t", "--output_dir", "o"] + argv)
    resolve_distributed_mode(args)
    return args


def test_espnet_launch_modes(monkeypatch):
    # --ngpu 2 alone: ESPnet's default is one process with DataParallel, not DDP.
    a = _resolved(["--ngpu", "2"], {}, monkeypatch)
    assert not a.distributed
    # --ngpu 2 --multiprocessing_distributed true: ESPnet spawns one process per GPU (DDP, nccl).
    a = _resolved(["--ngpu", "2", "--multiprocessing_distributed", "true"], {}, monkeypatch)
    assert a.distributed and a.multiprocessing_distributed and a.dist_backend == "nccl"
    # CPU: ESPnet's own spawn needs GPUs, so --ngpu 0 falls back to one process ...
    a = _resolved(["--ngpu", "0", "--multiprocessing_distributed", "true"], {}, monkeypatch)
    assert not a.distributed
    # ... but an external launcher (torchrun's env) gives CPU DDP with --dist_backend gloo.
    env = dict(WORLD_SIZE="2", RANK="1", LOCAL_RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29555")
    a = _resolved(["--ngpu", "0", "--dist_backend", "gloo"], env, monkeypatch)
    assert a.distributed and not a.multiprocessing_distributed and a.dist_backend == "gloo"


def test_asr_train_passes_distributed_options_through(tmp_path, monkeypatch):
    seen = {}
    fake_main = classmethod(lambda cls, cmd: seen.setdefault("cmd", cmd))
    monkeypatch.setattr(asr_train.TwisterASRTask, "main", fake_main)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("u1 /dev/null\n")
    (data / "text").write_text("u1 你好\n")
    (data / "utt2dur").write_text("u1 1.0\n")
    conf = tmp_path / "c.yaml"
    conf.write_text("encoder_conf: {size: test}\n")
    extra = ["--ngpu", "2", "--multiprocessing_distributed", "true", "--dist_backend", "nccl"]
    asr_train.main(["--config", str(conf), "--train_data", str(data), "--valid_data", str(data),
                    "--output_dir", str(tmp_path / "exp")] + extra)
    assert seen["cmd"][-len(extra):] == extra


def _asr_train(cwd, out: str, launcher: list[str], extra: list[str]) -> str:
    cmd = launcher + ["-m", "twister_plugin.bin.asr_train", "--config", "c.yaml",
                      "--train_data", "data", "--valid_data", "data", "--output_dir", out, "--ngpu", "0", "--seed", "0"] + extra
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    return next(line for line in p.stderr.splitlines() if "1epoch results" in line)


@pytest.mark.slow  # ~60 s: torchrun starts two ESPnet processes
def test_espnet_trainer_under_torchrun_equals_single_process(tmp_path):
    """The whole ESPnet path on CPU: torchrun (2 ranks, gloo, global batch 4 split 2+2) trains
    the same model as one process (AdamW, 2 steps)."""
    if not S0150.exists():
        pytest.skip(f"{S0150} absent")
    from twister_plugin.testing.asr import s0150_dir

    s0150_dir(tmp_path / "data", 8)
    conf = (RECIPE / "conf" / "asr" / "finetune_test.yaml").read_text()
    (tmp_path / "c.yaml").write_text(conf.replace("max_epoch: 2", "max_epoch: 1"))
    py = [sys.executable]
    single = _asr_train(tmp_path, "exp1", py, [])
    torchrun = py + ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    ddp = _asr_train(tmp_path, "exp2", torchrun, ["--dist_backend", "gloo"])
    assert "[rank0 " in ddp and _train_loss(ddp) == pytest.approx(_train_loss(single), rel=1e-6)
    a, b = (torch.load(tmp_path / d / "1epoch.pth") for d in ("exp1", "exp2"))
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, worst


def _train_loss(line: str) -> float:
    return float(line.split("[train]")[1].split(" loss=")[1].split(",")[0])
