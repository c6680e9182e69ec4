"""Write the per-run report of an experiment folder: index.md, index.html and PNG figures.

Usage:
    python -m twister_plugin.bin.report --exp exp --out exp/report [--data data] [--examples 2]

Reads exp/round<k>/{eval,pseudo,synth,asr_data,asr}/ and exp/timing.tsv (whatever exists so
far: missing parts show as "not available"); a malformed input file is an error naming it.
Open exp/report/index.html in a browser (no network needed).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from twister_plugin.data.kaldi import DataError
from twister_plugin.report import ReportError, ReportOptions, build_report
from twister_plugin.utils.fileio import OutputError
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("twister_plugin.bin.report")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", required=True, type=Path, help="experiment folder with round<k>/")
    p.add_argument("--out", required=True, type=Path, help="report folder to write")
    p.add_argument("--data", type=Path, help="Kaldi data dirs of the test sets (default: "
                   "<exp>/../data when it exists)")
    p.add_argument("--examples", type=int, default=2,
                   help="most improved and most regressed utterances per round and test set")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    log_config(logger, "report", args)
    try:
        files = build_report(ReportOptions(exp=args.exp, out=args.out, data=args.data,
                                           n_examples=args.examples))
    except (ReportError, DataError, OutputError) as e:
        logger.error("%s", e)
        return 1
    logger.info("wrote %s and %s", files.markdown, files.html)
    return 0


if __name__ == "__main__":
    sys.exit(main())
