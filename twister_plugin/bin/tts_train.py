r"""Train the multi-speaker TTS (ESPnet GAN TTS: VITS; or mel TTS: twister_fastspeech) on a dump.

Copies tokens.txt, frontend.yaml and voices.npz of the training dump into --output_dir (synthesis
reads them there), then runs the task of the config's ``tts`` (TwisterTTSTask for GAN models, TwisterMelTTSTask for
mel models) with ESPnet arguments; every other option goes to ESPnet unchanged, and
``resume: true`` in the config continues an interrupted run.

Usage:
    python -m twister_plugin.bin.tts_train --config conf/tts/vits_base.yaml \
        --train_data dump/tts/train --valid_data dump/tts/dev --output_dir exp/tts \
        [--device cuda] [any ESPnet option, e.g. --max_epoch 100 --batch_bins 2000000]
    python -m twister_plugin.bin.tts_train --config conf/tts/tiny.yaml --dump dump/tts/train \
        --output_dir exp/tts        # valid data = <dump>/valid (tts_prepare --valid_count N)
    python -m twister_plugin.bin.tts_train --config conf/tts/fastspeech_base.yaml \
        --dump dump/tts/train --output_dir exp/tts_fs --device cuda   # mel TTS + Griffin-Lim
    ... --max_minutes 15    # stop after 15 min of training in all (reruns continue the budget)
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from twister_plugin.utils.log import log_config, setup_logging

ARTIFACTS = ("tokens.txt", "frontend.yaml", "voices.npz")


def data_args(split: str, d: Path, durations: bool = False) -> list[str]:
    items = [("text", "text", "text"), ("wav.scp", "speech", "sound"),
             ("spembs.scp", "spembs", "kaldi_ark"), ("utt2sid", "sids", "text_int")]
    if durations:
        if not (d / "durations").is_file():
            raise FileNotFoundError(
                f"{d}: no durations file, but the config's tts_conf uses them (durations_prior / "
                "teacher_durations); rerun tts_prepare with --durations whisper")
        items.append(("durations", "durations", "text_int"))
    out = []
    for fname, name, kind in items:
        out += [f"--{split}_data_path_and_name_and_type", f"{d / fname},{name},{kind}"]
    for shape in ("text_shape.phn", "speech_shape"):
        out += [f"--{split}_shape_file", str(d / shape)]
    return out


def espnet_argv(a: argparse.Namespace, extra: list[str], task, config: dict) -> list[str]:
    train = Path(a.train_data or a.dump)
    valid = Path(a.valid_data or (train / "valid"))
    for d in (train, valid):
        if not (d / "text").is_file():
            raise FileNotFoundError(f"{d}: not a tts_prepare dump (no text); run tts_prepare")
    out = Path(a.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in ARTIFACTS:
        shutil.copyfile(train / name, out / name)
    dim = json.loads((train / "stats.json").read_text())["spembs_dim"]
    frontend = json.dumps(yaml.safe_load((train / "frontend.yaml").read_text()))
    ngpu = ["--ngpu", "1" if a.device == "cuda" else "0"] if "--ngpu" not in extra else []
    from twister_plugin.tts.fastspeech import uses_durations

    durs = uses_durations(tts_conf(config, extra))
    return ["--config", a.config, "--output_dir", str(out), "--token_list", str(out / ARTIFACTS[0]),
            "--frontend_conf", frontend, "--tts_conf", task.spk_embed_conf(dim),
            *data_args("train", train, durs), *data_args("valid", valid, durs), *ngpu, *extra]


def tts_conf(config: dict, extra: list[str]) -> dict:
    """The config's ``tts_conf`` with the command line's ``--tts_conf key=value`` / ``--tts_conf
    "{...}"`` overrides applied, as ESPnet will see it."""
    conf = dict(config.get("tts_conf") or {})
    values = [v for opt, v in zip(extra, extra[1:]) if opt == "--tts_conf"]
    values += [x.split("=", 1)[1] for x in extra if x.startswith("--tts_conf=")]
    for v in values:
        if "=" in v and not v.lstrip().startswith("{"):
            key, val = v.split("=", 1)
            conf[key] = yaml.safe_load(val)
        else:
            conf.update(yaml.safe_load(v) or {})
    return conf


def main(argv: list[str] | None = None) -> int:
    log = setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--train_data", help="tts_prepare dump for training")
    p.add_argument("--valid_data", help="tts_prepare dump for validation (default <train>/valid)")
    p.add_argument("--dump", help="= --train_data DUMP --valid_data DUMP/valid")
    p.add_argument("--device", default="cuda" if _has_cuda() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--max_minutes", type=float, default=0.0,
                   help="wall-time budget of training over all (resumed) runs; 0: max_epoch alone")
    a, extra = p.parse_known_args(argv)
    if not (a.train_data or a.dump):
        p.error("give --train_data (and --valid_data) or --dump")
    log_config(log, "tts_train", {**vars(a), "espnet_extra": extra})
    from twister_plugin.tts.task import task_for

    config = yaml.safe_load(Path(a.config).read_text()) or {}
    task = task_for(config.get("tts"))
    log.info("tts_train: %s", task.__name__)
    cmd = espnet_argv(a, extra, task, config)
    if a.max_minutes > 0:
        from twister_plugin.utils.budget import run_with_budget

        return run_with_budget(task, cmd, Path(a.output_dir), a.max_minutes * 60)
    task.main(cmd=cmd)
    return 0


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
