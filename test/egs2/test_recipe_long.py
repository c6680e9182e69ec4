"""The recipe on one ~2-minute recording (AISHELL S0150 clips joined by silences), stages 1-3 on
CPU: stage 1 cuts it into <= 30-s segments by VAD (data/unlabeled_long -> data/unlabeled with a
segments file), stage 3 pseudo-labels the segments and reports their hours; then the optional
CTC agreement filter re-merges stage 3.

Whisper tiny.en keeps it fast on CPU (~1-2 min). The speech is Mandarin and tiny.en knows only
English, so its labels are junk English (the recording's utt2lang says en, which is all tiny.en
accepts) and the test's pseudo-label config keeps nearly every label: this checks the plumbing
(segments, hours, filters), not label quality.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from twister_plugin.data import read_kaldi_dir, read_manifest, write_kaldi_dir
from twister_plugin.testing.recipe import copy_recipe, recipe_env
from twister_plugin.testing.segment import build_long_recording, write_long_dir

ROOT = Path(__file__).resolve().parents[2]
WHISPER = ROOT / "tools" / "whisper"
MANIFEST = ROOT / ".." / "shared" / "data" / "zh" / "aishell_sample_S0150" / "manifest.tsv"
pytestmark = [
    pytest.mark.skipif(not (WHISPER / "tiny.en.pt").exists(), reason="run tools/get_whisper.sh tiny.en"),
    pytest.mark.skipif(not MANIFEST.is_file(), reason=f"{MANIFEST} not found"),
]

# junk English from Mandarin audio: keep nearly everything (only empty labels are rejected)
LOOSE_FILTERS = {
    "no_speech_hard_threshold": 1.0, "no_speech_threshold": 1.0, "logprob_threshold": -100.0,
    "compression_ratio_threshold": 1000.0, "ngram_max_count": 1000, "suffix_min_units": 100000,
    "reject_unfinished": False, "en_min_rate": 0.0, "en_max_rate": 1000.0, "zh_min_rate": 0.0,
    "zh_max_rate": 1000.0, "min_language_prob": 0.0, "ctc_agreement_min": None,
}


def _pseudo_conf(path: Path, **filters: object) -> Path:
    conf = yaml.safe_load((ROOT / "egs2/twister/asr1/conf/pseudo_label.yaml").read_text(encoding="utf-8"))
    conf["batch_size"] = 16
    conf["decode"]["max_new_tokens"] = 60
    conf["filters"].update({**LOOSE_FILTERS, **filters})
    path.write_text(yaml.safe_dump(conf), encoding="utf-8")
    return path


def _segment_conf(path: Path) -> Path:
    """conf/segment.yaml joining pauses up to 3 s: a few long segments (each Whisper pass costs
    30 s of encoder input, however short the segment) that the 30-s limit must cut."""
    conf = yaml.safe_load((ROOT / "egs2/twister/asr1/conf/segment.yaml").read_text(encoding="utf-8"))
    conf["merge"]["max_gap"] = 3.0
    path.write_text(yaml.safe_dump(conf), encoding="utf-8")
    return path


def _run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["./run.sh", "--whisper_dir", str(WHISPER), "--whisper", "tiny.en", "--nj", "1", *args]
    p = subprocess.run(cmd, cwd=cwd, env=recipe_env(), capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    return p


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    src = tmp_path_factory.mktemp("src")
    rec = build_long_recording(MANIFEST, src / "long1.wav", seconds=115.0, silence=(0.5, 1.5), seed=0)
    long_dir = write_long_dir(rec, src / "long", language="en")
    s0150 = read_manifest(MANIFEST)
    test = s0150.subset(s0150.utt_ids[-2:])
    write_kaldi_dir(test, src / "test")
    (src / "corpus.txt").write_text("今天天气很好\n我们去公园散步\n苹果表配apple pay\n", encoding="utf-8")
    return {"rec": rec, "args": ["--unlabeled_dir", str(long_dir), "--text", str(src / "corpus.txt"),
                                 "--test_sets", f"test={src / 'test'}"], "src": src}


@pytest.fixture(scope="module")
def recipe(inputs, tmp_path_factory) -> Path:
    d = copy_recipe(tmp_path_factory.mktemp("recipe"))
    conf = _pseudo_conf(inputs["src"] / "pseudo.yaml")
    seg_conf = _segment_conf(inputs["src"] / "segment.yaml")
    _run(d, "--stage", "1", "--stop_stage", "3", "--pseudo_conf", str(conf), "--segment_conf", str(seg_conf),
         *inputs["args"])
    return d


def test_stage_1_segments_the_long_recording(recipe: Path, inputs: dict):
    long = read_kaldi_dir(recipe / "data/unlabeled_long", require_text=False)
    assert list(long.wav_scp) == ["long1"] and long.segments is None
    dd = read_kaldi_dir(recipe / "data/unlabeled", require_text=False)
    assert dd.segments is not None and len(dd.segments) >= 4  # ~115 s in <= 30-s pieces
    assert all(s.recording == "long1" and 0 < s.end - s.start <= 30.0 for s in dd.segments.values())
    assert max(s.end - s.start for s in dd.segments.values()) > 20.0  # pauses joined up to the limit
    assert max(s.end for s in dd.segments.values()) <= inputs["rec"].duration + 1e-3
    assert dd.utt2lang and set(dd.utt2lang.values()) == {"en"}
    assert (recipe / "data/unlabeled/report.json").exists()  # the segmenter's own report


def test_stage_3_pseudo_labels_the_segments_and_reports_hours(recipe: Path, inputs: dict):
    segs = read_kaldi_dir(recipe / "data/unlabeled", require_text=False).segments
    pseudo = recipe / "exp/round1/pseudo"
    assert (pseudo / ".done").exists()
    scores = [json.loads(line) for line in (pseudo / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["utt_id"] for r in scores) == sorted(segs)
    report = json.loads((pseudo / "report.json").read_text(encoding="utf-8"))
    assert report["segmented_recordings"] == 1 and report["segments"] == len(segs)
    assert report["segmented_from_hours"] == pytest.approx(inputs["rec"].duration / 3600, abs=1e-4)
    assert report["segments_hours"] == pytest.approx(sum(s.end - s.start for s in segs.values()) / 3600,
                                                     abs=1e-4)
    kept = [r for r in scores if r["kept"]]
    assert kept, "the loose filters keep the non-empty labels"
    assert report["kept_hours"] == pytest.approx(sum(r["end"] - r["start"] for r in kept) / 3600, abs=1e-4)
    assert 0 < report["kept_hours"] <= report["segments_hours"] <= report["segmented_from_hours"]
    assert "long recordings" in (pseudo / "report.txt").read_text(encoding="utf-8")
    out = read_kaldi_dir(pseudo / "data")
    assert out.segments is not None and set(out.segments) == {r["utt_id"] for r in kept}


def test_ctc_filter_without_threshold_fails_before_any_work(inputs: dict, tmp_path: Path):
    d = copy_recipe(tmp_path)
    p = _run(d, "--stage", "1", "--stop_stage", "3", "--ctc_filter", "true", *inputs["args"], check=False)
    assert p.returncode == 2 and "filters.ctc_agreement_min" in p.stderr
    assert not (d / "data").exists()
    p = _run(d, "--segment", "maybe", *inputs["args"], check=False)
    assert p.returncode == 2 and "--segment must be auto, true or false" in p.stderr


def test_ctc_filter_rescores_and_remerges(recipe: Path, inputs: dict):
    """Stage 3 again with --ctc_filter true: a CTC head trained on the kept labels scores every
    record and stage 3 re-merges with the config's threshold (here one no score is below); a
    re-merge at the median score then rejects labels by ctc_agreement."""
    pseudo = recipe / "exp/round1/pseudo"
    (pseudo / ".done").unlink()
    conf = _pseudo_conf(inputs["src"] / "pseudo_ctc.yaml", ctc_agreement_min=-1e9)
    _run(recipe, "--stage", "3", "--stop_stage", "3", "--ctc_filter", "true", "--pseudo_conf", str(conf))
    assert (recipe / "exp/round1/ctc/head.pt").exists() and (pseudo / ".done").exists()
    scores = [json.loads(line) for line in (pseudo / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all("ctc_agreement" in r for r in scores)
    report = json.loads((pseudo / "report.json").read_text(encoding="utf-8"))
    assert report["filters"]["ctc_agreement_min"] == -1e9 and report["rejected_by"]["ctc_agreement"] == 0
    # re-merge at the median score: the CTC filter now rejects some labels
    median = sorted(r["ctc_agreement"] for r in scores)[len(scores) // 2]
    conf = _pseudo_conf(inputs["src"] / "pseudo_median.yaml", ctc_agreement_min=median)
    subprocess.run(["python", "-m", "twister_plugin.bin.pseudo_label", "--out", str(pseudo), "--merge",
                    "--config", str(conf)], cwd=recipe, env=recipe_env(), check=True, capture_output=True)
    report = json.loads((pseudo / "report.json").read_text(encoding="utf-8"))
    assert report["rejected_by"]["ctc_agreement"] >= 1
    assert report["kept_hours"] < report["segments_hours"]
    assert f"< {median}" in (pseudo / "report.txt").read_text(encoding="utf-8")
