"""Round-trip filter for synthetic speech: Whisper transcribes every synthetic utterance; it is
kept only if its error rate against the text it was made from (MER: Han characters and English
words as tokens) is at most ``max_err`` and its duration fits the text.

Writes ``data/`` (Kaldi dir of kept utterances), ``scores.jsonl`` (per utterance: hypothesis,
``cer`` in percent, duration, kept, reasons) and ``report.{json,txt}`` (total, kept, per-speaker
yield) atomically.

Usage:
    python -m twister_plugin.bin.roundtrip_filter --synth exp/round1/synth/raw \
        --model tools/whisper/base.pt --config conf/pseudo_label.yaml --out exp/round1/synth \
        [--max_err 20] [--device cuda]
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
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("roundtrip_filter")


def judge(u: UttScore, dur: float, a: argparse.Namespace) -> tuple[float, list[str]]:
    """Round-trip error (percent; 100 for words spoken over an empty text) and rejection reasons."""
    err = 100.0 if u.rate == float("inf") else u.rate
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


def main(argv=None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synth", required=True, help="Kaldi dir of synthetic speech with its text")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="pseudo_label.yaml: its decode: and batch_size are used")
    p.add_argument("--max_err", type=float, default=20.0, help="max round-trip MER (percent)")
    p.add_argument("--min_rate", type=float, default=0.5, help="min text tokens per second of audio")
    p.add_argument("--max_rate", type=float, default=12.0, help="max text tokens per second of audio")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    conf = yaml.safe_load(Path(a.config).read_text(encoding="utf-8")) if a.config else {}
    log_config(logger, "roundtrip_filter", a)
    dd = read_kaldi_dir(a.synth)
    decoder = BatchedDecoder(load_any(a.model, device=a.device), DecoderConfig(**conf.get("decode", {})))
    caps = token_caps(dd, decoder, a.max_err)
    dec = decode_dir(dd, decoder, conf.get("batch_size", 16), max_new_tokens=caps)
    hyps = {utt: res.text for utt, res in zip(dec.ids, dec.results)}
    scored, _ = score({u: dd.text[u] for u in dec.ids}, hyps, get_metric("mer"))  # sorted by id
    out, kept, per_spk = Path(a.out), [], defaultdict(lambda: {"total": 0, "kept": 0})
    with atomic_open(out / "scores.jsonl") as f:
        for u in scored:
            utt, dur = u.utt_id, (dd.utt2dur or {}).get(u.utt_id) or 0.0
            err, reasons = judge(u, dur, a)
            spk = dd.utt2spk[utt]
            per_spk[spk]["total"] += 1
            per_spk[spk]["kept"] += not reasons
            kept += [utt] if not reasons else []
            f.write(json.dumps(dict(utt_id=utt, speaker=spk, text=dd.text[utt], hyp=hyps[utt], cer=round(err, 2),
                                    duration=dur, kept=not reasons, reasons=reasons), ensure_ascii=False) + "\n")
    report = dict(total=len(dd.utt_ids), decoded=len(dec.ids), bad_audio=len(dec.bad), kept=len(kept),
                  max_cer=a.max_err, per_speaker=dict(per_spk))
    atomic_write_text(out / "report.json", json.dumps(report, indent=1, sort_keys=True) + "\n")
    atomic_write_text(out / "report.txt", f"round trip: kept {len(kept)} of {len(dd.utt_ids)} "
                      f"(max MER {a.max_err}%, {len(dec.bad)} unreadable)\n")
    if kept:
        write_kaldi_dir(dd.subset(kept), out / "data")
    else:
        logger.warning("round trip kept nothing: %s/data is not written", out)
    logger.info("kept %d of %d synthetic utterances", len(kept), len(dd.utt_ids))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
