"""Time the merge of synthesis shards (the serial step the last shard runs while the others wait).

Writes N utterances' tables into S shards as synthesize does (no audio: frames are given, so no
wav is opened), then times each shard's finish (its tables and lhotse parts, in parallel in a
real run) and the merge. Usage:
    python benchmarks/synth_merge.py --utts 33000 --shards 2 --out /tmp/synth_merge [--json r.json]
Session 8, 2-core CPU here: 33,000 utterances, 2 shards: merge 5.31 s before the shards wrote
their own lhotse parts (3b9781b), 1.44 s after (finish 0.1 -> 1.5 s per shard).
Session 9, same CPU, 66,692 utterances (before = PYTHONPATH at 58f5e7d, a worktree): shards
check and write their own Kaldi tables, the merge interleaves lines: 2 shards 6.26 / 4.11 s ->
2.04 / 2.03 s (two runs each, alternating), 8 shards 5.32 -> 2.02 s (finish ~+0.2 s a shard).
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch  # noqa: F401  (a synthesis job has torch loaded: its import is not merge time)

from twister_plugin.tts.synth_io import ShardWriter, merge_if_complete
from twister_plugin.tts.synthesize import Job


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--utts", type=int, default=33000)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--out", required=True, help="scratch dir (emptied first)")
    p.add_argument("--json", help="write the timings here too")
    a = p.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    text = "这是一句新闻的文本内容，长度大约二十个字"
    finish = []
    for shard in range(1, a.shards + 1):
        writer = ShardWriter(out, shard, a.shards)
        for line in range(shard, a.utts + 1, a.shards):  # synthesize's round-robin sharding
            job = Job(line=line, text=text, voice="synth-S0150", speed=1.0, emb=np.zeros(4), sid=0,
                      spoken=text, lang="zh")
            writer.add(job, out / "wav" / f"{job.utt}.wav", 16000 * 4 + line, 16000)
        t0 = time.perf_counter()
        writer.finish(resumed=0)
        finish.append(round(time.perf_counter() - t0, 2))
    t0 = time.perf_counter()
    assert merge_if_complete(out, a.shards, 16000)
    result = dict(utts=a.utts, shards=a.shards, finish_s=finish, merge_s=round(time.perf_counter() - t0, 2))
    print(json.dumps(result))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
