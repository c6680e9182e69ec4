"""Scoring files and folders: missing / extra hypotheses, score dirs, RESULTS.md, the CLI."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from twister_plugin.bin.score import main
from twister_plugin.data.kaldi import DataError, write_kaldi_dir
from twister_plugin.data.manifest import read_manifest
from twister_plugin.scoring import (
    ResultsError, get_metric, results_table, score, score_files, write_score_dir,
)
from twister_plugin.testing.data import write_files

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
S0150 = SHARED / "zh" / "aishell_sample_S0150" / "manifest.tsv"
LIBRI = SHARED / "en" / "librispeech" / "manifest.tsv"
needs_shared = pytest.mark.skipif(not S0150.is_file(), reason="shared/data absent")


def test_missing_hypothesis_is_all_deletions_and_reported(caplog):
    refs = {"a": "你好世界", "b": "再见", "c": "。"}
    hyps = {"a": "你好世界", "z": "多余"}
    with caplog.at_level(logging.WARNING):
        utts, s = score(refs, hyps, get_metric("cer"), set_name="t")
    assert "2 of 3 references have no hypothesis" in caplog.text
    assert "1 hypotheses have no reference" in caplog.text
    b = next(u for u in utts if u.utt_id == "b")
    assert (b.n_del, b.hyp_missing, b.rate) == (2, True, 100.0)
    assert (s.n_utts, s.n_ref_tokens, s.n_del, s.errors) == (3, 6, 2, 2)
    assert (s.n_missing_hyp, s.n_extra_hyp, s.n_empty_ref) == (2, 1, 1)
    assert s.rate == pytest.approx(100 * 2 / 6, abs=1e-4)


def test_empty_reference_insertions():
    (u,), s = score({"a": "，"}, {"a": "嗯"}, get_metric("cer"))
    assert (u.n_ref, u.n_ins, u.rate) == (0, 1, float("inf"))
    assert s.rate is None and s.n_ins == 1


def test_score_files_refuses_bad_hypothesis_file(tmp_path):
    write_files(tmp_path, {"ref": "a 一\n", "hyp": "a 一\na 二\n", "hyp2": b"a \xff\n"})
    with pytest.raises(DataError, match=r"hyp:2: duplicate id 'a'"):
        score_files(tmp_path / "ref", tmp_path / "hyp")
    with pytest.raises(DataError, match=r"hyp2:1: not valid UTF-8"):
        score_files(tmp_path / "ref", tmp_path / "hyp2")


@pytest.fixture(scope="module")
def s0150_dir(tmp_path_factory) -> Path:
    if not S0150.is_file():
        pytest.skip("shared/data absent")
    out = tmp_path_factory.mktemp("data") / "s0150"
    write_kaldi_dir(read_manifest(S0150), out)
    return out


def test_cli_writes_diffable_score_dir(tmp_path, s0150_dir):
    lines = (s0150_dir / "text").read_text().splitlines()
    hyp_lines = [ln.replace("设定", "設定") for ln in lines[:-2]]  # Traditional: no error
    hyp_lines[0] = hyp_lines[0][:-1]  # W0001: one char deleted
    hyp = write_files(tmp_path, {"hyp": "\n".join(hyp_lines) + "\n"}) / "hyp"
    out = tmp_path / "exp" / "m1" / "decode_s0150" / "score"
    assert main(["--ref", str(s0150_dir / "text"), "--hyp", str(hyp), "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert (s["set"], s["metric"], s["unit"]) == ("s0150", "mer", "token")  # auto: utt2lang + mix
    assert (s["n_utts"], s["n_missing_hyp"], s["n_sub"], s["n_ins"]) == (500, 2, 0, 0)
    missing = sum(len(get_metric("mer").tokens(ln.split(" ", 1)[1])) for ln in lines[-2:])
    assert s["n_del"] == 1 + missing
    rows = (out / "per_utt.tsv").read_text().splitlines()
    assert len(rows) == 501 and rows[0].startswith("utt_id\tn_ref\tsub\tdel\tins")
    assert rows[1].split("\t")[:7] == ["BAC009S0150W0001", "6", "0", "1", "0", "16.67", "0"]
    assert rows[-1].split("\t")[6] == "1"
    assert "MER" in (out / "summary.txt").read_text()
    assert main(["--ref", str(s0150_dir / "text"), "--hyp", str(hyp), "--out", str(tmp_path / "c"),
                 "--metric", "cer"]) == 0
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["metric"] == "cer"


@needs_shared
def test_results_md_from_all_score_dirs(tmp_path):
    exp = tmp_path / "exp"
    for name, manifest in (("zh", S0150), ("en", LIBRI)):
        dd = read_manifest(manifest)
        write_kaldi_dir(dd, tmp_path / "data" / name)
        utts, s = score_files(tmp_path / "data" / name / "text", tmp_path / "data" / name / "text")
        assert s.rate == 0.0
        write_score_dir(exp / "base" / f"decode_{name}" / "score", utts, s)
    utts, s = score_files(tmp_path / "data" / "zh" / "text", tmp_path / "data" / "zh" / "text",
                          metric="mer_spoken")
    write_score_dir(exp / "base" / "decode_zh" / "score_spoken", utts, s)  # the recipe's second score
    (exp / "base" / "decode_zh" / "other").mkdir()
    (exp / "base" / "decode_zh" / "other" / "summary.json").write_text("{}")  # not a score dir
    assert main(["--results", str(exp), "--write", str(tmp_path / "RESULTS.md")]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "do not edit by hand" in text
    assert "| base/decode_en | en | WER | 0.00 |" in text
    assert "| base/decode_zh | zh | MER | 0.00 |" in text
    assert "| base/decode_zh | zh | MER_SPOKEN | 0.00 |" in text
    assert text == results_table(exp)  # regenerated, identical
    (exp / "x" / "score").mkdir(parents=True)
    (exp / "x" / "score" / "summary.json").write_text('{"set": "t"}')
    with pytest.raises(ResultsError, match=r"x/score/summary.json: summary.json lacks \['metric'"):
        results_table(exp)
    assert main(["--results", str(exp), "--write", str(tmp_path / "RESULTS.md")]) == 1
    assert (tmp_path / "RESULTS.md").read_text() == text  # the old file is kept


def test_cli_argument_errors(tmp_path):
    with pytest.raises(SystemExit):
        main(["--ref", "a"])
    with pytest.raises(SystemExit):
        main(["--ref", "a", "--hyp", "b", "--out", "c", "--results", "exp"])
    assert main(["--ref", str(tmp_path / "nope"), "--hyp", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "o")]) == 1


def test_module_entry_point(tmp_path):
    write_files(tmp_path, {"text": "u1 Hello World\n", "hyp": "u1 hello word\n"})
    proc = subprocess.run([sys.executable, "-m", "twister_plugin.bin.score", "--ref",
                           str(tmp_path / "text"), "--hyp", str(tmp_path / "hyp"), "--out",
                           str(tmp_path / "score")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "WER 50.00 %" in (tmp_path / "score" / "summary.txt").read_text()
