"""Paired bootstrap over utterances: is a model's error rate really below the baseline's?

Scores every hypothesis file against the same references with the project's scorer, then
resamples the utterances (with replacement, the same draw for every system) and reports the
relative change of the error count against the first file: the observed value, a 95% interval
and the share of resamples in which the system is not better (change >= 0).

Usage (session 6's S0150 held-out decodes):
    python benchmarks/paired_bootstrap.py --ref <s0150_eval/text> --metric mer_spoken \\
        --hyp zeroshot=decoded/round1__zeroshot__s0150_eval.txt \
              round2=decoded/round2__round2__s0150_eval.txt
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from twister_plugin.scoring.score import score_files


def errors_per_utt(ref: str, hyp: str, metric: str) -> tuple[list[str], np.ndarray]:
    utts, _ = score_files(ref, hyp, metric=metric)
    return [u.utt_id for u in utts], np.array([u.errors for u in utts], dtype=np.int64)


def bootstrap(base: np.ndarray, system: np.ndarray, draws: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), size=(draws, len(base)))
    b, s = base[idx].sum(axis=1), system[idx].sum(axis=1)
    rel = (s - b) / np.maximum(b, 1)
    return dict(change_pct=round(100.0 * (system.sum() - base.sum()) / max(base.sum(), 1), 2),
                ci95_pct=[round(100.0 * x, 2) for x in np.percentile(rel, [2.5, 97.5])],
                p_not_better=round(float((rel >= 0).mean()), 4))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="Kaldi text of the references")
    p.add_argument("--hyp", required=True, nargs="+", metavar="NAME=FILE",
                   help="the first is the baseline")
    p.add_argument("--metric", default="auto", help="cer, mer, mer_spoken, ser, wer or auto")
    p.add_argument("--draws", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    systems = [h.split("=", 1) for h in a.hyp]
    if any(len(x) != 2 for x in systems):
        p.error("--hyp wants NAME=FILE")
    scored = {name: errors_per_utt(a.ref, f, a.metric) for name, f in systems}
    base_name = systems[0][0]
    ids, base = scored[base_name]
    out = dict(metric=a.metric, utterances=len(ids), baseline=base_name,
               baseline_errors=int(base.sum()))
    for name, _ in systems[1:]:
        other_ids, errs = scored[name]
        assert other_ids == ids  # score_files scores every reference, sorted by id
        out[name] = dict(errors=int(errs.sum()), **bootstrap(base, errs, a.draws, a.seed))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
