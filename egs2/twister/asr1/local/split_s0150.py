"""Split AISHELL sample S0150 by utterance id: an "unlabeled" part (its transcripts are never used
for training or filtering; kept aside in ``.truth`` for analysis only) and a held-out eval part.

Usage:
    python local/split_s0150.py --manifest ../shared/data/zh/aishell_sample_S0150/manifest.tsv --out data
Eval = every 5th utterance by id number (W0005, W0010, ...: 100 utts spread over commands and
news); unlabeled = the other 400.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from twister_plugin.data.kaldi import write_kaldi_dir
from twister_plugin.data.manifest import read_manifest
from twister_plugin.utils.fileio import atomic_write_text


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    dd = read_manifest(a.manifest)
    num = {u: int(re.search(r"W(\d+)$", u).group(1)) for u in dd.utt_ids}
    eval_ids = [u for u in dd.utt_ids if num[u] % 5 == 0]
    unl_ids = [u for u in dd.utt_ids if num[u] % 5 != 0]
    out = Path(a.out)
    write_kaldi_dir(dd.subset(eval_ids), out / "s0150_eval")
    unl = dd.subset(unl_ids)
    truth = "".join(f"{u} {unl.text[u]}\n" for u in unl.utt_ids)
    unl.text = None
    write_kaldi_dir(unl, out / "s0150_unlabeled")
    atomic_write_text(out / "s0150_unlabeled" / ".truth", truth)


if __name__ == "__main__":
    main()
