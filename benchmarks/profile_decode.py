"""Where does batched decoding spend its time? Phase timings + torch.profiler tables for
``BatchedDecoder`` on a manifest (issue 7: find what stands between us and 2x the best peer).

Usage (GPU machine):
    python benchmarks/profile_decode.py --manifest DATA/zh/aishell_sample_S0150/manifest.tsv \
        --model base.pt --device cuda --bs 512 --out prof.json
Phases are timed with a device synchronise around each (so their sum is a little above the plain
run's wall time, which is printed too); the profiler table shows the top kernels and CPU ops.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode_speed import load_utt, read_manifest  # noqa: E402

from twister_plugin.decode import BatchedDecoder, DecoderConfig  # noqa: E402
from twister_plugin.decode import batched as batched_mod  # noqa: E402
from twister_plugin.whisper import load_whisper  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class PhaseTimer:
    """Wraps callables so each call's wall time (synchronised) adds to a named phase."""

    def __init__(self, device: str) -> None:
        self.device, self.totals = device, {}

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            sync(self.device)
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            sync(self.device)
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - t0
            return out
        return timed


@contextmanager
def patched(obj, name: str, new):
    old = getattr(obj, name)
    setattr(obj, name, new)
    try:
        yield
    finally:
        setattr(obj, name, old)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--bs", type=int, default=512)
    p.add_argument("--language", default="zh")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--out", default="prof.json")
    a = p.parse_args()
    dd = read_manifest(a.manifest)
    waves = [load_utt(dd, u) for u in dd.utt_ids[: a.limit or None]]
    secs = sum(len(w) for w in waves) / 16000
    model = load_whisper(a.model, device=a.device).float()  # as decode_speed's system (d)
    dec = BatchedDecoder(model, DecoderConfig(dtype="float16" if a.device.startswith("cuda") else "float32"))
    langs = [a.language] * len(waves)
    dec.decode_all(waves[:8], langs[:8], batch_size=8)  # warm-up
    report = {"utts": len(waves), "audio_s": secs, "bs": a.bs}
    for rep in range(2):
        sync(a.device)
        t0 = time.perf_counter()
        dec.decode_all(waves, langs, batch_size=a.bs)
        sync(a.device)
        report[f"plain_wall_s_{rep}"] = time.perf_counter() - t0
    report["x_real_time"] = secs / report["plain_wall_s_1"]
    timer = PhaseTimer(a.device)
    with patched(batched_mod, "waves_to_mel", timer.wrap("log_mel", batched_mod.waves_to_mel)), \
            patched(dec.model.encoder, "forward", timer.wrap("encoder", dec.model.encoder.forward)), \
            patched(dec.text_decoder, "cross_cache", timer.wrap("cross_kv", dec.text_decoder.cross_cache)), \
            patched(dec.text_decoder, "forward", timer.wrap("decoder_forward", dec.text_decoder.forward)), \
            patched(dec, "_result", timer.wrap("results", dec._result)):
        t0 = time.perf_counter()
        dec.decode_all(waves, langs, batch_size=a.bs)
        sync(a.device)
        report["phased_wall_s"] = time.perf_counter() - t0
    report["phases_s"] = timer.totals
    report["search_other_s"] = report["phased_wall_s"] - sum(timer.totals.values())
    acts = [torch.profiler.ProfilerActivity.CPU]
    if a.device.startswith("cuda"):
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=acts) as prof:
        dec.decode_all(waves, langs, batch_size=a.bs)
        sync(a.device)
    sort = "cuda_time_total" if a.device.startswith("cuda") else "cpu_time_total"
    report["top_device"] = prof.key_averages().table(sort_by=sort, row_limit=25)
    report["top_cpu_self"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    Path(a.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if not k.startswith("top_")}, indent=1))
    print(report["top_device"])
    print(report["top_cpu_self"])


if __name__ == "__main__":
    main()
