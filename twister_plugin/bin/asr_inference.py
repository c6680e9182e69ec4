"""Decode a Kaldi data dir (or shared-data manifest) with a Whisper model or a plugin ASR exp dir.

Writes ``text`` (Kaldi, hypotheses) and ``decode.jsonl`` (one line per utterance with every score)
atomically; audio that cannot be read is logged, counted and left out (``--on_bad_audio error``
stops instead).

Usage:
    python -m twister_plugin.bin.asr_inference --data data/test --model exp/round1/asr \
        --out exp/round1/eval/round1/test [--config conf/decode.yaml] [--device cuda] \
        [--batch_size 64] [--language zh|auto] [--set lm_weight=0.2 --set beam_size=5]
Also writes ``timing.json`` (wall seconds of decoding, audio seconds, x real time).
Several sets with one model load: ``--data d1 d2 --out o1 o2`` (paired in order).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
import yaml

from twister_plugin.asr.decode_dir import decode_dir
from twister_plugin.asr.inference import load_any
from twister_plugin.data.audio import AudioError
from twister_plugin.data.kaldi import DataError, read_kaldi_dir
from twister_plugin.data.manifest import read_manifest
from twister_plugin.decode import BatchedDecoder, DecoderConfig
from twister_plugin.utils.fast_import import fast_exit, skip_espnet_typechecks
from twister_plugin.utils.fileio import atomic_open, atomic_write_text
from twister_plugin.utils.log import log_config, setup_logging
from twister_plugin.whisper import WhisperFormatError

logger = logging.getLogger("asr_inference")


def read_any(path: str):
    p = Path(path)
    return read_manifest(p) if p.suffix == ".tsv" else read_kaldi_dir(p, require_text=False)


def main(argv=None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, nargs="+", help="Kaldi data dir(s) or manifest.tsv")
    p.add_argument("--model", required=True, help="Whisper checkpoint or ESPnet exp dir")
    p.add_argument("--out", required=True, nargs="+", help="one output dir per --data, same order")
    p.add_argument("--config", help="YAML with DecoderConfig fields, batch_size, language")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch_size", type=int)
    p.add_argument("--language", help="force zh, en, ...; default (or auto): utt2lang where given, else detect")
    p.add_argument("--on_bad_audio", choices=["skip", "error"], default="skip")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a decoder config field (YAML value), e.g. lm_weight=0.2")
    a = p.parse_args(argv)
    if len(a.data) != len(a.out):
        p.error(f"--data names {len(a.data)} sets but --out {len(a.out)} dirs: "
                "give one --out per --data")
    conf = yaml.safe_load(Path(a.config).read_text(encoding="utf-8")) if a.config else {}
    bs = a.batch_size or conf.pop("batch_size", 16)
    lang_opt = a.language or conf.pop("language", None)
    conf.pop("batch_size", None), conf.pop("language", None)
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--set {item!r}: want KEY=VALUE")
        conf[key.strip()] = yaml.safe_load(value)
    try:
        dconf = DecoderConfig(**conf)
    except (TypeError, ValueError) as e:  # an unknown or bad config / --set key
        p.error(f"decoder config {a.config or ''}: {e}")
    log_config(logger, "asr_inference", dict(vars(a), decoder=conf, batch_size=bs))
    try:
        sets = [read_any(d) for d in a.data]  # every set checked before the model loads
        model = load_any(a.model, device=a.device)
        decoder = BatchedDecoder(model, dconf)
        language = None if lang_opt in (None, "auto") else lang_opt
        for src, dd, out in zip(a.data, sets, a.out):
            decode_one(dd, decoder, bs, language, a.device, a.on_bad_audio, Path(out))
            logger.info("%s -> %s", src, out)
    except (DataError, AudioError, WhisperFormatError) as e:
        logger.error("%s", e)
        return 1
    return 0


def decode_one(dd, decoder, bs: int, language: str | None, device: str, on_bad_audio: str,
               out: Path) -> None:
    """Decode one set and write its text, decode.jsonl and timing.json into ``out``."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    dec = decode_dir(dd, decoder, bs, language, on_bad_audio)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    audio_s = sum(dd.utt2dur.get(u, 0.0) for u in dec.ids) if dd.utt2dur else None
    atomic_write_text(out / "timing.json", json.dumps(dict(
        utts=len(dec.ids), wall_s=round(wall, 3), audio_s=audio_s,
        x_real_time=round(audio_s / wall, 1) if audio_s else None, batch_size=bs,
        device=torch.cuda.get_device_name() if device.startswith("cuda") else "cpu")) + "\n")
    with atomic_open(out / "text") as ft, atomic_open(out / "decode.jsonl") as fj:
        for utt, r in zip(dec.ids, dec.results):
            ft.write(f"{utt} {r.text}\n")
            fj.write(json.dumps(dict(utt=utt, **r.to_dict()), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    skip_espnet_typechecks()  # a job that loads a trained model (see utils/fast_import.py)
    fast_exit(main(sys.argv[1:]))
