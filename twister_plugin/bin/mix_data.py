"""ASR training data for a round: real pseudo-labelled and synthetic utterances mixed by a ratio,
split into train / valid (valid: a label-free dev set for early stopping — pseudo-labels and
round-trip-checked synthetic text, never a test transcript).

Writes ``train/`` and ``valid/`` Kaldi dirs and ``report.json`` (counts and hours per source).

Usage:
    python -m twister_plugin.bin.mix_data --real exp/round1/pseudo/data --synth exp/round1/synth/data \
        --real_ratio 0.5 --out exp/round1/asr_data [--valid_share 0.05] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path

from twister_plugin.data.kaldi import DataDir, read_kaldi_dir, write_kaldi_dir
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


def main(argv=None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", required=True)
    p.add_argument("--synth", required=True, help="may be missing when the round trip kept nothing")
    p.add_argument("--real_ratio", type=float, default=0.5)
    p.add_argument("--valid_share", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    log_config(logger, "mix_data", a)
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
    write_kaldi_dir(mix.subset(train), Path(a.out) / "train")
    write_kaldi_dir(mix.subset(valid or train[:1]), Path(a.out) / "valid")
    hours = lambda pre: sum(mix.utt2dur[u] for u in train if u.startswith(pre)) / 3600 if mix.utt2dur else None  # noqa: E731
    report = dict(n_real=n_real, n_synth=n_synth, n_train=len(train), n_valid=len(valid),
                  hours_real=hours("real-"), hours_synth=hours("synth-"), real_ratio=a.real_ratio)
    atomic_write_text(Path(a.out) / "report.json", json.dumps(report, indent=1) + "\n")
    logger.info("train %d (real %d, synth %d), valid %d", len(train), n_real, n_synth, len(valid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
