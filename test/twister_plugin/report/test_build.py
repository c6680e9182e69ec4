import re
import shutil
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest

from twister_plugin.report import ReportOptions, build_report, collect
from twister_plugin.testing.data import shared_data
from twister_plugin.testing.report import ExpTreeOptions, build_exp_tree

pytestmark = pytest.mark.skipif(shared_data() is None, reason="shared/data not beside the repo")

TITLES = ("Error rates (CER / WER / MER)", "Pseudo-label filtering",
          "Synthetic speech and round-trip filter", "ASR training data (hours)",
          "Fine-tuning loss", "Wall time per stage", "Example utterances")
PNGS = ("error_rates.png", "pseudo_filters.png", "roundtrip_cer.png", "hours.png", "loss.png",
        "walltime.png")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_exp_tree(tmp_path_factory.mktemp("recipe"), ExpTreeOptions(rounds=2))


@pytest.fixture(scope="module")
def report(tree):
    return build_report(ReportOptions(exp=tree.exp, out=tree.exp / "report"))


def test_every_section_and_figure(tree, report):
    md = report.markdown.read_text(encoding="utf-8")
    page = report.html.read_text(encoding="utf-8")
    for title in TITLES:
        assert f"## {title}" in md and f"<h2>{title}</h2>" in page
    assert "not available" not in md
    assert sorted(p.name for p in report.pngs) == sorted(PNGS)
    for name in PNGS:
        img = mpimg.imread(report.html.parent / name)  # (H, W, 4) floats in [0, 1]
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400
        assert img[..., :3].std() > 0.05, f"{name} looks blank"
    assert not list(report.html.parent.glob(".*.tmp"))


def test_rates_and_examples_match_the_score_files(tree, report):
    md = report.markdown.read_text(encoding="utf-8")
    for r in collect(tree.exp).rounds:
        for t in tree.test_sets:
            a, b = (r.scores[(s, t)]["rate"] for s in ("zeroshot", r.system))
            metric = r.scores[(r.system, t)]["metric"].upper()
            assert f"| {r.k} | {t} | {metric} | {a:.2f} | {b:.2f} | {b - a:+.2f} |" in md
            assert f"Round {r.k}, {t}:" in md
    refs = dict(line.split(" ", 1) for line in
                (tree.data / "aishell_cs" / "text").read_text(encoding="utf-8").splitlines())
    shown = re.findall(r"\| (?:improved|regressed) \| (\S+) \| [^|]+ \| ([^|]+) \|", md)
    assert shown and all(refs[u] == ref.strip() for u, ref in shown if u in refs)


def test_html_is_self_contained(report):
    page = report.html.read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in page
    assert not re.search(r"https?://|<script|<link|@import|url\(", page)
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(srcs) == sorted(PNGS)
    assert all((report.html.parent / s).is_file() for s in srcs)


def test_partial_run_says_not_available_and_drops_stale_figures(tree, report, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(tree.exp / "round1" / "eval" / "zeroshot", exp / "round1" / "eval" / "zeroshot")
    out = tmp_path / "report"
    shutil.copytree(report.html.parent, out)  # figures of a fuller earlier run
    files = build_report(ReportOptions(exp=exp, out=out, data=tree.data))
    md = files.markdown.read_text(encoding="utf-8")
    for title in TITLES:
        assert f"## {title}" in md
    for what in ("round 1 pseudo-label counts: not available (no exp/round1/pseudo/report.json)",
                 "round 1 synthesis counts: not available", "round 1 training data hours",
                 "round 1 loss curve: not available", "wall times: not available",
                 "round 1 aishell_zh examples: not available"):
        assert what in md
    assert "| 1 | aishell_zh | CER |" in md and "| n/a |" in md
    assert [p.name for p in files.pngs] == ["error_rates.png"]
    assert sorted(p.name for p in out.glob("*.png")) == ["error_rates.png"]


def test_no_experiment_yet(tmp_path):
    files = build_report(ReportOptions(exp=tmp_path / "exp", out=tmp_path / "report"))
    md = files.markdown.read_text(encoding="utf-8")
    assert md.count("not available") == len(TITLES)
    assert files.pngs == []


def test_cli_writes_report_and_fails_on_corrupt_json(tree, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(tree.exp / "round1", exp / "round1")
    cmd = [sys.executable, "-m", "twister_plugin.bin.report", "--exp", str(exp),
           "--out", str(exp / "report"), "--data", str(tree.data), "--examples", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (exp / "report" / "index.html").is_file() and (exp / "report" / "loss.png").is_file()
    md = (exp / "report" / "index.md").read_text(encoding="utf-8")
    assert md.count("| improved |") <= len(tree.test_sets)
    bad = exp / "round1" / "synth" / "report.json"
    bad.write_text('{"total": 60, "kept"')
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{bad}: not valid JSON" in done.stderr
    assert (exp / "report" / "index.md").read_text(encoding="utf-8") == md  # old report kept


def test_cli_usage_errors():
    done = subprocess.run([sys.executable, "-m", "twister_plugin.bin.report", "--exp", "x"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--out" in done.stderr


def test_loss_curve_values_in_table(tree, report):
    md = report.markdown.read_text(encoding="utf-8")
    for r in collect(tree.exp).rounds:
        c = r.loss
        best = int(np.nanargmin(c.valid))
        assert (f"| {r.k} | {len(c.epochs)} | {c.train[0]:.2f} | {c.train[-1]:.2f} | "
                f"{c.valid[-1]:.2f} | {c.valid[best]:.2f} (epoch {c.epochs[best]}) |") in md
