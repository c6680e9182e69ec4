"""Build the per-run report: ``index.md``, ``index.html`` and the PNG figures in one folder.

    build_report(ReportOptions(exp=Path("exp"), out=Path("exp/report")))

Sections (see ``sections``): error rates per test set and round (zero-shot vs round k),
pseudo-label filter yields, round-trip CER of synthetic speech, hours of real / synthetic
training data, fine-tuning loss curves, wall time per stage, example utterances. A section whose
inputs are missing says "not available"; a malformed input raises ReportError naming the file.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from twister_plugin.report.collect import collect
from twister_plugin.report.render import Document, HtmlRenderer, MarkdownRenderer
from twister_plugin.report.sections import PNGS, SECTIONS, Context
from twister_plugin.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportOptions:
    exp: Path  # experiment folder holding round<k>/ (and timing.tsv)
    out: Path  # report folder to write (created)
    data: Path | None = None  # Kaldi data dirs of the test sets; None: <exp>/../data if there
    n_examples: int = 2  # most improved and most regressed utterances per round and test set


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    pngs: list[Path]  # figures drawn this time


def build_report(opts: ReportOptions) -> ReportFiles:
    exp = collect(opts.exp)
    data = opts.data
    if data is None and (Path(opts.exp).parent / "data").is_dir():
        data = Path(opts.exp).parent / "data"
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in PNGS:  # a figure from an earlier run must not outlive its data
        (out / name).unlink(missing_ok=True)
    ctx = Context(exp=exp, out=out, data=data, n_examples=opts.n_examples)
    sections = [build(ctx) for build in SECTIONS]
    doc = Document(
        title="Twister report",
        intro=f"Experiment {Path(opts.exp).as_posix()}: {len(exp.rounds)} round(s) "
              f"{[r.k for r in exp.rounds]}. Built by python -m twister_plugin.bin.report; "
              "regenerated from the files under the experiment folder, do not edit.",
        sections=sections)
    files = ReportFiles(out / "index.md", out / "index.html", [out / n for n in PNGS
                                                               if (out / n).is_file()])
    atomic_write_text(files.markdown, MarkdownRenderer().render(doc))
    atomic_write_text(files.html, HtmlRenderer().render(doc))
    logger.info("report of %d round(s) -> %s (%d figures)", len(exp.rounds), files.html,
                len(files.pngs))
    return files
