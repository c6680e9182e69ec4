"""What a NEW attention shape costs on first use, per SDPA backend order (issues 7 and 11).

Session 6 saw one-time slow steps: DDP fine-tuning steps at token lengths not seen before
(0.35-0.67 s vs 0.2-0.4 s), and every decoder's first pass over S0150 at ~540x real time against
~4,000x for the same batches once seen (`results/h100_2026-11-26_s6/bench_decode.json`). A
pseudo-labelling job never gets to the warm case: its batches shrink as utterances finish, so
the (rows, cache length) shapes keep changing. This measures, with random weights of Whisper
base's sizes (time does not depend on the weights):

- ``train``: one bf16 forward + backward of Whisper base's decoder (batch 128, 1500 encoder
  frames) at token lengths never used before in the process, then again at the same length;
- ``decode``: one fp16 attention call of the decoding loop (query 1 token, keys t cached tokens,
  R rows) at (R, t) pairs never used before, then again;

each under torch's default backend order and with cuDNN attention switched off
(``torch.backends.cuda.enable_cudnn_sdp(False)``, what ``twister_plugin.utils.attention`` does),
and names the kernels the default order runs (torch profiler).

Usage (GPU): python benchmarks/sdpa_shapes.py --out sdpa_shapes.json
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import torch
import torch.nn.functional as F


def timed(fn) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def train_case(decoder, audio_features, lengths: list[int]) -> dict:
    """First and repeated fwd+bwd time of the decoder at each new token length."""
    first, again = [], []
    for n in lengths:
        tokens = torch.randint(0, 50000, (audio_features.shape[0], n), device=audio_features.device)

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = decoder(tokens, audio_features)
            out.float().mean().backward()

        first.append(timed(step))
        again.append(timed(step))
    return summary(first, again)


def decode_case(pairs: list[tuple[int, int]], heads: int = 8, dim: int = 64) -> dict:
    """First and repeated time of one decoding-step attention call at each new (rows, t)."""
    first, again = [], []
    for rows, t in pairs:
        q = torch.randn(rows, heads, 1, dim, device="cuda", dtype=torch.float16)
        k = torch.randn(rows, heads, t, dim, device="cuda", dtype=torch.float16)
        v = torch.randn_like(k)
        first.append(timed(lambda: F.scaled_dot_product_attention(q, k, v)))
        again.append(timed(lambda: F.scaled_dot_product_attention(q, k, v)))
    return summary(first, again)


def summary(first: list[float], again: list[float]) -> dict:
    ms = lambda xs: round(1000 * statistics.mean(xs), 3)  # noqa: E731
    return dict(n_shapes=len(first), first_call_ms=ms(first), repeat_ms=ms(again),
                extra_ms_per_new_shape=round(ms(first) - ms(again), 3),
                first_call_ms_each=[round(1000 * x, 2) for x in first])


def kernels_of(fn) -> list[str]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    names = {e.key for e in prof.key_averages()}
    return sorted(n for n in names if any(s in n.lower() for s in ("cudnn", "flash", "fmha", "attention", "sdpa")))[:12]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="sdpa_shapes.json")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lengths", type=int, default=6, help="new token lengths per backend order")
    p.add_argument("--pairs", type=int, default=40, help="new (rows, t) decoding shapes per backend order")
    a = p.parse_args()
    from whisper.model import Whisper

    from twister_plugin.asr.sizes import dims_for

    torch.manual_seed(0)
    decoder = Whisper(dims_for("base")).decoder.cuda().train()
    feats = torch.randn(a.batch, 1500, decoder.token_embedding.weight.shape[1], device="cuda")
    warm = train_case(decoder, feats, [20])  # kernels loaded, allocator primed (not reported)
    decode_case([(3, 3)])
    rng = random.Random(0)
    pairs = [(rng.randint(1, 128), rng.randint(3, 200)) for _ in range(3 * a.pairs)]
    report = dict(card=torch.cuda.get_device_name(0), torch=torch.__version__,
                  cudnn=torch.backends.cudnn.version(),
                  default_priority=[str(torch.nn.attention.SDPBackend(i)) for i in torch._C._get_sdp_priority_order()],
                  warmup_ms=warm["first_call_ms"])
    q = torch.randn(64, 8, 1, 64, device="cuda", dtype=torch.float16)
    kv = torch.randn(64, 8, 77, 64, device="cuda", dtype=torch.float16)
    report["kernels_default_decode"] = kernels_of(lambda: F.scaled_dot_product_attention(q, kv, kv))
    qt = torch.randn(64, 8, 33, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    report["kernels_default_train"] = kernels_of(
        lambda: F.scaled_dot_product_attention(qt, qt, qt, is_causal=True).sum().backward())
    # default, cuDNN off, default again: every run gets shapes no earlier run used
    for i, (name, cudnn) in enumerate([("default", True), ("no_cudnn", False), ("default_again", True)]):
        torch.backends.cuda.enable_cudnn_sdp(cudnn)
        lengths = [30 + 10 * i + j for j in range(a.lengths)]
        report[f"train_{name}"] = dict(lengths=lengths, **train_case(decoder, feats, lengths))
        report[f"decode_{name}"] = decode_case(pairs[i * a.pairs:(i + 1) * a.pairs])
        print(name, report[f"train_{name}"]["extra_ms_per_new_shape"],
              report[f"decode_{name}"]["extra_ms_per_new_shape"], flush=True)
    torch.backends.cuda.enable_cudnn_sdp(False)
    report["kernels_no_cudnn_decode"] = kernels_of(lambda: F.scaled_dot_product_attention(q, kv, kv))
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps({k: v for k, v in report.items() if not k.startswith(("train_", "decode_"))}, indent=1))


if __name__ == "__main__":
    main()
