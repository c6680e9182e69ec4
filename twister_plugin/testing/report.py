"""Build a fake-but-realistic recipe tree (``data/`` + ``exp/round<k>/``) for report tests.

References are real transcripts from shared/data (AISHELL S0150: Mandarin and code-switched
sets; LibriSpeech: an English set); hypotheses are perturbed copies (substitutions, deletions,
insertions of real tokens), scored with the real scorer into ``score/``. Pseudo-label, synthesis
and mixing reports are drawn at random in the formats the report reads (``report.collect``);
round-trip CERs are computed by the CER metric on perturbed sentences of the shared text corpus;
the training log has ESPnet's line format; stage ``.done`` mtimes are spaced by known seconds.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import humanfriendly
import regex

from twister_plugin.asr.filters import FILTER_NAMES
from twister_plugin.data.kaldi import DataDir, write_kaldi_dir
from twister_plugin.data.manifest import read_manifest
from twister_plugin.scoring import get_metric, score, score_files, write_score_dir
from twister_plugin.testing.data import shared_data
from twister_plugin.utils.fileio import atomic_write_text

TOKEN = regex.compile(r"\p{Han}|[^\s\p{Han}]+")
STAGE_SECONDS = {"pseudo": 620.0, "tts_dump": 45.0, "tts": 3400.0, "synth": 910.0,
                 "asr_data": 12.0, "asr": 1830.0, "eval": 300.0}  # per round, recipe order
PSEUDO_REJECT_P = {"no_speech": 0.02, "avg_logprob": 0.08, "rate_high": 0.04, "rate_low": 0.03,
                   "repeated_ngram": 0.02}  # round-1 rejection probability (others: 0.01),
# halved each round; the filter names are those of twister_plugin.asr.filters
SPEAKERS = ("S0150", "vctk_p225", "vctk_p226", "ljspeech")
MAX_CER = 20.0  # round-trip threshold, %


@dataclass(frozen=True)
class ExpTreeOptions:
    rounds: int = 2  # rounds k = 1..rounds
    n_utts: int = 16  # utterances per Mandarin / code-switched test set
    n_synth: int = 60  # synthesized sentences per round
    epochs: int = 4  # fine-tuning epochs per round
    zeroshot_error: float = 0.25  # token error probability of the zero-shot model
    timing_tsv: bool = False  # also write exp/timing.tsv
    seed: int = 0


@dataclass
class ExpTree:
    root: Path  # the recipe folder (holds data/ and exp/)
    exp: Path
    data: Path
    test_sets: list[str] = field(default_factory=list)


def perturb(text: str, p: float, pool: list[str], rng: random.Random) -> str:
    """``text`` with each token substituted, deleted or followed by an insertion with prob. p."""
    out = []
    for tok in TOKEN.findall(text):
        u = rng.random()
        if u < p / 3:
            out.append(rng.choice(pool))
        elif u < 2 * p / 3:
            continue
        else:
            out.append(tok)
            if u < p:
                out.append(rng.choice(pool))
    joined = ""
    for tok in out:  # Han characters touch each other, everything else is space-separated
        if joined and not (regex.match(r"\p{Han}", tok) and regex.search(r"\p{Han}\Z", joined)):
            joined += " "
        joined += tok
    return joined


def _write_text(path: Path, texts: dict[str, str]) -> None:
    atomic_write_text(path, "".join(f"{u} {t}\n" for u, t in sorted(texts.items())))


def _test_sets(root: Path, n: int) -> dict[str, DataDir]:
    zh = read_manifest(root / "zh" / "aishell_sample_S0150" / "manifest.tsv")
    latin = regex.compile(r"[A-Za-z]")
    cs = [u for u, t in zh.text.items() if latin.search(t)][:n]
    mono = [u for u, t in zh.text.items() if not latin.search(t)][::7][:n]
    sets = {"aishell_zh": zh.subset(mono), "aishell_cs": zh.subset(cs)}
    en = root / "en" / "librispeech" / "manifest.tsv"
    if en.is_file():
        sets["librispeech_en"] = read_manifest(en)
    return sets


def _decode_and_score(tree: ExpTree, sets: dict[str, DataDir], k: int, opts: ExpTreeOptions
                      ) -> None:
    for name, dd in sets.items():
        pool = sorted({t for text in dd.text.values() for t in TOKEN.findall(text)})
        for system, p, seed in (("zeroshot", opts.zeroshot_error, 0),
                                (f"round{k}", opts.zeroshot_error * 0.7 ** k, k)):
            rng = random.Random(f"{opts.seed}/{name}/{seed}")  # zero-shot: same every round
            out = tree.exp / f"round{k}" / "eval" / system / name
            _write_text(out / "text", {u: perturb(t, p, pool, rng) for u, t in dd.text.items()})
            utts, summary = score_files(tree.data / name / "text", out / "text")
            write_score_dir(out / "score", utts, summary)


def _pseudo(rnd: Path, unlabeled: DataDir, k: int, rng: random.Random) -> float:
    prob = {f: PSEUDO_REJECT_P.get(f, 0.01) / 2 ** (k - 1) for f in FILTER_NAMES}
    rejected = {f: 0 for f in FILTER_NAMES}
    rows, hours = [], 0.0
    for u, dur in unlabeled.utt2dur.items():
        reasons = [f for f, p in prob.items() if rng.random() < p]
        for f in reasons:
            rejected[f] += 1
        hours += 0.0 if reasons else dur / 3600.0
        rows.append({"utt_id": u, "duration": dur, "kept": not reasons, "reasons": reasons})
    kept = sum(r["kept"] for r in rows)
    report = {"total": len(rows), "kept": kept, "rejected": rejected, "hours_kept": hours}
    atomic_write_text(rnd / "pseudo" / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(rnd / "pseudo" / "scores.jsonl",
                      "".join(json.dumps(r) + "\n" for r in rows))
    return hours


def _synth(rnd: Path, sentences: list[str], rng: random.Random) -> float:
    pool = sorted({c for s in sentences for c in s})
    refs = {f"synth{i:05d}": s for i, s in enumerate(sentences)}
    hyps = {u: perturb(s, rng.choice((0.0, 0.02, 0.05, 0.1, 0.3, 0.6)), pool, rng)
            for u, s in refs.items()}
    utts, _ = score(refs, hyps, get_metric("cer"))
    rows, per_spk, seconds = [], {s: {"total": 0, "kept": 0} for s in SPEAKERS}, 0.0
    for i, us in enumerate(utts):
        spk = SPEAKERS[i % len(SPEAKERS)]
        kept = us.rate <= MAX_CER
        per_spk[spk]["total"] += 1
        per_spk[spk]["kept"] += kept
        seconds += 0.23 * len(refs[us.utt_id]) if kept else 0.0
        rows.append({"utt_id": us.utt_id, "speaker": spk, "text": refs[us.utt_id],
                     "hyp": hyps[us.utt_id], "cer": round(us.rate, 2), "kept": kept})
    report = {"total": len(rows), "kept": sum(r["kept"] for r in rows), "max_cer": MAX_CER,
              "per_speaker": per_spk}
    atomic_write_text(rnd / "synth" / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(rnd / "synth" / "scores.jsonl",
                      "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return seconds / 3600.0


def espnet_epoch_line(epoch: int, train: float, valid: float, seconds: float) -> str:
    """One ESPnet ``Nepoch results:`` log line (the reporter's key order and formats)."""
    return (f"[node1] 2025-06-01 10:{epoch:02d}:00,123 (trainer:394) INFO: {epoch}epoch results: "
            f"[train] iter_time=1.234e-04, forward_time=0.512, loss_att={train:.3f}, acc=0.412, "
            f"loss={train:.3f}, backward_time=0.301, optim_step_time=0.020, optim0_lr0=1.000e-05, "
            f"train_time=1.050, time={humanfriendly.format_timespan(seconds)}, "
            f"[valid] loss_att={valid:.3f}, acc=0.398, loss={valid:.3f}, "
            f"[att_plot] time=2.1 seconds, total_count={epoch * 40}, gpu_max_cached_mem_GB=0.000")


def _train_log(path: Path, k: int, epochs: int, rng: random.Random) -> None:
    lines = [f"# python3 -m twister_plugin.bin.asr_train --output_dir {path.parent}",
             "# Started at Sun Jun  1 10:00:00 UTC 2025", "#",
             "[node1] 2025-06-01 10:00:01,000 (asr_train:52) INFO: pytorch.version=2.11.0"]
    for e in range(1, epochs + 1):
        train = 250.0 * 0.8 ** (e + (k - 1) * epochs) + rng.uniform(-3, 3)
        valid = train * 1.08 + rng.uniform(-2, 2)
        lines.append(f"[node1] 2025-06-01 10:{e:02d}:00,000 (trainer:774) INFO: {e}epoch:train:"
                     f"1-20batch: iter_time=1.1e-04, loss_att={train + 9:.3f}, "
                     f"loss={train + 9:.3f}")
        lines.append(espnet_epoch_line(e, train, valid, 3723.5 + e))
    lines.append("# Accounting: time=900 threads=1")
    atomic_write_text(path, "\n".join(lines) + "\n")


def _touch_done(tree: ExpTree, rounds: int) -> None:
    t = 1_750_000_000.0
    os.utime(tree.data / ".done", (t, t))
    for k in range(1, rounds + 1):
        for stage, seconds in STAGE_SECONDS.items():
            if stage == "eval" and k == rounds:
                continue  # the report runs before the last round's eval/.done
            t += seconds
            done = tree.exp / f"round{k}" / stage / ".done"
            done.parent.mkdir(parents=True, exist_ok=True)
            done.touch()
            os.utime(done, (t, t))


def build_exp_tree(root: str | Path, opts: ExpTreeOptions = ExpTreeOptions()) -> ExpTree:
    """Write ``<root>/data`` and ``<root>/exp`` (see the module docstring); needs shared/data."""
    shared = shared_data()
    if shared is None:
        raise FileNotFoundError("shared/data is not beside the repository")
    root = Path(root)
    tree = ExpTree(root=root, exp=root / "exp", data=root / "data")
    sets = _test_sets(shared, opts.n_utts)
    for name, dd in sets.items():
        write_kaldi_dir(dd, tree.data / name)
    tree.test_sets = sorted(sets)
    atomic_write_text(tree.data / "test_sets", "\n".join(tree.test_sets) + "\n")
    atomic_write_text(tree.data / ".done", "")
    unlabeled = read_manifest(shared / "zh" / "aishell_sample_S0150" / "manifest.tsv")
    corpus = (shared / "text" / "zh_news_open.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(opts.seed)
    for k in range(1, opts.rounds + 1):
        rnd = tree.exp / f"round{k}"
        real_h = _pseudo(rnd, unlabeled, k, rng)
        synth_h = _synth(rnd, rng.sample(corpus[:2000], opts.n_synth), rng)
        mix = {"hours_real": real_h * 0.5, "hours_synth": synth_h, "real_ratio": 0.5}
        atomic_write_text(rnd / "asr_data" / "report.json", json.dumps(mix, indent=2) + "\n")
        log = rnd / "asr" / ("log/train.log" if k % 2 else "train.log")  # both ESPnet places
        _train_log(log, k, opts.epochs, rng)
        _decode_and_score(tree, sets, k, opts)
    _touch_done(tree, opts.rounds)
    if opts.timing_tsv:
        rows = [f"{k}\t{s}\t{sec:.1f}" for k in range(1, opts.rounds + 1)
                for s, sec in STAGE_SECONDS.items()]
        atomic_write_text(tree.exp / "timing.tsv",
                          "round\tstage\tseconds\n0\tdata\t30.0\n" + "\n".join(rows) + "\n")
    return tree


def chromium() -> str | None:
    """Debian's headless Chromium, if installed (tools/setup.sh installs it)."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html: Path, png: Path, profile: Path, size: tuple[int, int] = (1280, 2000)):
    """Render ``html`` in headless Chromium (no network) to ``png``; returns the image array."""
    import subprocess

    import matplotlib.image as mpimg

    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={png}",
           f"--window-size={size[0]},{size[1]}", Path(html).resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=50)
    if done.returncode != 0 or not Path(png).is_file():
        raise RuntimeError(f"chromium failed on {html}: {done.stderr[-2000:]}")
    return mpimg.imread(png)  # (H, W, 3 or 4), floats in [0, 1]
