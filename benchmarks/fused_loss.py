"""Benchmark the fused linear + label-smoothed cross-entropy: forward+backward time and peak memory.

Methods, all in one run on the same inputs (bf16 by default, V=51865, eps=0.1, 10% ignored rows,
reduction "sum"): torch (F.linear + F.cross_entropy on fp32-upcast logits), compile (the same
under torch.compile), liger (Liger-Kernel's LigerFusedLinearCrossEntropyLoss, skipped when not
installed), ours (twister_plugin.kernels.fused_linear_cross_entropy) and ours[...] variants.
Time: CUDA events around forward+backward, median of --repeats after --warmup runs. Memory:
torch.cuda.max_memory_allocated over one forward+backward after the warm-up (peak_mb counts the
inputs, extra_mb does not). loss_rel is |loss - torch's loss| / |torch's loss|.

Measured on one H100 80GB HBM3 (torch 2.11, triton 3.6, liger-kernel 0.8.5; bf16, V=51865,
10% ignored rows; ms = forward+backward, MB = peak incl. inputs). ours = defaults (384-row
chunks, a 40 MB workspace), ours@1024 = chunk_size=1024:

    D     N      torch          compile       liger         ours          ours@1024
    1280  16384  69.1 / 9957    14.1 / 3601   64.4 / 448    16.8 / 436    12.7 / 499
    1280  4096   18.0 / 2632                  22.6 / 350     4.9 / 375     3.9 / 439
    1280  65536  267.0 / 39250               223.6 / 841    64.1 / 677    49.0 / 740
    512   16384  39.5 / 9857                  33.3 / 223    10.5 / 236     6.7 / 299
    384   16384  34.7 / 9840                  32.2 / 177     9.8 / 202     6.2 / 266

Usage:
    python benchmarks/fused_loss.py --out fused_loss.json                     # GPU, full grid
    python benchmarks/fused_loss.py --hidden 1280 --tokens 16384 --out b.json
    python benchmarks/fused_loss.py --ours-variants chunk_size=1024 fp32_weight_grad=1
    python benchmarks/fused_loss.py --check                                   # GPU grads vs torch
    python benchmarks/fused_loss.py --device cpu --tiny --out /tmp/fused_loss.json
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from twister_plugin.kernels import FusedCEOptions, fused_linear_cross_entropy
from twister_plugin.testing.fused_ce import (
    clear_grads, grads_of, make_ce_inputs, reference_ce, rel_err,
)
from twister_plugin.utils.fileio import atomic_open
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("fused_loss")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
IGNORE = -1


class Skip(Exception):
    """A method cannot run here (missing package, unsupported device)."""


class TorchCE:
    name = "torch"

    def build(self, args):
        eps = args.label_smoothing
        return lambda h, w, y: F.cross_entropy(F.linear(h, w).float(), y, ignore_index=IGNORE,
                                               label_smoothing=eps, reduction="sum")


class CompiledCE(TorchCE):
    name = "compile"

    def build(self, args):
        torch._dynamo.reset()  # a fresh compile per shape; no recompile limit reached
        return torch.compile(super().build(args))


class LigerCE:
    name = "liger"

    def build(self, args):
        try:
            from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
        except ImportError as e:
            raise Skip(f"liger_kernel not installed ({e})") from e
        if args.device != "cuda":
            raise Skip("liger needs CUDA")
        loss = LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE, reduction="sum",
                                                label_smoothing=args.label_smoothing)
        return lambda h, w, y: loss(w, h, y)


class OursCE:
    def __init__(self, variant: str = ""):
        self.options = parse_variant(variant)
        self.name = f"ours[{variant}]" if variant else "ours"

    def build(self, args):
        eps, opts = args.label_smoothing, self.options
        return lambda h, w, y: fused_linear_cross_entropy(
            h, w, y, ignore_index=IGNORE, label_smoothing=eps, reduction="sum", options=opts)


def parse_variant(text: str) -> FusedCEOptions:
    """'chunk_size=512,fp32_weight_grad=1' -> FusedCEOptions(chunk_size=512, ...)."""
    kinds = {f.name: f.type for f in dataclasses.fields(FusedCEOptions)}
    values = {}
    for item in filter(None, text.split(",")):
        key, _, val = item.partition("=")
        if key not in kinds:
            raise SystemExit(f"unknown option {key!r} in variant {text!r}; know {sorted(kinds)}")
        kind = str(kinds[key])
        values[key] = (val.lower() in ("1", "true") if "bool" in kind else
                       int(val) if "int" in kind else float(val) if "float" in kind else val)
    return FusedCEOptions(**values)


def fwd_bwd(fn, x) -> float:
    clear_grads(x)
    loss = fn(x.hidden, x.weight, x.targets)
    loss.backward()
    return float(loss.detach())


def time_ms(fn, x, args) -> float:
    times = []
    for _ in range(args.repeats):
        if args.device == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            clear_grads(x)
            start.record()
            fn(x.hidden, x.weight, x.targets).backward()
            stop.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(stop))
        else:
            t0 = time.perf_counter()
            fwd_bwd(fn, x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def measure(fn, x, args) -> dict:
    """Warm-up runs (compilation, cuBLAS workspaces), then the loss and peak memory of one
    forward+backward, then the median time."""
    row: dict = {}
    for _ in range(max(1, args.warmup)):
        fwd_bwd(fn, x)
    clear_grads(x)
    gc.collect()
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    row["loss"] = fwd_bwd(fn, x)
    if args.device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        row.update(peak_mb=peak / 2**20, extra_mb=(peak - base) / 2**20)
    row["ms"] = time_ms(fn, x, args)
    clear_grads(x)
    return row


def run_case(method, d: int, n: int, args, x, ref_loss: float | None) -> dict:
    row = dict(method=method.name, hidden=d, tokens=n, vocab=args.vocab, dtype=args.dtype)
    try:
        row.update(measure(method.build(args), x, args), status="ok")
        if ref_loss is not None:
            row["loss_rel"] = abs(row["loss"] - ref_loss) / max(abs(ref_loss), 1e-30)
    except Skip as e:
        row["status"] = f"skipped: {e}"
    except torch.OutOfMemoryError:
        row["status"] = "OOM"
    except Exception as e:  # keep the other methods running; the table says what broke
        logger.exception("%s failed at D=%d N=%d", method.name, d, n)
        row["status"] = f"error: {type(e).__name__}: {e}"[:200]
    clear_grads(x)
    gc.collect()
    if args.device == "cuda":
        torch.cuda.empty_cache()
    logger.info("%s", row)
    return row


def bench(args) -> list[dict]:
    methods = [m for m in (TorchCE(), CompiledCE(), LigerCE(), OursCE()) if m.name in args.methods]
    methods += [OursCE(v) for v in args.ours_variants]
    rows = []
    for d in args.hidden:
        for n in args.tokens:
            x = make_ce_inputs(n, d, args.vocab, DTYPES[args.dtype], args.device, seed=n + d,
                               ignore_index=IGNORE)
            ref = None
            for method in methods:
                row = run_case(method, d, n, args, x, ref)
                if method.name == "torch" and row["status"] == "ok":
                    ref = row["loss"]
                rows.append(row)
            del x
    return rows


def markdown(rows: list[dict]) -> str:
    head = "| D | N | method | ms | peak MB | extra MB | loss rel diff | status |"
    lines = [head, "|" + "---|" * 8]
    fmt = (lambda v, f: "" if v is None else format(v, f))
    for r in rows:
        lines.append(f"| {r['hidden']} | {r['tokens']} | {r['method']} | {fmt(r.get('ms'), '.2f')} "
                     f"| {fmt(r.get('peak_mb'), '.0f')} | {fmt(r.get('extra_mb'), '.0f')} "
                     f"| {fmt(r.get('loss_rel'), '.1e')} | {r['status']} |")
    return "\n".join(lines)


def check(args) -> int:
    """Our loss and gradients against fp32 F.cross_entropy; returns the number of failures."""
    torch.backends.cuda.matmul.allow_tf32 = False
    tol = {"fp32": (1e-5, 1e-4), "fp16": (1e-3, 5e-3), "bf16": (5e-3, 3e-2)}
    shapes = [(257, 64, 1003, True), (1000, 384, 51865, False), (4133, 1280, 51865, False)]
    if args.tiny:
        shapes = [(37, 16, 1003, True), (100, 32, 517, False)]
    failures = 0
    for n, d, v, bias in shapes:
        for dtype in ("bf16", "fp16", "fp32"):
            for red in ("sum", "mean"):
                x = make_ce_inputs(n, d, v, DTYPES[dtype], args.device, bias=bias, seed=n,
                                   ignore_index=IGNORE)
                loss = fused_linear_cross_entropy(x.hidden, x.weight, x.targets, x.bias, IGNORE,
                                                  args.label_smoothing, red)
                (loss * 0.5).backward()
                ref, ref_grads = reference_ce(x, IGNORE, args.label_smoothing, red, 0.5)
                errs = [rel_err(loss, ref)] + [rel_err(g, r) for g, r in
                                               zip(grads_of(x), ref_grads) if r is not None]
                ok = errs[0] <= tol[dtype][0] and all(e <= tol[dtype][1] for e in errs[1:])
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} N={n} D={d} V={v} bias={bias} {dtype} {red}: "
                      f"loss {errs[0]:.1e} grads " + " ".join(f"{e:.1e}" for e in errs[1:]))
    return failures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    p.add_argument("--hidden", type=int, nargs="+", default=[384, 512, 1280])
    p.add_argument("--tokens", type=int, nargs="+", default=[4096, 16384, 65536])
    p.add_argument("--vocab", type=int, default=51865)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--methods", nargs="+", default=["torch", "compile", "liger", "ours"])
    p.add_argument("--ours-variants", nargs="*", default=[],
                   help="extra runs of ours with FusedCEOptions, "
                        "e.g. chunk_size=1024,fp32_weight_grad=1")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--tiny", action="store_true", help="tiny sizes (CPU smoke test)")
    p.add_argument("--check", action="store_true", help="check grads vs PyTorch, no timing")
    p.add_argument("--out", help="write the rows as JSON here")
    args = p.parse_args(argv)
    if args.tiny:
        args.hidden, args.tokens, args.vocab = [32, 64], [100, 300], 1003
        args.warmup, args.repeats = 1, 3
    setup_logging()
    log_config(logger, "fused_loss", args)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; use --device cpu --tiny")
    if args.check:
        return 1 if check(args) else 0
    rows = bench(args)
    print(markdown(rows))
    if args.out:
        device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
        with atomic_open(args.out, "w") as f:
            json.dump(dict(device=device, torch=torch.__version__, rows=rows), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
