r"""Synthesise a text corpus with a trained Twister TTS (sharded, resumable, batched on GPU).

Writes wav/<utt>.wav, a Kaldi dir (wav.scp, text, text.spoken, utt2spk, spk2utt, utt2lang,
utt2dur) and lhotse manifests (recordings/supervisions.jsonl.gz) under --out; wavs that already
exist are kept, so rerunning after a crash only does what is missing.

Usage:
    python -m twister_plugin.bin.synthesize --model_dir exp/tts --text corpus.txt \
        --out dump/synth [--shard 2/4] [--speakers seen|sample] [--speed-range 0.9,1.1] \
        [--device cuda] [--batch_size 16] [--num_voices 20] [--seed 0] [--gl_iters 48] [--writers 4] \
        [--fsync shard|wav]
    # --model_dir: a tts_train --output_dir (config.yaml, *.pth, tokens.txt, frontend.yaml,
    # voices.npz); its config's tts picks VITS or TwisterFastSpeech + Griffin-Lim
    # Slurm/run.pl array: JOB=1:4 ... --shard JOB/4 (or --nj 4 --job JOB); the last shard to
    # finish merges all shards into --out
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from twister_plugin.utils.fast_import import fast_exit, skip_espnet_typechecks
from twister_plugin.utils.log import log_config, process_seconds, setup_logging


def parse(argv: list[str] | None):
    from twister_plugin.tts.synthesize import SynthConfig

    d = SynthConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model_dir", required=True, help="tts_train --output_dir")
    p.add_argument("--model_file", help="default: the first of twister_plugin.tts.synthesize.MODEL_FILES in --model_dir "
                   "(valid.roundtrip.best.pth, train.total_count.best.pth, valid.synth_loss.best.pth, ...)")
    p.add_argument("--text", required=True, help="corpus, one sentence a line")
    p.add_argument("--out", required=True)
    p.add_argument("--shard", default="1/1", help="J/N: this job's shard (1-based) of N")
    p.add_argument("--nj", type=int, help="with --job J: the same as --shard J/NJ")
    p.add_argument("--job", type=int, help="this job's number, 1..NJ (with --nj)")
    p.add_argument("--speakers", default=d.speakers, choices=["seen", "sample"])
    p.add_argument("--speed-range", "--speed_range", dest="speed_range", default="1.0,1.0",
                   help="LO,HI speaking-rate factors, drawn uniformly per sentence")
    p.add_argument("--device", default="cuda" if _has_cuda() else "cpu")
    for name in ("num_voices", "batch_size", "max_phones", "seed", "gl_iters", "writers"):
        p.add_argument(f"--{name}", type=int, default=getattr(d, name))
    for name in ("noise_scale", "noise_scale_dur", "max_seconds"):
        p.add_argument(f"--{name}", type=float, default=getattr(d, name))
    p.add_argument("--prefix", default=d.prefix)
    p.add_argument("--fsync", default=d.fsync, choices=["shard", "wav"],
                   help="shard: flush the disk once, before the shard is marked done (a crash "
                   "of the process loses nothing; after a power loss, unflushed wavs are found "
                   "empty and redone); wav: fsync every wav as it is written (slower)")
    a = p.parse_args(argv)
    if (a.nj is None) != (a.job is None):
        p.error("--nj and --job go together")
    if a.nj is not None:
        a.shard = f"{a.job}/{a.nj}"
    try:
        shard, num_shards = (int(x) for x in a.shard.split("/"))
        lo, hi = (float(x) for x in a.speed_range.split(","))
    except ValueError:
        p.error(f"--shard J/N and --speed-range LO,HI expected, got {a.shard!r} {a.speed_range!r}")
    if a.writers < 0:
        p.error(f"--writers {a.writers}: want 0 (write in turn) or more threads")
    if not (1 <= shard <= num_shards and 0 < lo <= hi):
        p.error(f"need 1 <= J <= N and 0 < LO <= HI (got {a.shard}, {a.speed_range})")
    cfg = SynthConfig(speakers=a.speakers, num_voices=a.num_voices, speed_range=(lo, hi),
                      batch_size=a.batch_size, noise_scale=a.noise_scale,
                      noise_scale_dur=a.noise_scale_dur, max_phones=a.max_phones,
                      max_seconds=a.max_seconds, seed=a.seed, gl_iters=a.gl_iters,
                      prefix=a.prefix, device=a.device, writers=a.writers, fsync=a.fsync)
    return a, cfg, shard, num_shards


def main(argv: list[str] | None = None) -> int:
    log = setup_logging()
    a, cfg, shard, num_shards = parse(argv)
    log_config(log, "synthesize", {"model_dir": a.model_dir, "text": a.text, "out": a.out,
                                   "shard": f"{shard}/{num_shards}", **asdict(cfg)})
    from twister_plugin.tts.synthesize import Synthesizer, synthesize_shard

    synth = Synthesizer(a.model_dir, cfg, a.model_file)
    t0, ready = time.perf_counter(), process_seconds()  # synthesis only (benchmarks/multi_gpu.py reads work_s)
    stats = synthesize_shard(synth, Path(a.text), Path(a.out), shard, num_shards)
    log.info("synthesize shard %d/%d: %s; work_s=%.2f ready_s=%s", shard, num_shards, stats,
             time.perf_counter() - t0, ready)
    return 0


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    skip_espnet_typechecks()  # a job that loads a trained model (see utils/fast_import.py)
    fast_exit(main())
