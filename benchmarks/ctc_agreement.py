"""CTC agreement as a label-free pseudo-label filter, and CTC forced-alignment accuracy, on S0150.

Split as egs2/twister/asr1/local/split_s0150.py: eval = every 5th utterance id, unlabeled = the
rest. Steps: (1) pseudo-label the unlabeled part (greedy, BatchedDecoder); (2) train the CTC
head on those pseudo-labels (frozen encoder); (3) agreement score of every pseudo-label; CER
against the TRUE transcripts (measurement only) of kept vs rejected utterances per threshold
(percentiles of the score); (4) forced alignment of concatenated eval utterances (pairs and
triples, or of a ``--synth_dir`` Kaldi dir) -> |error| in ms at the known joins.

Usage:
    python benchmarks/ctc_agreement.py --model tools/whisper/base.pt --device cuda \
        --out benchmarks/results/ctc_agreement.json
    python benchmarks/ctc_agreement.py --limit 20 --device cpu --epochs 20 --out /tmp/ctc_agree.json
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import time
from pathlib import Path

import numpy as np
import torch

from twister_plugin.ctc.agreement import agreement_scores
from twister_plugin.ctc.align import AlignmentError, align_text
from twister_plugin.ctc.head import encoder_features
from twister_plugin.ctc.train import HeadTrainConfig, train_ctc
from twister_plugin.ctc.units import UnitsConfig, normalize_text
from twister_plugin.data import load_utt, read_kaldi_dir
from twister_plugin.data.manifest import read_manifest
from twister_plugin.scoring import get_metric, score
from twister_plugin.utils.fileio import atomic_write_text
from twister_plugin.utils.log import log_config, setup_logging

logger = logging.getLogger("ctc_agreement")
ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT.parent / "shared" / "data" / "zh" / "aishell_sample_S0150" / "manifest.tsv"
PERCENTILES = (5, 10, 20, 30, 50)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--manifest", default=str(MANIFEST))
    p.add_argument("--model", default=str(ROOT / "tools" / "whisper" / "base.pt"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--limit", type=int, help="use the first N unlabeled (and N/2 eval) utterances")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--hidden-layers", type=int, default=0)
    p.add_argument("--vocab-size", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=16, help="decoder batch")
    p.add_argument("--synth_dir", help="Kaldi dir (wav.scp, text) to concatenate instead of S0150 eval")
    p.add_argument("--work", default="/tmp/ctc_agreement_work", help="head files go here")
    p.add_argument("--out", required=True, help="JSON report")
    return p.parse_args()


def split(manifest: str, limit: int | None):
    dd = read_manifest(manifest)
    num = {u: int(re.search(r"W(\d+)$", u).group(1)) for u in dd.utt_ids}
    ev = [u for u in dd.utt_ids if num[u] % 5 == 0]
    unl = [u for u in dd.utt_ids if num[u] % 5 != 0]
    if limit:
        unl, ev = unl[:limit], ev[: max(4, limit // 2)]
    return dd, unl, ev


def pseudo_label(model, waves, batch_size: int) -> list[str]:
    import opencc

    from twister_plugin.decode import BatchedDecoder, DecoderConfig

    dec = BatchedDecoder(model, DecoderConfig(search="greedy", max_new_tokens=224))
    t2s = opencc.OpenCC("t2s")
    return [t2s.convert(r.text) for r in dec.decode_all(waves, ["zh"] * len(waves), batch_size)]


def cer_of(ids, truth, hyps) -> float | None:
    if not ids:
        return None
    return score({u: truth[u] for u in ids}, {u: hyps[u] for u in ids}, get_metric("cer"))[1].rate


def threshold_table(ids, scores: dict, truth, hyps) -> list[dict]:
    values = np.array([scores[u] for u in ids])
    rows = []
    for pct in PERCENTILES:
        t = float(np.percentile(values, pct))
        kept = [u for u in ids if scores[u] > t]
        rej = [u for u in ids if scores[u] <= t]
        rows.append({"percentile": pct, "threshold": round(t, 4), "n_kept": len(kept), "n_rejected": len(rej),
                     "cer_kept": cer_of(kept, truth, hyps), "cer_rejected": cer_of(rej, truth, hyps)})
    return rows


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def groups(ids: list[str], lens: dict[str, int], max_samples: int = 29 * 16000) -> list[list[str]]:
    """Consecutive pairs then triples of ids (non-overlapping), each under 29 s."""
    out = []
    for size in (2, 3):
        for i in range(0, len(ids) - size + 1, size):
            g = ids[i : i + size]
            if sum(lens[u] for u in g) <= max_samples:
                out.append(g)
    return out


@torch.no_grad()
def join_errors(model, head, units, waves: dict, texts: dict, ids: list[str]) -> dict:
    """|predicted - true| join times (ms) of concatenated utterances aligned with their texts."""
    lens = {u: len(waves[u]) for u in ids}
    mid_err, start_err, failed, n_unk, n_chars_all = [], [], 0, 0, 0
    for g in groups(ids, lens):
        wave = np.concatenate([waves[u] for u in g])
        feats = encoder_features(model, [wave])
        logp = head(feats[0][None].to(next(head.parameters()).device))[0].cpu()  # (F, V)
        try:
            al = align_text(logp, " ".join(texts[u] for u in g), units)
        except AlignmentError as e:
            logger.warning("group %s not aligned: %s", g, e)
            failed += 1
            continue
        n_chars = [len(normalize_text(texts[u]).replace(" ", "")) for u in g]
        n_unk += sum(c.unknown for c in al.chars)
        n_chars_all += len(al.chars)
        k, t_true = 0, 0.0
        for u, n in zip(g[:-1], n_chars[:-1]):
            k += n
            t_true += lens[u] / 16000
            last, first = al.chars[k - 1], al.chars[k]
            mid_err.append(abs((last.end + first.start) / 2 - t_true) * 1000)
            start_err.append(abs(first.start - t_true) * 1000)
    stat = lambda x: {"median_ms": round(float(np.median(x)), 1), "mean_ms": round(float(np.mean(x)), 1)} if x else None  # noqa: E731
    return {"n_groups": len(groups(ids, lens)), "n_joins": len(mid_err), "n_failed": failed,
            "gap_midpoint": stat(mid_err), "next_start": stat(start_err),
            "unknown_char_fraction": round(n_unk / max(n_chars_all, 1), 4)}  # chars outside the units


def agreement_report(unl: list[str], hyps: dict, truth: dict, sc: list, info: dict) -> dict:
    """CER (truth) of pseudo-labels kept / rejected by the agreement scores, per threshold."""
    per_unit = {u: s.per_unit for u, s in zip(unl, sc)}
    agree_cer = {u: -(s.cer if s.cer is not None else 0.0) for u, s in zip(unl, sc)}  # higher = better
    quality = [-(cer_of([u], truth, hyps) or 0.0) for u in unl]
    return {
        "cer_all_pseudo": cer_of(unl, truth, hyps), "head": {k: info[k] for k in ("n_classes", "n_utts")},
        "head_loss_first_last": [info["loss_per_frame"][0], info["loss_per_frame"][-1]],
        # rank correlation of each score with -CER(truth) per utterance: > 0 = the score tracks quality
        "spearman_score_vs_quality": {
            "per_unit": round(spearman([per_unit[u] for u in unl], quality), 4),
            "ctc_greedy_cer": round(spearman([agree_cer[u] for u in unl], quality), 4)},
        "by_threshold_per_unit": threshold_table(unl, per_unit, truth, hyps),
        "by_threshold_ctc_greedy_cer": threshold_table(unl, agree_cer, truth, hyps),
        "worst_5": [{"utt": u, "per_unit": per_unit[u], "ctc_greedy": s.greedy, "hyp": hyps[u],
                     "truth": truth[u]} for u, s in sorted(zip(unl, sc), key=lambda x: x[1].per_unit)[:5]],
    }


def main() -> None:
    setup_logging()
    a = parse_args()
    log_config(logger, "ctc_agreement", a)
    from twister_plugin.asr.inference import load_any

    t0 = time.time()
    dd, unl, ev = split(a.manifest, a.limit)
    model = load_any(a.model, device=a.device)
    waves = {u: load_utt(dd, u, 16000) for u in unl + ev}
    hyps = dict(zip(unl, pseudo_label(model, [waves[u] for u in unl], a.batch_size)))
    t_decode = time.time() - t0
    cfg = HeadTrainConfig(epochs=a.epochs, hidden_layers=a.hidden_layers, device=a.device,
                          units=UnitsConfig(vocab_size=a.vocab_size))
    feats = encoder_features(model, [waves[u] for u in unl])
    head, units, info = train_ctc([hyps[u] for u in unl], [waves[u] for u in unl], model, a.work, cfg,
                                  a.model, features=feats)
    sc = agreement_scores(head, units, feats, [hyps[u] for u in unl])
    report = {"model": a.model, "device": a.device, "n_unlabeled": len(unl), "n_eval": len(ev),
              **agreement_report(unl, hyps, {u: dd.text[u] for u in unl}, sc, info)}
    if a.synth_dir:
        sd = read_kaldi_dir(a.synth_dir)
        s_waves = {u: load_utt(sd, u, 16000) for u in sd.utt_ids}
        report["alignment"] = join_errors(model, head, units, s_waves, sd.text, sd.utt_ids)
    else:
        report["alignment"] = join_errors(model, head, units, waves, dd.text, ev)
    report["seconds"] = {"decode": round(t_decode, 1), "total": round(time.time() - t0, 1)}
    text = json.dumps(report, indent=1, ensure_ascii=False)
    atomic_write_text(a.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
