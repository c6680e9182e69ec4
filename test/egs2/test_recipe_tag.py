"""run.sh --tag: an ablation mix of a round (stages 7-9) in exp/round<k>_<tag>/, from the round's
own pseudo-labels and synthetic data, without a second script. Stage 7 only (mixing real S0150
utterances): seconds on CPU; stages 8-9 of a tagged run are the same commands as untagged ones,
which the end-to-end recipe tests run."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from twister_plugin.data import read_kaldi_dir, read_manifest, write_kaldi_dir
from twister_plugin.testing.recipe import copy_recipe, recipe_env

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / ".." / "shared" / "data" / "zh" / "aishell_sample_S0150" / "manifest.tsv"
pytestmark = pytest.mark.skipif(not MANIFEST.is_file(), reason=f"{MANIFEST} not found")


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["./run.sh", *args], cwd=cwd, env=recipe_env(), capture_output=True,
                          text=True, timeout=300)


@pytest.fixture()
def recipe(tmp_path) -> Path:
    """A recipe copy whose round 1 has pseudo-labels (12 real S0150 utterances) and no synthesis."""
    rdir = copy_recipe(tmp_path)
    s0150 = read_manifest(MANIFEST)
    pseudo = rdir / "exp" / "round1" / "pseudo"
    write_kaldi_dir(s0150.subset(s0150.utt_ids[:12]), pseudo / "data")
    (pseudo / ".done").touch()
    return rdir


def test_selftrain_tag_mixes_real_only_into_its_own_dir(recipe):
    p = _run(recipe, "--stage", "7", "--stop_stage", "7", "--tag", "selftrain", "--real_ratio", "1.0")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = recipe / "exp" / "round1_selftrain" / "asr_data"
    assert (out / ".done").exists() and not (recipe / "exp" / "round1" / "asr_data").exists()
    train, valid = read_kaldi_dir(out / "train"), read_kaldi_dir(out / "valid")
    assert len(train.utt_ids) + len(valid.utt_ids) == 12
    assert set(train.utt_ids) | set(valid.utt_ids) == {f"real-{u}" for u in read_manifest(MANIFEST).utt_ids[:12]}
    report = json.loads((out / "report.json").read_text())
    assert report["n_real"] == 12 and report["n_synth"] == 0
    # a rerun finds the tagged stage done
    again = _run(recipe, "--stage", "7", "--stop_stage", "7", "--tag", "selftrain", "--real_ratio", "1.0")
    assert again.returncode == 0 and "skip: exp/round1_selftrain/asr_data is done" in again.stdout


def test_a_tag_that_needs_synthetic_data_says_which_stage_is_missing(recipe):
    p = _run(recipe, "--stage", "7", "--stop_stage", "7", "--tag", "twister", "--real_ratio", "0.2")
    assert p.returncode == 2
    assert "--tag twister: exp/round1/synth is not done (run stages 3-6 first)" in p.stdout
    assert not (recipe / "exp" / "round1_twister" / "asr_data" / ".done").exists()


def test_a_tag_can_judge_the_rounds_synthetic_speech_again(recipe):
    """--tag_roundtrip_opts: the round's synthetic speech judged again from its round-trip
    hypotheses (no decoding) into the tag's own synth dir, which its mix then draws from."""
    s0150 = read_manifest(MANIFEST)
    ids = s0150.utt_ids[20:28]
    synth = recipe / "exp" / "round1" / "synth"
    write_kaldi_dir(s0150.subset(ids), synth / "raw")  # stands in for synthetic audio
    homophone = {"店": "电", "名": "明", "饭": "范", "滩": "摊"}  # same syllable and tone
    rows = []
    for i, u in enumerate(ids):
        text = s0150.text[u]
        swapped = "".join(homophone.get(c, c) for c in text)
        hyp = text if i < 4 else swapped if i < 6 else "完全不同的一句话"
        rows.append(json.dumps({"utt_id": u, "hyp": hyp}, ensure_ascii=False))
    (synth / "scores.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    write_kaldi_dir(s0150.subset(ids[:4]), synth / "data")  # what stage 6 kept (MER)
    (synth / ".done").touch()
    p = _run(recipe, "--stage", "7", "--stop_stage", "7", "--tag", "ser", "--real_ratio", "0.5",
             "--tag_roundtrip_opts", "--metric ser --max_err 30")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    judged = recipe / "exp" / "round1_ser" / "synth"
    scores = {r["utt_id"]: r for r in map(json.loads, (judged / "scores.jsonl").read_text().splitlines())}
    assert (judged / ".done").exists()
    assert json.loads((judged / "report.json").read_text())["metric"] == "ser"
    assert all(scores[u]["kept"] for u in ids[:4]) and not any(scores[u]["kept"] for u in ids[6:])
    for u in ids[4:6]:  # homophones: MER counts them, SER does not
        assert scores[u]["cer"] >= 25 and scores[u]["ser"] == 0, scores[u]
    kept = sorted(u for u in ids if scores[u]["kept"])
    assert sorted(read_kaldi_dir(judged / "data").utt_ids) == kept
    report = json.loads((recipe / "exp" / "round1_ser" / "asr_data" / "report.json").read_text())
    assert report["n_synth"] == len(kept) > 4


def test_a_tag_can_give_the_real_utterances_other_text(recipe):
    """--tag_real_text: the topline ablation (the same real audio with its true transcripts)
    mixes the given text, never the pseudo-labels, and leaves the round's own data untouched."""
    s0150 = read_manifest(MANIFEST)
    ids = s0150.utt_ids[:12]
    pseudo = recipe / "exp" / "round1" / "pseudo" / "data" / "text"
    pseudo.write_text("".join(f"{u} 伪标签{i}\n" for i, u in enumerate(ids)), encoding="utf-8")
    truth = recipe / "truth.txt"
    truth.write_text("".join(f"{u} {s0150.text[u]}\n" for u in s0150.utt_ids), encoding="utf-8")
    p = _run(recipe, "--stage", "7", "--stop_stage", "7", "--tag", "oracle", "--real_ratio", "1.0",
             "--tag_real_text", str(truth))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = recipe / "exp" / "round1_oracle" / "asr_data"
    mixed = {}
    for part in ("train", "valid"):
        mixed.update(read_kaldi_dir(out / part).text)
    assert mixed == {f"real-{u}": s0150.text[u] for u in ids}
    assert "伪标签0" in pseudo.read_text(encoding="utf-8")


def test_a_real_text_without_an_utterance_names_it(recipe):
    s0150 = read_manifest(MANIFEST)
    truth = recipe / "truth.txt"
    lines = "".join(f"{u} {s0150.text[u]}\n" for u in s0150.utt_ids[1:12])
    truth.write_text(lines, encoding="utf-8")
    p = _run(recipe, "--stage", "7", "--stop_stage", "7", "--tag", "oracle", "--real_ratio", "1.0",
             "--tag_real_text", str(truth))
    assert p.returncode != 0
    assert (f"pseudo/data/text: utterance {s0150.utt_ids[0]} has no line in the --tag_real_text "
            f"file {truth}") in p.stderr
    assert not (recipe / "exp" / "round1_oracle" / "asr_data" / ".done").exists()
