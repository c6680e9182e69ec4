"""ASR training data for a round: real pseudo-labelled and synthetic utterances mixed by a ratio,
split into train / valid (valid: a label-free dev set for early stopping — pseudo-labels and
round-trip-checked synthetic text, never a test transcript).

The train part can then be augmented, in this order (each step off by default; options from the
``concat`` / ``speed`` / ``noise`` sections of ``--config`` YAML, command-line options win):
    concat  short utterances joined into <= max_seconds windows (twister_plugin.data.concat);
            ``train/concat_map`` says where each source sits in its window
    speed   speed-perturbed copies ``sp<f>-<utt>`` (twister_plugin.data.perturb); with factors < 1
            the concat windows are made shorter (max_seconds * min factor) so copies still fit
    noise   a share of the utterances gets additive noise at a drawn SNR; ``train/noise_map``
Audio made by these steps goes to ``<out>/audio/{concat,speed,noise}/`` and is reused on a rerun.

Writes ``train/`` and ``valid/`` Kaldi dirs and ``report.json`` (counts and hours per source,
and ``steps``: utterances and hours after each step).

Usage:
    python -m twister_plugin.bin.mix_data --real exp/round1/pseudo/data --synth exp/round1/synth/data \
        --real_ratio 0.5 --out exp/round1/asr_data [--valid_share 0.05] [--seed 0] \
        [--config conf/mix.yaml] [--concat_share 0.5] [--concat_max_seconds 30] \
        [--speed_perturb 0.9,1.0,1.1] [--noise_share 0.3] [--noise_snr 10,30] [--noise_source DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import sys
from pathlib import Path

import yaml

from twister_plugin.data.concat import ConcatOptions, Placement, concat_dir, write_concat_map
from twister_plugin.data.kaldi import DataDir, read_kaldi_dir, write_kaldi_dir
from twister_plugin.data.perturb import (
    NoiseOptions, SpeedOptions, add_noise, speed_perturb, write_noise_map,
)
from twister_plugin.utils.config import section
from twister_plugin.utils.fileio import atomic_write_text
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("mix_data")


def counts(n_real: int, n_synth: int, ratio: float) -> tuple[int, int]:
    """How many of each to use so the real share is ``ratio``, using all of the scarcer source."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"--real_ratio must be in [0, 1], got {ratio}")
    if ratio in (0.0, 1.0) or n_real == 0 or n_synth == 0:
        return (n_real if ratio > 0 else 0), (n_synth if ratio < 1 else 0)
    want_real = int(round(n_synth * ratio / (1 - ratio)))
    if want_real <= n_real:
        return want_real, n_synth
    return n_real, int(round(n_real * (1 - ratio) / ratio))


def merge(parts: list[tuple[str, DataDir, list[str]]]) -> DataDir:
    out = DataDir(wav_scp={}, utt2spk={}, text={}, utt2lang={}, utt2dur={}, name="mix")
    for prefix, dd, ids in parts:
        sub = dd.subset(ids)
        if sub.segments:
            raise ValueError(f"{dd.name}: segments are not supported by mix_data yet")
        for u in sub.utt_ids:
            out.wav_scp[prefix + u] = sub.wav_scp[u]
            out.utt2spk[prefix + u] = prefix + sub.utt2spk[u]
            out.text[prefix + u] = sub.text[u]
            out.utt2lang[prefix + u] = (sub.utt2lang or {}).get(u, "zh")
            if sub.utt2dur and u in sub.utt2dur:
                out.utt2dur[prefix + u] = sub.utt2dur[u]
    if len(out.utt2dur) != len(out.wav_scp):
        out.utt2dur = None
    return out


class MixConfigError(ValueError):
    """A bad mix config file or option; the message names the file and section."""


@dataclasses.dataclass(frozen=True)
class Augment:
    concat: ConcatOptions  # concatenation into windows (share 0: off)
    speed: SpeedOptions  # speed perturbation (factors (1.0,): off)
    noise: NoiseOptions  # additive noise (share 0: off)


def _floats(s: str | None, opt: str) -> tuple[float, ...] | None:
    if s is None:
        return None
    try:
        return tuple(float(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise MixConfigError(f"{opt}: want comma-separated numbers, got {s!r}") from None


def load_augment(a: argparse.Namespace) -> Augment:
    """The three sections of ``--config`` (if any), with command-line options on top."""
    raw: dict = {}
    where = a.config or "<defaults>"
    if a.config:
        path = Path(a.config)
        if not path.is_file():
            raise MixConfigError(f"{path}: mix config not found")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict) or set(raw) - {"concat", "speed", "noise"}:
            raise MixConfigError(f"{path}: want a mapping with sections concat, speed, noise; "
                                 f"got {sorted(raw) if isinstance(raw, dict) else type(raw).__name__}")
    sec = lambda cls, name: section(cls, raw.get(name), f"{where}: {name}", MixConfigError,  # noqa: E731
                                    lists_as_tuples=True)
    cli = {"concat": dict(max_seconds=a.concat_max_seconds, share=a.concat_share, gap_seconds=a.concat_gap),
           "speed": dict(factors=_floats(a.speed_perturb, "--speed_perturb")),
           "noise": dict(share=a.noise_share, snr_db=_floats(a.noise_snr, "--noise_snr"), source=a.noise_source)}
    out = {}
    for name, cls in (("concat", ConcatOptions), ("speed", SpeedOptions), ("noise", NoiseOptions)):
        try:
            out[name] = dataclasses.replace(sec(cls, name), **{k: v for k, v in cli[name].items() if v is not None})
        except (TypeError, ValueError) as e:
            raise MixConfigError(f"{where}: {name}: {e}") from None
    for name in ("concat", "noise"):  # --seed unless the section sets its own
        if "seed" not in (raw.get(name) or {}):
            out[name] = dataclasses.replace(out[name], seed=a.seed)
    return Augment(**out)


def _step(name: str, dd: DataDir, **extra) -> dict:
    hours = sum(dd.utt2dur.values()) / 3600 if dd.utt2dur else None
    logger.info("after %s: %d utterances, %s h", name, len(dd.utt_ids), f"{hours:.3f}" if hours else "?")
    return dict(step=name, utts=len(dd.utt_ids), hours=hours, **extra)


def augment(train: DataDir, aug: Augment, out: Path) -> tuple[DataDir, list[dict]]:
    """Concat, speed, noise on the train set; writes concat_map / noise_map into out/train."""
    steps = [_step("mix", train)]
    rows: list[Placement] = []
    if aug.concat.share > 0:
        concat = aug.concat
        if min(aug.speed.factors) < 1.0:  # slowed-down copies must still fit the window
            concat = dataclasses.replace(concat, max_seconds=concat.max_seconds * min(aug.speed.factors))
        train, rows, st = concat_dir(train, out / "audio" / "concat", concat)
        steps.append(_step("concat", train, windows=st.windows, joined=st.joined, written=st.written, reused=st.reused))
    if aug.speed.factors != (1.0,):
        train, origin, st = speed_perturb(train, out / "audio" / "speed", aug.speed)
        by_window: dict[str, list[Placement]] = {}
        for r in rows:
            by_window.setdefault(r.window, []).append(r)
        rows += [Placement(new, r.source, r.start / f, r.end / f)
                 for new, (src, f) in origin.items() for r in by_window.get(src, [])]
        steps.append(_step("speed", train, copies=st.speed_copies, skipped=st.speed_skipped))
    if aug.noise.share > 0:
        train, st = add_noise(train, out / "audio" / "noise", aug.noise)
        write_noise_map(st.noise_rows, out / "train" / "noise_map")
        steps.append(_step("noise", train, noisy=st.noisy))
    if rows:
        write_concat_map(rows, out / "train" / "concat_map")
    return train, steps


def main(argv=None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", required=True)
    p.add_argument("--synth", required=True, help="may be missing when the round trip kept nothing")
    p.add_argument("--real_ratio", type=float, default=0.5)
    p.add_argument("--valid_share", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="YAML with concat / speed / noise sections (conf/mix.yaml)")
    p.add_argument("--concat_max_seconds", type=float, help="longest concatenated window (s)")
    p.add_argument("--concat_share", type=float, help="fraction of planned windows kept (0: off)")
    p.add_argument("--concat_gap", type=float, help="silence between joined utterances (s)")
    p.add_argument("--speed_perturb", help="speed factors, e.g. 0.9,1.0,1.1 (1.0: off)")
    p.add_argument("--noise_share", type=float, help="fraction of utterances with noise (0: off)")
    p.add_argument("--noise_snr", help="SNR range in dB, e.g. 10,30")
    p.add_argument("--noise_source", help="Kaldi dir or list of noise audio paths (default: coloured noise)")
    a = p.parse_args(argv)
    log_config(logger, "mix_data", a)
    aug = load_augment(a)
    log_config(logger, "mix_data augmentation", dataclasses.asdict(aug))
    real = read_kaldi_dir(a.real)
    synth = read_kaldi_dir(a.synth) if Path(a.synth, "wav.scp").exists() else None
    if synth is None:
        logger.warning("%s has no data: training on real pseudo-labelled audio only", a.synth)
    rng = random.Random(a.seed)
    n_real, n_synth = counts(len(real.utt_ids), len(synth.utt_ids) if synth else 0, a.real_ratio)
    parts = [("real-", real, sorted(rng.sample(real.utt_ids, n_real)))]
    if synth and n_synth:
        parts.append(("synth-", synth, sorted(rng.sample(synth.utt_ids, n_synth))))
    mix = merge(parts)
    ids = sorted(mix.utt_ids)
    rng.shuffle(ids)
    n_valid = max(1, int(len(ids) * a.valid_share)) if len(ids) > 1 else 0
    valid, train = sorted(ids[:n_valid]), sorted(ids[n_valid:])
    if not train:
        raise ValueError(f"nothing to train on: {len(ids)} utterances after mixing")
    out = Path(a.out)
    train_dd, steps = augment(mix.subset(train), aug, out)
    write_kaldi_dir(train_dd, out / "train")
    write_kaldi_dir(mix.subset(valid or train[:1]), out / "valid")
    hours = lambda pre: sum(mix.utt2dur[u] for u in train if u.startswith(pre)) / 3600 if mix.utt2dur else None  # noqa: E731
    report = dict(n_real=n_real, n_synth=n_synth, n_train=len(train_dd.utt_ids), n_valid=len(valid),
                  hours_real=hours("real-"), hours_synth=hours("synth-"), real_ratio=a.real_ratio, steps=steps)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
    logger.info("train %d (real %d, synth %d), valid %d", len(train_dd.utt_ids), n_real, n_synth, len(valid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
