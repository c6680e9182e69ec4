"""Round-trip filter for synthetic speech: Whisper transcribes every synthetic utterance; it is
kept only if its error rate against the text it was made from is at most ``max_err`` and its
duration fits the text. ``--metric mer`` (default): Han characters and English words as tokens;
``--metric ser``: pinyin syllables with tone instead of Han characters, numbers read out first
(``twister_plugin.scoring.metrics``), so a homophone the recogniser wrote with other characters
is not held against the audio.

Writes ``data/`` (Kaldi dir of kept utterances), ``scores.jsonl`` (per utterance: hypothesis,
``cer`` = MER and ``ser`` in percent whichever judged, duration, kept, reasons) and
``report.{json,txt}`` (total, kept, per-speaker yield) atomically.

Usage:
    python -m twister_plugin.bin.roundtrip_filter --synth exp/round1/synth/raw \
        --model tools/whisper/base.pt --config conf/pseudo_label.yaml --out exp/round1/synth \
        [--max_err 20] [--metric mer|ser] [--device cuda]
    # judge again with other thresholds / metric, from an earlier run's hypotheses (no decoding):
    python -m twister_plugin.bin.roundtrip_filter --synth exp/round1/synth/raw \
        --hyps exp/round1/synth/scores.jsonl --out exp/round1_ser/synth --metric ser --max_err 30
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path

import torch
import yaml

from twister_plugin.asr.decode_dir import decode_dir
from twister_plugin.asr.inference import load_any
from twister_plugin.data.kaldi import read_kaldi_dir, write_kaldi_dir
from twister_plugin.decode import BatchedDecoder, DecoderConfig
from twister_plugin.scoring.metrics import get_metric
from twister_plugin.scoring.score import UttScore, score
from twister_plugin.utils.fileio import atomic_open, atomic_write_text
from twister_plugin.utils.fast_import import fast_exit, skip_espnet_typechecks
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("roundtrip_filter")


def percent(u: UttScore) -> float:
    """An utterance's error rate in percent (100 for words spoken over an empty text)."""
    return 100.0 if u.rate == float("inf") else u.rate


def judge(u: UttScore, dur: float, a: argparse.Namespace) -> tuple[float, list[str]]:
    """Round-trip error (percent, of ``u``: the judging metric's score) and rejection reasons.
    The duration check counts the text's units of ``u`` (characters / syllables and words)."""
    err = percent(u)
    reasons = []
    if err > a.max_err:
        reasons.append("roundtrip_err")
    rate = u.n_ref / max(dur, 1e-3)
    if not a.min_rate <= rate <= a.max_rate:
        reasons.append("duration")
    return err, reasons


def token_caps(dd, decoder: BatchedDecoder, max_err: float) -> dict[str, int]:
    """Per utterance, the most tokens worth decoding: a kept hypothesis has at most
    (1 + max_err/100) x the text's units; doubled for spelling that tokenises longer (traditional
    characters, other casing) plus 8. Longer outputs (loops on bad audio) are rejected anyway,
    so they are cut here instead of running to the decoder's maximum."""
    return {u: token_cap(decoder, dd.text[u], max_err) for u in dd.utt_ids}


def token_cap(decoder: BatchedDecoder, text: str, max_err: float) -> int:
    """The most tokens worth decoding for synthetic speech of ``text`` (see token_caps)."""
    return int(2 * (1 + max_err / 100) * len(decoder.tokenizer.encode(" " + text))) + 8


def read_hyps(path: str | Path, dd) -> tuple[dict[str, str], list[str]]:
    """An earlier run's ``scores.jsonl`` -> ({utt: hypothesis} for ``dd``'s utterances, the ids it
    has no hypothesis for: unreadable audio then). Errors name the file and line."""
    hyps: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                hyps[row["utt_id"]] = row["hyp"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise SystemExit(f"{path}:{n}: not a roundtrip_filter scores line ({type(e).__name__}: {e})")
    stray = sorted(set(hyps) - set(dd.utt_ids))
    if stray:
        raise SystemExit(f"{path}: {len(stray)} utterances not in the synthetic data dir "
                         f"(first: {', '.join(stray[:3])}): hypotheses of another run?")
    return {u: hyps[u] for u in dd.utt_ids if u in hyps}, [u for u in dd.utt_ids if u not in hyps]


def main(argv=None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synth", required=True, help="Kaldi dir of synthetic speech with its text")
    p.add_argument("--model", help="Whisper that transcribes (not with --hyps)")
    p.add_argument("--hyps", help="an earlier run's scores.jsonl: judge its hypotheses, decode nothing")
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="pseudo_label.yaml: its decode: and batch_size are used")
    p.add_argument("--max_err", type=float, default=20.0, help="max round-trip error rate (percent)")
    p.add_argument("--metric", choices=("mer", "ser"), default="mer",
                   help="mer: characters and words; ser: pinyin syllables with tone and words")
    p.add_argument("--min_rate", type=float, default=0.5, help="min text tokens per second of audio")
    p.add_argument("--max_rate", type=float, default=12.0, help="max text tokens per second of audio")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    if bool(a.model) == bool(a.hyps):
        p.error("give exactly one of --model (transcribe) and --hyps (an earlier run's scores.jsonl)")
    conf = yaml.safe_load(Path(a.config).read_text(encoding="utf-8")) if a.config else {}
    log_config(logger, "roundtrip_filter", a)
    dd = read_kaldi_dir(a.synth)
    if a.hyps:
        hyps, bad = read_hyps(a.hyps, dd)
    else:
        decoder = BatchedDecoder(load_any(a.model, device=a.device), DecoderConfig(**conf.get("decode", {})))
        caps = token_caps(dd, decoder, a.max_err)
        dec = decode_dir(dd, decoder, conf.get("batch_size", 16), max_new_tokens=caps)
        hyps, bad = {utt: res.text for utt, res in zip(dec.ids, dec.results)}, dec.bad
    refs = {u: dd.text[u] for u in hyps}
    rates = {m: score(refs, hyps, get_metric(m))[0] for m in ("mer", "ser")}  # each sorted by id
    out, kept, per_spk = Path(a.out), [], defaultdict(lambda: {"total": 0, "kept": 0})
    with atomic_open(out / "scores.jsonl") as f:
        for u, mer, ser in zip(rates[a.metric], rates["mer"], rates["ser"]):
            utt, dur = u.utt_id, (dd.utt2dur or {}).get(u.utt_id) or 0.0
            err, reasons = judge(u, dur, a)
            spk = dd.utt2spk[utt]
            per_spk[spk]["total"] += 1
            per_spk[spk]["kept"] += not reasons
            kept += [utt] if not reasons else []
            row = dict(utt_id=utt, speaker=spk, text=dd.text[utt], hyp=hyps[utt],
                       cer=round(percent(mer), 2), ser=round(percent(ser), 2), duration=dur,
                       kept=not reasons, reasons=reasons)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    report = dict(total=len(dd.utt_ids), decoded=len(hyps), bad_audio=len(bad), kept=len(kept),
                  max_cer=a.max_err, metric=a.metric, per_speaker=dict(per_spk))
    atomic_write_text(out / "report.json", json.dumps(report, indent=1, sort_keys=True) + "\n")
    atomic_write_text(out / "report.txt", f"round trip: kept {len(kept)} of {len(dd.utt_ids)} "
                      f"(max {a.metric.upper()} {a.max_err}%, {len(bad)} unreadable)\n")
    if kept:
        write_kaldi_dir(dd.subset(kept), out / "data")
    else:
        logger.warning("round trip kept nothing: %s/data is not written", out)
    logger.info("kept %d of %d synthetic utterances", len(kept), len(dd.utt_ids))
    return 0


if __name__ == "__main__":
    skip_espnet_typechecks()  # a job that loads a trained model (see utils/fast_import.py)
    fast_exit(main(sys.argv[1:]))
