"""How many synthetic utterances a round-trip filter keeps, by the unit it counts errors in.

Reads a ``roundtrip_filter`` ``scores.jsonl`` (or ``.jsonl.gz``: text and Whisper's hypothesis
per utterance) and scores every pair again with ``mer``, ``mer_spoken``, ``ser`` and ``ser``
without tones; prints mean / median error and the utterances kept at each threshold.

    python benchmarks/roundtrip_units.py \
        benchmarks/results/h200x2_2026-11-26_s5/roundtrip_scores_round1.jsonl.gz
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics

from twister_plugin.scoring import get_metric, score


class _NoTone:
    """``ser`` tokens with the tone digit dropped (toneless pinyin)."""

    name, unit = "ser_notone", "syllable"

    def __init__(self) -> None:
        self._ser = get_metric("ser")

    def tokens(self, text: str) -> list[str]:
        return [t.rstrip("12345") for t in self._ser.tokens(text)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", help="roundtrip_filter scores.jsonl(.gz)")
    p.add_argument("--thresholds", default="30,20,10", help="kept at error <= each (percent)")
    a = p.parse_args(argv)
    opener = gzip.open if a.scores.endswith(".gz") else open
    with opener(a.scores, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    refs = {r["utt_id"]: r["text"] for r in rows}
    hyps = {r["utt_id"]: r["hyp"] for r in rows}
    limits = [float(x) for x in a.thresholds.split(",")]
    print(f"{len(rows)} utterances")
    print("| unit | mean % | median % | " + " | ".join(f"kept <= {x:g}%" for x in limits) + " |")
    for metric in (get_metric("mer"), get_metric("mer_spoken"), get_metric("ser"), _NoTone()):
        utts, _ = score(refs, hyps, metric)
        err = [100.0 if u.rate == float("inf") else u.rate for u in utts]
        kept = " | ".join(str(sum(e <= x for e in err)) for x in limits)
        print(f"| {metric.name} | {statistics.mean(err):.1f} | {statistics.median(err):.1f} | {kept} |")


if __name__ == "__main__":
    main()
