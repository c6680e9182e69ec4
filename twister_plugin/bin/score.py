"""Score decoded text against references (CER zh / WER en / MER code-switching), or rebuild
RESULTS.md from every ``*/score/summary.json`` under an experiment folder.

Usage:
    python -m twister_plugin.bin.score --ref data/test/text --hyp exp/x/decode_test/text \\
        --out exp/x/decode_test/score [--metric auto|cer|wer|mer|mer_spoken|ser] [--utt2lang data/test/utt2lang]
    python -m twister_plugin.bin.score --results exp --write RESULTS.md

Writes per_utt.tsv, summary.json and summary.txt into --out (atomically). --metric auto picks
MER when the references mix Han characters and Latin letters, else CER for zh, else WER.
"""
from __future__ import annotations

import argparse
import logging
import sys

from twister_plugin.data.kaldi import DataError
from twister_plugin.scoring import METRICS, ResultsError, score_files, write_results, write_score_dir
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("twister_plugin.bin.score")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", help="reference Kaldi text file")
    p.add_argument("--hyp", help="hypothesis Kaldi text file")
    p.add_argument("--out", help="score folder to write")
    p.add_argument("--metric", default="auto", choices=["auto", *METRICS])
    p.add_argument("--utt2lang", help="utt2lang for --metric auto (default: beside --ref)")
    p.add_argument("--set-name", help="test set name (default: the folder of --ref)")
    p.add_argument("--results", help="experiment folder to collect */score/summary.json from")
    p.add_argument("--write", help="RESULTS.md to write (with --results)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    setup_logging()
    log_config(logger, "score", args)
    scoring, results = (args.ref, args.hyp, args.out), (args.results, args.write)
    if not (all(scoring) and not any(results)) and not (all(results) and not any(scoring)):
        parser.error("give either --ref, --hyp and --out, or --results and --write")
    try:
        if args.results:
            rows = write_results(args.results, args.write)
            logger.info("wrote %s (%d score dirs)", args.write, rows)
            return 0
        utts, summary = score_files(args.ref, args.hyp, metric=args.metric,
                                    utt2lang=args.utt2lang, set_name=args.set_name)
        write_score_dir(args.out, utts, summary)
    except (DataError, ResultsError) as e:
        logger.error("%s", e)
        return 1
    logger.info("%s %s: %s %% (%d utts, %d missing hyps) -> %s", summary.set, summary.metric,
                summary.rate, summary.n_utts, summary.n_missing_hyp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
