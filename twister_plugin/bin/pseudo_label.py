"""Pseudo-label unlabeled speech with Whisper, keep what the label-free filters accept.

Decodes shard k of N (resumable: finished shards are skipped, an interrupted one resumes from
its last finished block), then merges when every shard is done (or on ``--merge``) into
``text``, ``scores.jsonl``, ``report.{json,txt}`` and the Kaldi dir ``data/`` of kept utterances.

Usage:
    python -m twister_plugin.bin.pseudo_label --data data/unlabeled --model tools/whisper/base.pt \
        --out exp/round1/pseudo --config conf/pseudo_label.yaml --shard 1/4 --device cuda
    python -m twister_plugin.bin.pseudo_label --cuts cuts.jsonl.gz --model tools/whisper/base.pt \
        --out exp/pseudo --language auto --batch-size 32
    python -m twister_plugin.bin.pseudo_label --out exp/round1/pseudo --merge --num-shards 4 \
        --config conf/pseudo_label.yaml     # re-merge, e.g. with new filter thresholds
"""
from __future__ import annotations

import argparse
import logging

import torch

from twister_plugin.asr.pseudo_label import PseudoLabelError, load_config, run_shard
from twister_plugin.asr.pseudo_merge import all_done, merge
from twister_plugin.utils.fast_import import fast_exit, skip_espnet_typechecks
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("pseudo_label")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="Kaldi dir: wav.scp [+segments] [+utt2lang] [+utt2spk]")
    src.add_argument("--cuts", help="lhotse cuts (.jsonl[.gz]), one supervision per cut")
    p.add_argument("--model", help="Whisper weights (.pt, CTranslate2 or Hugging Face folder) or "
                   "an ESPnet exp dir of a fine-tuned model")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="YAML (conf/pseudo_label.yaml); defaults when absent")
    p.add_argument("--shard", default="1/1", help="K/N: decode shard K of N (default 1/1)")
    p.add_argument("--merge", action="store_true", help="only merge finished shards")
    p.add_argument("--num-shards", type=int, help="N for --merge (checked against the plan)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, help="override batch_size of the config")
    p.add_argument("--language", help="override language: zh, en, ... or auto")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = parse_args(argv)
    log_config(logger, "pseudo_label args", args)
    cfg = load_config(args.config, batch_size=args.batch_size, language=args.language)
    log_config(logger, "pseudo_label", cfg)
    if args.merge:
        merge(args.out, cfg, args.num_shards)
        return
    shard, n_shards = parse_shard(args.shard)
    if not (args.data or args.cuts) or not args.model:
        raise PseudoLabelError("decoding needs --data or --cuts, and --model")
    run_shard(read_input(args.data, args.cuts, cfg.allow_pipes), args.out, shard, n_shards, cfg,
              lambda: make_decoder(args.model, args.device, cfg))
    if all_done(args.out, n_shards):
        merge(args.out, cfg, n_shards)


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise PseudoLabelError(f"--shard {text!r}: want K/N, e.g. 1/4") from None
    if not 1 <= k <= n:
        raise PseudoLabelError(f"--shard {text!r}: want 1 <= K <= N")
    return k, n


def read_input(data: str | None, cuts: str | None, allow_pipes: bool):
    from twister_plugin.data import from_lhotse, read_kaldi_dir

    if data:
        return read_kaldi_dir(data, require_text=False, allow_pipes=allow_pipes)
    from lhotse import CutSet

    return from_lhotse(CutSet.from_file(cuts), name=cuts)


def make_decoder(model_path: str, device: str, cfg):
    """A Whisper checkpoint (.pt, CTranslate2, Hugging Face) or a fine-tuned ESPnet exp dir."""
    from twister_plugin.asr.inference import load_any
    from twister_plugin.decode import BatchedDecoder

    return BatchedDecoder(load_any(model_path, device=device), cfg.decode)


if __name__ == "__main__":
    skip_espnet_typechecks()  # a job that loads a trained model (see utils/fast_import.py)
    fast_exit(main())
