"""Prepare the synthesis text corpus: one sentence per line (UTF-8), blank lines dropped, and every
line that overlaps a test transcript (equal, containing or contained, after the scoring
normalisation) removed, so synthesis never speaks an evaluation sentence.

Usage:
    python -m twister_plugin.bin.prepare_text --text corpus.txt --exclude data/test/text \
        [--exclude data/dev/text] --out data/text/corpus.txt [--max_lines 100000]
    python -m twister_plugin.bin.prepare_text --text data/text/corpus.txt --sample 4000 --seed 1 \
        --out exp/round1/synth/corpus.txt      # a seeded random subset (kept in corpus order)
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path

from twister_plugin.data.kaldi import iter_lines, read_text
from twister_plugin.scoring.metrics import get_metric
from twister_plugin.utils.fileio import atomic_open, atomic_write_text
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("prepare_text")
MIN_OVERLAP = 4  # normalised characters: shorter test lines are only matched exactly


def main(argv=None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True)
    p.add_argument("--exclude", action="append", default=[], help="Kaldi text of a test set")
    p.add_argument("--out", required=True)
    p.add_argument("--max_lines", type=int, default=0, help="keep the first N usable lines (0: all)")
    p.add_argument("--sample", type=int, default=0, help="keep a random N of the usable lines (0: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed of --sample")
    a = p.parse_args(argv)
    log_config(logger, "prepare_text", a)
    norm = lambda s: "".join(get_metric("mer").tokens(s))  # noqa: E731
    tests = {norm(t) for f in a.exclude for t in read_text(f).values()}
    tests.discard("")
    long_tests = [t for t in tests if len(t) >= MIN_OVERLAP]
    kept, dropped, seen = [], 0, set()
    for _, line in iter_lines(Path(a.text)):
        s = " ".join(line.split())
        n = norm(s)
        if not n or n in seen:
            continue
        if n in tests or any(t in n for t in long_tests) or (len(n) >= MIN_OVERLAP and any(n in t for t in long_tests)):
            dropped += 1
            continue
        seen.add(n)
        kept.append(s)
        if a.max_lines and len(kept) >= a.max_lines:
            break
    if not kept:
        raise SystemExit(f"{a.text}: no usable sentence")
    if 0 < a.sample < len(kept):
        pick = sorted(random.Random(a.seed).sample(range(len(kept)), a.sample))
        kept = [kept[i] for i in pick]
    with atomic_open(a.out) as f:
        f.write("\n".join(kept) + "\n")
    atomic_write_text(Path(a.out).with_suffix(".report.json"),
                      json.dumps(dict(kept=len(kept), dropped_test_overlap=dropped), indent=1) + "\n")
    logger.info("%s: kept %d sentences, dropped %d overlapping a test transcript", a.out, len(kept), dropped)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
