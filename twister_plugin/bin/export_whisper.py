"""Export a (fine-tuned) Whisper as an openai .pt, a Hugging Face folder or a CTranslate2 folder.

Usage:
    python -m twister_plugin.bin.export_whisper --model exp/round1/asr --format ct2 \\
        --out exp/round1/ct2 [--dtype float16|float32|int8] [--base tools/whisper/base.pt]
    python -m twister_plugin.bin.export_whisper --model tools/whisper/base.pt --format hf \\
        --out exp/base_hf --dtype float32 [--force]

--model is anything ``twister_plugin.asr.inference.load_any`` reads: a Whisper .pt, a
CTranslate2 or Hugging Face folder, or an ESPnet exp dir of our fine-tuning (config.yaml +
valid.loss.best.pth; LoRA adapters are merged). --base gives the alignment heads of the Whisper
the model was fine-tuned from (default for an exp dir: its config's encoder checkpoint, if
present). The CT2 folder runs in faster-whisper (``WhisperModel(dir)``), the HF folder in
transformers (``WhisperForConditionalGeneration.from_pretrained(dir)``), both offline.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import yaml

from twister_plugin.asr.inference import load_any
from twister_plugin.utils.log import log_config, setup_logging
from twister_plugin.whisper import WhisperFormatError, load_whisper
from twister_plugin.whisper.export import (
    ALL_DTYPES, TARGETS, ExportError, adopt_alignment_heads, check_request, export_whisper,
    readback_error)

logger = logging.getLogger("twister_plugin.bin.export_whisper")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Whisper .pt / CT2 / HF folder or exp dir")
    p.add_argument("--format", required=True, choices=list(TARGETS), help="output format")
    p.add_argument("--out", required=True, help="output file (pt) or folder (hf, ct2)")
    p.add_argument("--dtype", default="float16", choices=ALL_DTYPES,
                   help="weight type (int8*/int16: ct2 only)")
    p.add_argument("--base", help="Whisper the model was fine-tuned from (alignment heads)")
    p.add_argument("--force", action="store_true", help="replace an earlier export at --out")
    return p


def base_of(model_path: Path) -> Path | None:
    """The Whisper checkpoint an ESPnet exp dir was initialised from, if it still exists."""
    config = model_path / "config.yaml"
    if not config.is_file():
        return None
    conf = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    ckpt = (conf.get("encoder_conf") or {}).get("checkpoint")
    if ckpt and Path(ckpt).exists():
        return Path(ckpt)
    logger.warning("%s names no Whisper checkpoint that exists here (%r); alignment heads are "
                   "openai's default (pass --base to give the released ones)", config, ckpt)
    return None


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    log_config(logger, "export_whisper", args)
    try:
        check_request(args.out, args.format, args.dtype, args.force)
        model = load_any(args.model)
        base = Path(args.base) if args.base else base_of(Path(args.model))
        if base is not None:
            adopt_alignment_heads(model, load_whisper(base), base)
            logger.info("alignment heads from %s", base)
        start = time.time()
        out = export_whisper(model, args.out, args.format, args.dtype, args.force)
    except (ExportError, WhisperFormatError, FileNotFoundError) as e:
        raise SystemExit(f"export_whisper: {e}") from None
    logger.info("wrote %s (%s, %s) in %.1f s", out, TARGETS[args.format].description,
                args.dtype, time.time() - start)
    logger.info("read back: max |exported - model| = %.3g", readback_error(model, out, args.dtype))


if __name__ == "__main__":
    main()
