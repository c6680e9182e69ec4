"""Pick a trained TTS's checkpoint by round trip (twister_plugin.tts.pick): every kept epoch
speaks a seeded sample of corpus sentences that are not in the TTS's training text, Whisper
transcribes them, the lowest MER becomes ``<model_dir>/valid.roundtrip.best.pth``, which
synthesis loads first. Report: ``<model_dir>/tts_pick.json``.

    python -m twister_plugin.bin.tts_pick --model_dir exp/round1/tts --text data/text/corpus.txt \
        --exclude exp/round1/pseudo/data/text --whisper ../../../tools/whisper/base.pt --sentences 64
"""
from __future__ import annotations

import argparse
import logging
import random
import sys
from pathlib import Path

import yaml

from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger(__name__)


def sentences(corpus: Path, exclude: Path | None, n: int, seed: int) -> list[str]:
    """A seeded sample of ``n`` corpus lines that are not sentences of ``exclude`` (Kaldi text)."""
    from twister_plugin.data.kaldi import iter_lines, read_text
    from twister_plugin.scoring.metrics import normalize_mandarin

    seen = {normalize_mandarin(t) for t in read_text(exclude).values()} if exclude is not None else set()
    lines = [x.strip() for _, x in iter_lines(corpus)]
    usable = [x for x in lines if x and normalize_mandarin(x) not in seen]
    if not usable:
        raise ValueError(f"{corpus}: no sentence left after removing those of {exclude}")
    return random.Random(seed).sample(usable, min(n, len(usable)))


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="tts_train --output_dir")
    p.add_argument("--text", required=True, help="corpus, one sentence a line")
    p.add_argument("--exclude", help="Kaldi text of the TTS training data (never used as test sentences)")
    p.add_argument("--sentences", type=int, default=64)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--whisper", required=True, help="Whisper checkpoint or ASR exp dir for the round trip")
    p.add_argument("--config", help="pseudo_label.yaml: its decode: section is used")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--device", default=None, help="default: cuda if available")
    a = p.parse_args(argv)
    if a.sentences < 1:
        p.error(f"--sentences {a.sentences}: want at least 1 sentence to speak")
    import torch

    from twister_plugin.asr.inference import load_any
    from twister_plugin.decode import BatchedDecoder, DecoderConfig
    from twister_plugin.tts.pick import pick
    from twister_plugin.tts.synthesize import SynthConfig

    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    log_config(logger, "tts_pick", a)
    conf = yaml.safe_load(Path(a.config).read_text(encoding="utf-8")) if a.config else {}
    texts = sentences(Path(a.text), Path(a.exclude) if a.exclude else None, a.sentences, a.seed)
    decoder = BatchedDecoder(load_any(a.whisper, device=device), DecoderConfig(**conf.get("decode", {})))
    report = pick(a.model_dir, texts, decoder, SynthConfig(batch_size=a.batch_size, device=device),
                  batch_size=a.batch_size)
    logger.info("picked %s (round-trip MER %.2f%%) of %d checkpoints -> %s/valid.roundtrip.best.pth",
                report["best"], report["best_mer"], len(report["candidates"]), a.model_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
