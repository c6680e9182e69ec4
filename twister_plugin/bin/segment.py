r"""Cut long unlabeled recordings into <= 30 s speech segments (VAD + merge) for pseudo-labelling.

Writes a Kaldi dir (segments, wav.scp, utt2spk, utt2lang, utt2dur), ``cuts.jsonl.gz`` (lhotse)
and ``report.json`` (hours in, hours of segments, number / max / mean length of segments).
The output feeds ``python -m twister_plugin.bin.pseudo_label --data <out>``.

Usage:
    python -m twister_plugin.bin.segment --data data/long --out data/long_seg \
        --config conf/segment.yaml
    python -m twister_plugin.bin.segment --data data/long --out data/long_seg --vad energy
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from twister_plugin.data import read_kaldi_dir
from twister_plugin.segment import load_config, segment_dir
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("segment")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", required=True, help="Kaldi dir of whole recordings: wav.scp, utt2spk "
                   "[, utt2lang]")
    p.add_argument("--out", required=True, help="output Kaldi dir")
    p.add_argument("--config", help="YAML (conf/segment.yaml); defaults when absent")
    p.add_argument("--vad", choices=["silero", "energy"], help="override vad.method")
    p.add_argument("--language", help="override language (utt2lang where the input has none)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    setup_logging()
    args = parse_args(argv)
    log_config(logger, "segment args", args)
    cfg = load_config(args.config, language=args.language)
    if args.vad:
        cfg = replace(cfg, vad=replace(cfg.vad, method=args.vad))
    log_config(logger, "segment", cfg)
    dd = read_kaldi_dir(args.data, require_text=False, allow_pipes=cfg.allow_pipes)
    return segment_dir(dd, args.out, cfg)


if __name__ == "__main__":
    main()
