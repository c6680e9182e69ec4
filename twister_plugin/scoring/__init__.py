"""Scoring: CER (Mandarin), WER (English), MER (code-switching); per-utterance errors, per-set
summaries and the RESULTS.md table. See ``metrics`` for the normalisation of each metric."""
from twister_plugin.scoring.metrics import (
    METRICS, CharErrorRate, Metric, MixedErrorRate, WordErrorRate, get_metric, normalize_mandarin,
    pick_metric,
)
from twister_plugin.scoring.report import (
    ResultsError, find_summaries, results_table, summary_text, write_results, write_score_dir,
)
from twister_plugin.scoring.score import Summary, UttScore, score, score_files, summarize

__all__ = [
    "METRICS", "CharErrorRate", "Metric", "MixedErrorRate", "ResultsError", "Summary", "UttScore",
    "WordErrorRate", "find_summaries", "get_metric", "normalize_mandarin", "pick_metric",
    "results_table", "score", "score_files", "summarize", "summary_text", "write_results",
    "write_score_dir",
]
