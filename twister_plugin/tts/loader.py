"""Load a trained Twister TTS for synthesis without importing ESPnet's task classes.

``TTSTask.build_model_from_file`` needs ``espnet2.tasks.*``, whose ``abs_task`` imports ESPnet's
adapter layers and through them transformers' wav2vec2 model: about half of a synthesis job's
start-up (3-4 s of 6-8 s on the 2-core CPU here), paid again by every shard. This builds the same
model from the same config.yaml for the parts Twister's configs use (the ``tts``,
``feats_extract`` and ``normalize`` classes below, no pitch/energy extractors, no adapters) and
loads the checkpoint with ``strict=True``, so a model built differently cannot pass silently. Any
other config goes through ESPnet's task, as before.

Contract: ``load_tts(config_yaml, checkpoint, device) -> (model, args)`` with ``model`` an
``ESPnetTTSModel`` (mel models) or ``ESPnetGANTTSModel`` (VITS) in eval mode on ``device`` and
``args`` the config as an ``argparse.Namespace`` (token_list as a list).
"""
from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

import torch
import yaml

logger = logging.getLogger(__name__)

# config name -> (module, class); the names ESPnet's class choices give these classes
TTS_CLASSES = {"vits": ("espnet2.gan_tts.vits", "VITS"),
               "twister_fastspeech": ("twister_plugin.tts.fastspeech", "TwisterFastSpeech")}
GAN_MODELS = {"vits"}
FEATS_CLASSES = {"fbank": ("espnet2.tts.feats_extract.log_mel_fbank", "LogMelFbank"),
                 "linear_spectrogram": ("espnet2.tts.feats_extract.linear_spectrogram", "LinearSpectrogram")}
NORMALIZE_CLASSES = {"global_mvn": ("espnet2.layers.global_mvn", "GlobalMVN")}
UNSUPPORTED = ("pitch_extract", "energy_extract", "pitch_normalize", "energy_normalize")


def _class(table: dict, name: str):
    module, cls = table[name.lower()]
    return getattr(importlib.import_module(module), cls)


def direct_build_supported(args: argparse.Namespace) -> str | None:
    """None when :func:`build_direct` can build this config, else the reason it cannot."""
    tts, feats, odim, normalize = (getattr(args, k, None) for k in ("tts", "feats_extract", "odim", "normalize"))
    if (tts or "").lower() not in TTS_CLASSES:
        return f"tts {tts!r}"
    if odim is not None or (feats or "").lower() not in FEATS_CLASSES:
        return f"feats_extract {feats!r} / odim {odim!r}"
    if normalize is not None and normalize.lower() not in NORMALIZE_CLASSES:
        return f"normalize {normalize!r}"
    extra = [k for k in UNSUPPORTED if getattr(args, k, None) is not None]
    if extra or getattr(args, "use_adapter", False):
        return f"{', '.join(extra) or 'adapter'} set"
    if not isinstance(getattr(args, "token_list", None), list):
        return "token_list is not a list"
    return None


def build_direct(args: argparse.Namespace) -> torch.nn.Module:
    """The model ESPnet's TTSTask / GANTTSTask.build_model makes for a supported config."""
    feats_extract = _class(FEATS_CLASSES, args.feats_extract)(**(args.feats_extract_conf or {}))
    normalize = (_class(NORMALIZE_CLASSES, args.normalize)(**(args.normalize_conf or {}))
                 if args.normalize is not None else None)
    tts = _class(TTS_CLASSES, args.tts)(idim=len(args.token_list), odim=feats_extract.output_size(),
                                         **(args.tts_conf or {}))
    parts = dict(feats_extract=feats_extract, normalize=normalize, pitch_extract=None,
                 pitch_normalize=None, energy_extract=None, energy_normalize=None, tts=tts)
    if args.tts.lower() in GAN_MODELS:
        from espnet2.gan_tts.espnet_model import ESPnetGANTTSModel

        return ESPnetGANTTSModel(**parts, **(getattr(args, "model_conf", None) or {}))
    from espnet2.tts.espnet_model import ESPnetTTSModel

    return ESPnetTTSModel(**parts, **(getattr(args, "model_conf", None) or {}))


def load_tts(config: str | Path, checkpoint: str | Path, device: str = "cpu"):
    """(model in eval mode on ``device``, config Namespace) of a tts_train output."""
    with open(config, encoding="utf-8") as f:
        args = argparse.Namespace(**yaml.safe_load(f))
    why = direct_build_supported(args)
    if why is None:
        model = build_direct(args).to(device)
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        try:
            model.load_state_dict(state.get("module", state), strict=True)
        except RuntimeError as e:  # built differently from what was trained: ESPnet's own way
            why = f"checkpoint does not match the direct build ({str(e)[:200]})"
        else:
            return model.eval(), args
    logger.info("%s: loading through ESPnet's task (%s)", config, why)
    from twister_plugin.tts.task import task_for

    model, args = task_for(args.tts).build_model_from_file(config, checkpoint, device)
    return model.eval(), args
