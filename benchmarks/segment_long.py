r"""Long-recording segmentation benchmark: does VAD segmentation + batched pseudo-labelling keep the
accuracy of decoding the original utterances one by one?

Builds one long recording from the first ``--seconds`` of AISHELL S0150 utterances joined by
0.5-1.5 s silences (seed 0), then decodes it three ways with the same Whisper weights and greedy
settings, and scores each against the manifest transcripts joined in order (CER on the whole
recording, so segment edges need not match utterance edges):

  utt      pseudo_label on the original utterances (the reference system: perfect segmentation)
  seg_gapG twister_plugin.bin.segment (Silero VAD, merge.max_gap G s; 1.0 is the default and
           here keeps ~one utterance a segment, 3.0 joins them into ~20-30 s segments)
           -> pseudo_label on the segments
  whisper  whisper.transcribe on the long file (Whisper's own 30-s windows + timestamps)

Target (issue "Long recordings and alignment"): |CER(seg) - CER(utt)| <= 1.0 absolute.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/segment_long.py --seconds 600 --model tools/whisper/base.pt \
        --work exp/bench_segment --out benchmarks/results/segment_long_cpu.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from twister_plugin.data import read_manifest
from twister_plugin.data.kaldi import write_kaldi_dir
from twister_plugin.scoring.metrics import get_metric
from twister_plugin.scoring.score import score
from twister_plugin.testing.segment import build_long_recording, write_long_dir
from twister_plugin.utils.fileio import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / ".." / "shared" / "data" / "zh" / "aishell_sample_S0150" / "manifest.tsv"


def run(cmd: list[str]) -> float:
    t = time.time()
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return round(time.time() - t, 1)


def pseudo_label(data: Path, out: Path, model: str, device: str) -> tuple[dict[str, str], float]:
    """Texts of every utterance of ``data`` (kept by the filters or not) and the wall time."""
    secs = run([sys.executable, "-m", "twister_plugin.bin.pseudo_label", "--data", str(data),
                "--model", model, "--out", str(out), "--device", device, "--language", "zh"])
    recs = [json.loads(line) for line in open(out / "scores.jsonl", encoding="utf-8")]
    return {r["utt_id"]: r.get("text", "") for r in recs}, secs


def cer(ref: str, hyp: str) -> dict:
    _, s = score({"long1": ref}, {"long1": hyp}, get_metric("cer"))
    return {"cer": s.rate, "n_ref": s.n_ref_tokens, "sub": s.n_sub, "del": s.n_del, "ins": s.n_ins}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=600.0, help="audio to build (utterances)")
    p.add_argument("--model", default=str(REPO / "tools" / "whisper" / "base.pt"))
    p.add_argument("--work", default="exp/bench_segment")
    p.add_argument("--device", default="cpu")
    p.add_argument("--config", default=str(REPO / "egs2/twister/asr1/conf/segment.yaml"))
    p.add_argument("--max-gaps", default="1.0,3.0", help="merge.max_gap values to run (s)")
    p.add_argument("--no-whisper", action="store_true", help="skip whisper.transcribe")
    p.add_argument("--out", help="write the results JSON here")
    a = p.parse_args()
    work = Path(a.work)
    rec = build_long_recording(MANIFEST, work / "long1.wav", seconds=a.seconds, seed=0)
    ref = "".join(rec.texts)
    res: dict = {"seconds_audio": round(rec.duration, 1), "n_utts": len(rec.utts), "model": a.model,
                 "device": a.device}
    # utt: the same utterances, one by one
    utt_dir = work / "utt"
    write_kaldi_dir(read_manifest(MANIFEST).subset(rec.utts), utt_dir)
    texts, res["utt_wall_s"] = pseudo_label(utt_dir, work / "pl_utt", a.model, a.device)
    res["utt"] = cer(ref, "".join(texts[u] for u in rec.utts))
    long_dir = write_long_dir(rec, work / "long")
    save(res, a.out)
    for gap in (float(g) for g in a.max_gaps.split(",")):
        res[f"seg_gap{gap:g}"] = segmented(long_dir, work / f"gap{gap:g}", gap, ref, a)
        res[f"seg_gap{gap:g}"]["delta_vs_utt"] = round(res[f"seg_gap{gap:g}"]["cer"] - res["utt"]["cer"], 2)
        save(res, a.out)  # partial results survive a kill
    # whisper: long-form transcribe with its own timestamps
    if not a.no_whisper:
        text, res["whisper_wall_s"] = whisper_longform(rec.wav, a.model, a.device)
        res["whisper"] = cer(ref, text)
    print(json.dumps(res, indent=1, ensure_ascii=False))
    save(res, a.out)


def save(res: dict, out: str | None) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out), json.dumps(res, indent=1, ensure_ascii=False) + "\n")


def segmented(long_dir: Path, work: Path, max_gap: float, ref: str, a: argparse.Namespace) -> dict:
    """Segment with ``merge.max_gap`` = max_gap (other options from --config), pseudo-label, CER."""
    conf = yaml.safe_load(Path(a.config).read_text(encoding="utf-8"))
    conf.setdefault("merge", {})["max_gap"] = max_gap
    work.mkdir(parents=True, exist_ok=True)
    (work / "segment.yaml").write_text(yaml.safe_dump(conf), encoding="utf-8")
    wall = run([sys.executable, "-m", "twister_plugin.bin.segment", "--data", str(long_dir),
                "--out", str(work / "seg"), "--config", str(work / "segment.yaml")])
    report = json.loads((work / "seg" / "report.json").read_text())
    texts, dec_wall = pseudo_label(work / "seg", work / "pl", a.model, a.device)
    return {**cer(ref, "".join(texts[u] for u in sorted(texts))),  # ids sort by start time
            "segment_wall_s": wall, "decode_wall_s": dec_wall,
            **{k: report[k] for k in ("n_segments", "max_segment_s", "mean_segment_s",
                                      "hours_in", "hours_segments")}}


def whisper_longform(wav: Path, model_path: str, device: str) -> tuple[str, float]:
    import whisper

    from twister_plugin.whisper import load_whisper

    from twister_plugin.data import load_audio

    model = load_whisper(model_path, device=device)
    t = time.time()
    out = whisper.transcribe(model, load_audio(wav, 16000),  # an array: no ffmpeg needed language="zh", fp16=device != "cpu",
                             condition_on_previous_text=True)
    return out["text"], round(time.time() - t, 1)


if __name__ == "__main__":
    main()
