"""Import Whisper weights (CTranslate2 / Hugging Face folder or .pt) as an openai-whisper .pt.

Usage:
    python -m twister_plugin.bin.import_whisper \
        --src tools/whisper/ct2/base --out tools/whisper/base.pt --name base
    python -m twister_plugin.bin.import_whisper --src hf_dir --out x.pt --dtype float32

The output ({"dims", "model_state_dict", "alignment_heads"}) loads with
``twister_plugin.whisper.load_whisper(out)`` and with ``whisper.load_model(out)``.
"""
from __future__ import annotations

import argparse
import logging

import torch

from twister_plugin.utils.log import log_config, setup_logging
from twister_plugin.whisper import load_whisper, save_checkpoint

DTYPES = {"float16": torch.float16, "float32": torch.float32}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="CTranslate2 dir, Hugging Face dir or .pt")
    parser.add_argument("--out", required=True, help="output openai-whisper checkpoint (.pt)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16",
                        help="storage dtype of the floats in the output")
    parser.add_argument("--name", default=None, help="model name, for the log only")
    args = parser.parse_args(argv)
    log = logging.getLogger("import_whisper")
    setup_logging()
    log_config(log, "import_whisper", args)
    model = load_whisper(args.src)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%s: %s, %.1fM parameters", args.name or args.src, model.dims, n_params / 1e6)
    save_checkpoint(model, args.out, dtype=DTYPES[args.dtype])
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
