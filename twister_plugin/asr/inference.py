"""Turn a trained plugin ASR model (an ESPnet exp dir) back into an openai-whisper model, so every
decoder (our batched one, openai-whisper's, exporters) can use it.

``load_any(path)`` accepts a Whisper checkpoint (.pt, CTranslate2 or Hugging Face dir) or an
ESPnet exp dir holding ``config.yaml`` and ``valid.loss.best.pth`` (or another ``*.pth``).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import whisper
import yaml

from twister_plugin.asr.lora import merge_lora


def _model_file(exp: Path) -> Path:
    for name in ("valid.loss.best.pth", "valid.loss.ave.pth", "latest.pth"):
        if (exp / name).exists():
            return exp / name
    raise FileNotFoundError(f"{exp}: no model file (valid.loss.best.pth, valid.loss.ave.pth, latest.pth)")


def espnet_to_whisper(exp: Path, model_file: Optional[Path] = None, device: str = "cpu") -> whisper.model.Whisper:
    from twister_plugin.asr.task import TwisterASRTask

    model_file = Path(model_file) if model_file else _model_file(exp)
    conf = yaml.safe_load((exp / "config.yaml").read_text(encoding="utf-8"))
    for part in ("encoder_conf", "decoder_conf"):
        conf.get(part, {}).pop("checkpoint", None)  # weights come from model_file
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8") as f:
        yaml.safe_dump(conf, f)
        f.flush()
        asr, _ = TwisterASRTask.build_model_from_file(f.name, model_file, device="cpu")
    merge_lora(asr)
    enc, dec = asr.encoder, asr.decoder
    model = whisper.model.Whisper(enc.dims)
    model.encoder, model.decoder = enc.encoders, dec.decoders
    return model.to(device).eval()


def load_any(path, device: str = "cpu") -> whisper.model.Whisper:
    path = Path(path)
    if (path / "config.yaml").exists():
        return espnet_to_whisper(path, device=device)
    from twister_plugin.whisper import load_whisper

    return load_whisper(path, device=device).eval()


