"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state) and
written atomically as PNG. Every function takes plain data and returns nothing; the caller only
calls one when its data is there. Labels are ASCII so that no CJK font is needed."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from twister_plugin.report.collect import STAGES, StageTime
from twister_plugin.report.trainlog import LossCurve
from twister_plugin.utils.fileio import atomic_open

DPI = 100
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
          "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


@dataclass
class RateSeries:
    """One test set's error rate per round (None: not scored)."""

    metric: str  # cer / wer / mer
    rounds: list[int]
    zeroshot: list[float | None]  # percent
    tuned: list[float | None]  # percent, model of that round


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=DPI)


def _nan(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def error_rates(series: dict[str, RateSeries], path: Path) -> None:
    """One panel per test set: zero-shot and fine-tuned error rate across rounds."""
    n = len(series)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure(4.2 * cols, 3.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, s) in zip(axes, sorted(series.items())):
        ax.plot(s.rounds, _nan(s.zeroshot), "o--", color="tab:gray", label="zero-shot")
        ax.plot(s.rounds, _nan(s.tuned), "o-", color="tab:blue", label="fine-tuned (round k)")
        ax.set_title(f"{name} ({s.metric.upper()})")
        ax.set_xlabel("round")
        ax.set_ylabel(f"{s.metric.upper()} %")
        ax.set_xticks(s.rounds)
        top = max([v for v in s.zeroshot + s.tuned if v is not None and math.isfinite(v)],
                  default=0.0)
        ax.set_ylim(0, 1.12 * top if top > 0 else 1.0)
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    _save(fig, path)


def filter_yields(counts: dict[int, dict[str, int]], path: Path) -> None:
    """Horizontal grouped bars: utterances kept and rejected by each filter, per round."""
    categories = list(dict.fromkeys(c for d in counts.values() for c in d))
    fig = _figure(8, 1.2 + 0.22 * len(categories) * (1 + 0.5 * len(counts)))
    ax = fig.add_subplot()
    height = 0.8 / len(counts)
    y = np.arange(len(categories))
    for i, (k, d) in enumerate(sorted(counts.items())):
        ax.barh(y + i * height, [d.get(c, 0) for c in categories], height=height,
                color=COLORS[i % len(COLORS)], label=f"round {k}")
    ax.set_yticks(y + 0.4 - height / 2, categories)
    ax.invert_yaxis()
    ax.set_xlabel("utterances")
    ax.set_title("Pseudo-labels kept and rejected per filter")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small")
    _save(fig, path)


def roundtrip_histogram(cer: dict[int, list[float]], threshold: float | None, path: Path) -> None:
    """Overlaid histograms of the round-trip CER of synthetic utterances, per round."""
    fig = _figure(8, 3.8)
    ax = fig.add_subplot()
    top = max([max(v) for v in cer.values() if v] + [threshold or 0, 1.0])
    bins = np.linspace(0, top, 31)
    for i, (k, v) in enumerate(sorted(cer.items())):
        ax.hist(v, bins=bins, alpha=0.55, color=COLORS[i % len(COLORS)],
                label=f"round {k} ({len(v)} utts)")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:g} %")
    ax.set_xlabel("round-trip CER %")
    ax.set_ylabel("synthetic utterances")
    ax.set_title("Round-trip CER of synthetic speech")
    ax.legend(fontsize="small")
    _save(fig, path)


def loss_curves(curves: dict[int, LossCurve], path: Path) -> None:
    """Train (solid) and validation (dashed) loss per epoch, one colour per round."""
    fig = _figure(8, 4)
    ax = fig.add_subplot()
    for i, (k, c) in enumerate(sorted(curves.items())):
        color = COLORS[i % len(COLORS)]
        ax.plot(c.epochs, c.train, "o-", color=color, label=f"round {k} train")
        ax.plot(c.epochs, c.valid, "s--", color=color, label=f"round {k} valid")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss")
    ax.set_title("Whisper fine-tuning loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    _save(fig, path)


def hours(per_round: dict[int, tuple[float | None, float | None]], path: Path) -> None:
    """Stacked bars of real (pseudo-labelled) and synthetic hours in each round's training set."""
    fig = _figure(6, 3.6)
    ax = fig.add_subplot()
    ks = sorted(per_round)
    real = np.array([per_round[k][0] or 0.0 for k in ks])
    synth = np.array([per_round[k][1] or 0.0 for k in ks])
    x = np.arange(len(ks))
    ax.bar(x, real, color="tab:blue", label="real (pseudo-labelled)")
    ax.bar(x, synth, bottom=real, color="tab:orange", label="synthetic")
    ax.set_xticks(x, [f"round {k}" for k in ks])
    ax.set_ylabel("hours")
    ax.set_title("ASR training data")
    ax.legend(fontsize="small")
    _save(fig, path)


def wall_time(times: list[StageTime], path: Path) -> None:
    """Stacked bars of stage wall time (minutes) per round; round 0 = outside the rounds."""
    ks = sorted({t.round for t in times})
    order = {s: i for i, s in enumerate(("data", *STAGES))}  # recipe order, unknown ones last
    stages = sorted(dict.fromkeys(t.stage for t in times), key=lambda s: order.get(s, len(order)))
    minutes = {(t.round, t.stage): 0.0 for t in times}
    for t in times:
        minutes[(t.round, t.stage)] += t.seconds / 60.0
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    x = np.arange(len(ks))
    bottom = np.zeros(len(ks))
    for i, stage in enumerate(stages):
        h = np.array([minutes.get((k, stage), 0.0) for k in ks])
        ax.bar(x, h, bottom=bottom, color=COLORS[i % len(COLORS)], label=stage)
        bottom += h
    ax.set_xticks(x, ["setup" if k == 0 else f"round {k}" for k in ks])
    ax.set_ylabel("minutes")
    ax.set_title("Wall time per stage")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    _save(fig, path)
