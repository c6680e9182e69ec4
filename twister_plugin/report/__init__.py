"""Per-run report (recipe stage 9): error rates, data yields, loss curves, wall times and example
utterances of every round under ``exp/``, as Markdown + self-contained HTML + PNG figures."""
from twister_plugin.report.build import ReportFiles, ReportOptions, build_report
from twister_plugin.report.collect import Experiment, ReportError, collect

__all__ = ["Experiment", "ReportError", "ReportFiles", "ReportOptions", "build_report", "collect"]
