"""Make a validated Kaldi data dir (+ lhotse ``cuts.jsonl.gz``) from a shared-data manifest, a
Kaldi data dir or a lhotse CutSet. Skips the work when ``<out>/.done`` exists (written last).

Usage:
    python -m twister_plugin.bin.prepare_data \\
        --manifest ../shared/data/zh/aishell_sample_S0150/manifest.tsv --out data/s0150 \\
        [--ids-file ids.txt] [--lang zh]
    python -m twister_plugin.bin.prepare_data --kaldi-dir data/old --out data/new [--fix-sort]
    python -m twister_plugin.bin.prepare_data --lhotse cuts.jsonl.gz --out data/new

--lang L keeps only utterances of language L (logged), or sets L for a source with no languages.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from twister_plugin.data import (
    DataDir, DataError, from_lhotse, read_kaldi_dir, read_manifest, select_ids, select_language,
    to_lhotse, write_kaldi_dir,
)
from twister_plugin.utils.fileio import atomic_write_text
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("twister_plugin.bin.prepare_data")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="shared-data manifest.tsv")
    src.add_argument("--kaldi-dir", help="Kaldi data dir to validate and copy")
    src.add_argument("--lhotse", help="lhotse CutSet file (one supervision per cut)")
    p.add_argument("--out", required=True, help="data dir to write")
    p.add_argument("--ids-file", help="keep only these utterance ids (one a line)")
    p.add_argument("--lang", help="the set's language (zh, en): other languages are dropped")
    p.add_argument("--allow-pipes", action="store_true", help="accept 'cmd |' wav.scp entries")
    p.add_argument("--allow-empty-text", action="store_true", help="accept empty transcripts")
    p.add_argument("--no-text", action="store_true", help="Kaldi dir without text (unlabeled audio)")
    p.add_argument("--fix-sort", action="store_true", help="sort unsorted Kaldi files")
    p.add_argument("--fix-speaker-ids", action="store_true", help="map bad manifest speaker ids")
    p.add_argument("--force", action="store_true", help="redo even if <out>/.done exists")
    return p


def load(args: argparse.Namespace) -> DataDir:
    if args.manifest:
        return read_manifest(args.manifest, allow_empty_text=args.allow_empty_text,
                             fix_speaker_ids=args.fix_speaker_ids)
    if args.kaldi_dir:
        return read_kaldi_dir(args.kaldi_dir, allow_pipes=args.allow_pipes, check_audio=True,
                              allow_empty_text=args.allow_empty_text, require_text=not args.no_text,
                              fix_sort=args.fix_sort)
    from lhotse import CutSet

    return from_lhotse(CutSet.from_file(args.lhotse), name=args.lhotse)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    log_config(logger, "prepare_data", args)
    out = Path(args.out)
    if (out / ".done").exists() and not args.force:
        logger.info("%s/.done exists: nothing to do (--force to redo)", out)
        return 0
    (out / ".done").unlink(missing_ok=True)
    try:
        dd = load(args)
        if args.no_text:  # unlabeled audio: its transcripts must not reach any later stage
            dd.text = None
        dd = select_ids(dd, args.ids_file) if args.ids_file else dd
        dd = select_language(dd, args.lang) if args.lang else dd
        write_kaldi_dir(dd, out, allow_pipes=args.allow_pipes, allow_empty_text=args.allow_empty_text)
        cuts = to_lhotse(dd, allow_pipes=args.allow_pipes)
    except DataError as e:
        logger.error("%s", e)
        return 1
    tmp = out / ".cuts.tmp.jsonl.gz"
    cuts.to_file(tmp)
    os.replace(tmp, out / "cuts.jsonl.gz")
    atomic_write_text(out / ".done", "")
    logger.info("wrote %s: %d utterances, %d recordings, %d speakers", out, len(dd.utt_ids),
                len(dd.wav_scp), len(set(dd.utt2spk.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
