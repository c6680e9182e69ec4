"""Train a CTC head (sentencepiece units) on a frozen Whisper encoder from a Kaldi dir's text
(e.g. pseudo-labels); optionally score pseudo-label records with it for the ``ctc_agreement``
filter.

Usage:
    python -m twister_plugin.bin.ctc_train --data exp/round1/pseudo/data --model tools/whisper/base.pt \
        --out exp/round1/ctc --device cuda
    python -m twister_plugin.bin.ctc_train --data exp/round1/pseudo/data --model tools/whisper/base.pt \
        --out exp/round1/ctc --device cuda --score-pseudo exp/round1/pseudo
    # then re-merge with filters: {ctc_agreement_min: -1.5}:
    python -m twister_plugin.bin.pseudo_label --out exp/round1/pseudo --merge --config conf/pseudo_label.yaml
Writes ``<out>/units.model``, ``<out>/head.pt`` and ``<out>/train.json``.
"""
from __future__ import annotations

import argparse
import logging

import torch
from tqdm import tqdm

from twister_plugin.ctc.train import HeadTrainConfig, train_ctc
from twister_plugin.ctc.units import UnitsConfig
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("ctc_train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", required=True, help="Kaldi dir with wav.scp and text")
    p.add_argument("--model", required=True, help="Whisper weights or a fine-tuned ESPnet exp dir")
    p.add_argument("--out", required=True, help="output folder (units.model, head.pt, train.json)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, default=HeadTrainConfig.epochs)
    p.add_argument("--lr", type=float, default=HeadTrainConfig.lr)
    p.add_argument("--hidden-layers", type=int, default=0, help="0, 1 or 2 small layers before the output")
    p.add_argument("--vocab-size", type=int, default=UnitsConfig.vocab_size)
    p.add_argument("--model-type", default=UnitsConfig.model_type, help="unigram, char or bpe")
    p.add_argument("--score-pseudo", help="pseudo_label output dir: add ctc_agreement to its records")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from twister_plugin.asr.inference import load_any
    from twister_plugin.data import load_utt, read_kaldi_dir

    setup_logging()
    args = parse_args(argv)
    cfg = HeadTrainConfig(epochs=args.epochs, lr=args.lr, hidden_layers=args.hidden_layers,
                          device=args.device, units=UnitsConfig(args.vocab_size, args.model_type))
    log_config(logger, "ctc_train", cfg)
    dd = read_kaldi_dir(args.data, allow_empty_text=True)  # an empty label: all-blank target
    waves = [load_utt(dd, u, 16000) for u in tqdm(dd.utt_ids, desc="audio", unit="utt")]
    model = load_any(args.model, device=args.device)
    head, units, _ = train_ctc([dd.text[u] for u in dd.utt_ids], waves, model, args.out, cfg,
                               encoder_name=args.model)
    if args.score_pseudo:
        from twister_plugin.ctc.agreement import score_pseudo_dir

        n = score_pseudo_dir(args.score_pseudo, head, units, model)
        logger.info("added ctc_agreement to %d records under %s/shards", n, args.score_pseudo)


if __name__ == "__main__":
    main()
