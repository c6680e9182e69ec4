"""How fast synthesis can put wavs on this machine's disk: ``synthesize``'s writer path
(``synth_io.write_wav``, 16-bit PCM through a temporary file and a rename, ``--writers`` threads)
with an fsync per wav (``--fsync wav``) or one flush at the end (``--fsync shard``, the default),
from 1 process and from P processes at once (P synthesis jobs on one host share its disk).

    python benchmarks/wav_write.py [--wavs 4000] [--seconds 4.5] [--procs 1 2] [--root /tmp] \
        [--out wav_write.json]

The same total of wavs in every run; the disk is flushed (untimed) before each run and the wavs
are removed after it. Noise-like audio (no model needed): the bytes per wav are what matter.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from twister_plugin.tts.synth_io import write_wav  # noqa: E402


def _job(folder: str, first: int, count: int, samples: int, fs: int, threads: int, fsync: str, q) -> None:
    rng = np.random.default_rng(first)
    audio = (0.1 * rng.standard_normal(samples)).astype(np.float32)
    wav_dir = Path(folder)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: write_wav(wav_dir / f"u{i:07d}.wav", audio, fs, durable=fsync == "wav"),
                      range(first, first + count)))
    t_write = time.perf_counter() - t0
    if fsync == "shard":
        os.sync()
    q.put((t_write, time.perf_counter() - t0))


def run(root: Path, wavs: int, samples: int, fs: int, procs: int, threads: int, fsync: str) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="wav_write.", dir=root))
    os.sync()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    share = [wavs // procs + (j < wavs % procs) for j in range(procs)]
    starts = np.cumsum([0] + share[:-1]).tolist()
    t0 = time.perf_counter()
    ps = [ctx.Process(target=_job, args=(str(folder), s, n, samples, fs, threads, fsync, q))
          for s, n in zip(starts, share)]
    for p in ps:
        p.start()
    per_job = [q.get() for _ in ps]
    for p in ps:
        p.join()
    wall = time.perf_counter() - t0
    mb = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    shutil.rmtree(folder)
    return dict(fsync=fsync, procs=procs, wall_s=round(wall, 2), mb=round(mb, 1), mb_per_s=round(mb / wall, 1),
                write_s=[round(w, 2) for w, _ in per_job], job_s=[round(t, 2) for _, t in per_job])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wavs", type=int, default=4000, help="wavs per run (all processes together)")
    p.add_argument("--seconds", type=float, default=4.5, help="length of each wav (corpus mean ~4.5 s)")
    p.add_argument("--fs", type=int, default=16000)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=4, help="writer threads per process (synthesize --writers)")
    p.add_argument("--root", default=tempfile.gettempdir(), help="a folder on the disk to measure")
    p.add_argument("--out", help="write the report (JSON) here too")
    a = p.parse_args(argv)
    root = Path(a.root)
    root.mkdir(parents=True, exist_ok=True)
    rows = [run(root, a.wavs, int(a.seconds * a.fs), a.fs, n, a.threads, fsync)
            for n in a.procs for fsync in ("wav", "shard")]
    report = dict(root=str(root), wavs=a.wavs, seconds=a.seconds, fs=a.fs, threads=a.threads, runs=rows,
                  shard_vs_wav={f"procs{n}": round(next(r["wall_s"] for r in rows if r["procs"] == n and r["fsync"] == "wav")
                                               / next(r["wall_s"] for r in rows if r["procs"] == n and r["fsync"] == "shard"), 2)
                                for n in a.procs})
    text = json.dumps(report, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
