"""Fine-tune Whisper with ESPnet's trainer through the plugin's ASR task.

Writes the token list and shape files, then hands every other option to ESPnet (resume, AMP,
grad accumulation, DDP via ``--ngpu N``, ``--freeze_param``, ...).

Usage:
    python -m twister_plugin.bin.asr_train --config conf/asr/finetune_base.yaml \
        --init tools/whisper/base.pt --train_data data/train --valid_data data/dev \
        --output_dir exp/round1/asr \
        [--ngpu 1] [any ESPnet ASR option, e.g. --max_epoch 3 --resume true]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml

from twister_plugin.asr.shapes import write_shapes
from twister_plugin.asr.sizes import dims_for
from twister_plugin.asr.task import TwisterASRTask
from twister_plugin.asr.tokenizer import write_token_list
from twister_plugin.utils.log import log_config, setup_logging


def espnet_args(a: argparse.Namespace, n_vocab: int, lang: str) -> list:
    out = Path(a.output_dir)
    tl = out / "tokens.txt"
    if not tl.exists():
        write_token_list(tl, n_vocab)
    cmd = ["--config", a.config, "--output_dir", str(out), "--token_list", str(tl), "--use_preprocessor", "true"]
    for split, data in (("train", a.train_data), ("valid", a.valid_data)):
        data = Path(data)
        shapes = write_shapes(data, out / "shapes" / split, n_vocab, lang)
        cmd += [f"--{split}_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
                f"--{split}_data_path_and_name_and_type", f"{data}/text,text,text",
                f"--{split}_shape_file", str(shapes["speech_shape"]), f"--{split}_shape_file", str(shapes["text_shape"])]
        if (data / "utt2lang").exists():
            cmd += [f"--{split}_data_path_and_name_and_type", f"{data}/utt2lang,lang,text"]
    return cmd + init_args(a.init)


def init_args(init: str | None) -> list:
    """A Whisper checkpoint initialises encoder and decoder; an ESPnet exp dir (an earlier round)
    initialises the whole model from its best checkpoint."""
    if not init:
        return []
    path = Path(init)
    if (path / "config.yaml").exists():
        best = path / "valid.loss.best.pth"
        if not best.exists():
            raise FileNotFoundError(f"{path}: no valid.loss.best.pth to initialise from")
        return ["--init_param", str(best)]
    if not path.exists():
        raise FileNotFoundError(f"{path}: Whisper checkpoint not found")
    return ["--encoder_conf", f"checkpoint={path}", "--decoder_conf", f"checkpoint={path}"]


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--train_data", required=True, help="Kaldi dir: wav.scp, text, [utt2lang, utt2dur]")
    p.add_argument("--valid_data", required=True)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--init", help="Whisper checkpoint (.pt, CT2 or HF dir) or an earlier exp dir")
    a, rest = p.parse_known_args(argv)
    log_config(logging.getLogger(__name__), "asr_train", a)
    conf = yaml.safe_load(Path(a.config).read_text(encoding="utf-8"))
    n_vocab = dims_for(conf.get("encoder_conf", {}).get("size", "base")).n_vocab
    lang = conf.get("preprocessor_conf", {}).get("language", "zh")
    TwisterASRTask.main(cmd=espnet_args(a, n_vocab, lang) + rest)


if __name__ == "__main__":
    main(sys.argv[1:])
