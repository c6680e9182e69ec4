"""How good are the pseudo-labels the filters keep? CER of kept vs rejected utterances against the
withheld true transcripts (analysis only: the truth never feeds training or filtering).

Usage:
    python benchmarks/pseudo_label_quality.py --truth data/s0150_unlabeled/.truth \
        --scores exp/round1/pseudo/scores.jsonl --out pseudo_quality.json
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from twister_plugin.scoring.metrics import get_metric
from twister_plugin.scoring.score import score


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--truth", required=True)
    p.add_argument("--scores", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    truth = dict(line.rstrip("\n").split(" ", 1) for line in open(a.truth, encoding="utf-8"))
    recs = [json.loads(line) for line in open(a.scores, encoding="utf-8")]
    cer = get_metric("cer")
    out = {}
    for name, pick in (("all", lambda r: True), ("kept", lambda r: r["kept"]), ("rejected", lambda r: not r["kept"])):
        sel = [r for r in recs if pick(r)]
        refs = {r["utt_id"]: truth[r["utt_id"]] for r in sel}
        hyps = {r["utt_id"]: r.get("text", "") for r in sel}
        _, s = score(refs, hyps, cer, set_name=name) if sel else (None, None)
        out[name] = dict(n_utts=len(sel), cer=s.rate if s else None)
    out["reasons"] = Counter(x for r in recs for x in r["reasons"])
    Path(a.out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
