"""Train an LM over Whisper's text tokens (for shallow fusion) with ESPnet's LM trainer.

Text files: one sentence per line (empty lines are refused). Writes ``data/{train,valid}/text``
(``line<N> sentence``), the token list (Whisper ids 0..eot) and shape files, then hands every other
option to ESPnet (``--max_epoch``, ``--resume``, ``--ngpu``, ...).

Usage:
    python -m twister_plugin.bin.lm_train --config conf/lm/transformer_base.yaml \
        --train_text data/text/train.txt --valid_text data/text/valid.txt \
        --output_dir exp/lm [--ngpu 1] [any ESPnet LM option]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml

from twister_plugin.asr.tokenizer import tokenizer_for_vocab
from twister_plugin.lm.task import LMTextError, TwisterLMTask, encode_line, write_lm_token_list
from twister_plugin.utils.fileio import atomic_open
from twister_plugin.utils.log import log_config, setup_logging


def write_split(text: Path, out: Path, whisper_vocab: int) -> tuple[Path, Path]:
    """``out/text`` and ``out/text_shape`` for the sentences of ``text``."""
    tok = tokenizer_for_vocab(whisper_vocab)
    with open(text, encoding="utf-8") as fin, atomic_open(out / "text") as ft, \
            atomic_open(out / "text_shape") as fs:
        for n, line in enumerate(fin, 1):
            try:
                ids = encode_line(tok, line)
            except LMTextError as e:
                raise LMTextError(f"{text}:{n}: {e}") from None
            ft.write(f"line{n:08d} {line.strip()}\n")
            fs.write(f"line{n:08d} {len(ids)}\n")
    return out / "text", out / "text_shape"


def espnet_args(a: argparse.Namespace, whisper_vocab: int) -> list:
    out = Path(a.output_dir)
    tl = write_lm_token_list(out / "tokens.txt", whisper_vocab)
    cmd = ["--config", a.config, "--output_dir", str(out), "--token_list", str(tl),
           "--whisper_vocab", str(whisper_vocab), "--use_preprocessor", "true"]
    for split, text in (("train", a.train_text), ("valid", a.valid_text)):
        data, shape = write_split(Path(text), out / "data" / split, whisper_vocab)
        cmd += [f"--{split}_data_path_and_name_and_type", f"{data},text,text",
                f"--{split}_shape_file", str(shape)]
    return cmd


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--train_text", required=True, help="one sentence per line")
    p.add_argument("--valid_text", required=True)
    p.add_argument("--output_dir", required=True)
    a, rest = p.parse_known_args(argv)
    log_config(logging.getLogger(__name__), "lm_train", a)
    conf = yaml.safe_load(Path(a.config).read_text(encoding="utf-8")) or {}
    TwisterLMTask.main(cmd=espnet_args(a, int(conf.get("whisper_vocab", 51865))) + rest)


if __name__ == "__main__":
    main(sys.argv[1:])
