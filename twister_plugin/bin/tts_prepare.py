r"""Prepare an ESPnet TTS dump from a Kaldi data dir of (pseudo-)labelled speech.

Frontend -> phone ``text`` + token list; audio resampled to --fs; pooled Whisper-encoder speaker
embeddings (``spembs``), speaker ids (``sids``), shape files, stats.json, voices.npz.

Usage:
    python -m twister_plugin.bin.tts_prepare --data data/train --out dump/tts/train \
        [--whisper tools/whisper/base.pt] [--device cuda] [--fs 16000] [--valid_count 50]
    # a dev set with the training set's normalisation and speaker ids:
    python -m twister_plugin.bin.tts_prepare --data data/dev --out dump/tts/dev --ref dump/tts/train
    # Whisper phone durations (--durations whisper), or only if the TTS config trains on them:
    python -m twister_plugin.bin.tts_prepare ... --durations auto --tts_config conf/tts/fastspeech_base.yaml
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict, fields

import yaml

from twister_plugin.tts.prepare import PrepareConfig, prepare
from twister_plugin.utils.log import log_config, setup_logging


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, PrepareConfig]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", required=True, help="Kaldi dir: wav.scp, text, utt2spk")
    p.add_argument("--out", required=True, help="dump dir to write")
    p.add_argument("--frontend_conf", help="YAML file with FrontendConfig fields")
    for f in fields(PrepareConfig):
        if f.name not in ("frontend", "device"):
            kind = str if f.name == "ref" else type(f.default)
            p.add_argument(f"--{f.name}", type=kind, default=f.default)
    p.add_argument("--device", default="cuda" if _has_cuda() else "cpu", help="Whisper device")
    p.add_argument("--tts_config", help="with --durations auto: the TTS config to be trained on the "
                   "dump; Whisper durations are written when its model uses them")
    a = p.parse_args(argv)
    if a.durations == "auto":
        if not a.tts_config:
            p.error("--durations auto needs --tts_config (the TTS config that decides)")
        a.durations = "whisper" if _config_uses_durations(a.tts_config) else "none"
    frontend = {}
    if a.frontend_conf:
        with open(a.frontend_conf, encoding="utf-8") as fh:
            frontend = yaml.safe_load(fh) or {}
    cfg = PrepareConfig(**{f.name: getattr(a, f.name) for f in fields(PrepareConfig)
                           if f.name != "frontend"}, frontend=frontend)
    return a, cfg


def main(argv: list[str] | None = None) -> int:
    log = setup_logging()
    a, cfg = parse(argv)
    log_config(log, "tts_prepare", {"data": a.data, "out": a.out, **asdict(cfg)})
    stats = prepare(a.data, a.out, cfg)
    logging.info("tts_prepare: %d utterances, %d speakers, excluded %s -> %s", stats["utterances"],
                 stats["speakers"], stats["excluded"], a.out)
    return 0


def _config_uses_durations(path: str) -> bool:
    from twister_plugin.tts.fastspeech import uses_durations

    with open(path, encoding="utf-8") as fh:
        return uses_durations((yaml.safe_load(fh) or {}).get("tts_conf") or {})


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
