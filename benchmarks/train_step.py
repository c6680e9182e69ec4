"""One training step of the plugin's Whisper ASR model with ``fused_loss`` off and on: time,
peak memory and loss equality (issue 6). Random-init weights of the chosen size (time and memory
do not depend on the weights; equality is checked on the same weights and batch).

Usage:
    python benchmarks/train_step.py --size base --batch 64 --tokens 100 --device cuda --out train_step.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from twister_plugin.asr.task import TwisterASRTask
from twister_plugin.asr.tokenizer import write_token_list
from twister_plugin.asr.sizes import dims_for


def build(size: str, fused: bool, lsm: float, token_list: str):
    args = TwisterASRTask.get_parser().parse_args([
        "--token_list", token_list, "--input_size", "1", "--encoder", "twister_whisper",
        "--encoder_conf", f"{{size: {size}}}", "--decoder", "twister_whisper", "--decoder_conf",
        f"{{size: {size}}}", "--model", "twister_whisper",
        "--model_conf", f"{{lsm_weight: {lsm}, fused_loss: {str(fused).lower()}}}"])
    return TwisterASRTask.build_model(args)


def step(model, batch, dtype) -> torch.Tensor:
    with torch.autocast("cuda", dtype=dtype, enabled=batch["speech"].is_cuda):
        loss, _, _ = model(**{k: v.clone() for k, v in batch.items()})
    loss.backward()
    return loss.detach()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", default="base")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--tokens", type=int, default=100, help="target tokens per utterance")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--device", default="cuda")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="train_step.json")
    a = p.parse_args()
    torch.manual_seed(0)
    n_vocab = dims_for(a.size).n_vocab
    tl = tempfile.NamedTemporaryFile(suffix=".txt", delete=False).name
    write_token_list(tl, n_vocab)
    dev = torch.device(a.device)
    B, L = a.batch, a.tokens
    text = torch.randint(0, 50257, (B, L))
    text[:, :3] = torch.tensor([50260, 50359, 50363])  # zh prompt
    text_lengths = torch.randint(L // 2, L + 1, (B,))
    for i, n in enumerate(text_lengths):
        text[i, n:] = -1
    batch = dict(speech=0.1 * torch.randn(B, int(a.seconds * 16000)), speech_lengths=torch.full((B,), int(a.seconds * 16000)),
                 text=text, text_lengths=text_lengths)
    batch = {k: v.to(dev) for k, v in batch.items()}
    rows = []
    base = build(a.size, False, 0.0, tl).to(dev)
    state = base.state_dict()
    for fused in (False, True):
        for lsm in (0.0, 0.1):
            model = build(a.size, fused, lsm, tl).to(dev)
            model.load_state_dict(state)
            model.train()
            step(model, batch, torch.bfloat16)  # warm-up
            model.zero_grad(set_to_none=True)
            times, loss = [], None
            torch.cuda.reset_peak_memory_stats() if dev.type == "cuda" else None
            for _ in range(a.repeats):
                torch.cuda.synchronize() if dev.type == "cuda" else None
                t0 = time.perf_counter()
                loss = step(model, batch, torch.bfloat16)
                torch.cuda.synchronize() if dev.type == "cuda" else None
                times.append(time.perf_counter() - t0)
                model.zero_grad(set_to_none=True)
            peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
            rows.append(dict(fused_loss=fused, lsm_weight=lsm, ms=round(1000 * statistics.median(times), 2),
                             peak_mb=round(peak, 1) if peak else None, loss=float(loss)))
            print(json.dumps(rows[-1]), flush=True)
            del model
            torch.cuda.empty_cache() if dev.type == "cuda" else None
    meta = dict(size=a.size, batch=B, tokens=L, seconds=a.seconds, card=torch.cuda.get_device_name() if dev.type == "cuda" else "cpu")
    with open(a.out, "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
