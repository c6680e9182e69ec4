"""The report's sections. Each builder reads the collected :class:`Experiment`, draws its figure
into the report folder when it has data, and returns a :class:`Section`; anything missing shows
as a "not available" note naming the file that was looked for."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from twister_plugin.report import plots
from twister_plugin.report.collect import Experiment, Round
from twister_plugin.report.examples import pick_examples
from twister_plugin.report.render import Image, NotAvailable, Para, Section, Table

MAX_SPEAKER_ROWS = 20  # per-speaker yield rows shown (the most prolific speakers)


@dataclass(frozen=True)
class Context:
    exp: Experiment
    out: Path  # report folder
    data: Path | None  # Kaldi data dirs of the test sets, for references
    n_examples: int  # improved / regressed examples per round and test set

    def rel(self, path: Path) -> str:
        """``path`` as the recipe sees it (relative to the folder holding exp/)."""
        try:
            return path.relative_to(self.exp.exp.parent).as_posix()
        except ValueError:
            return path.as_posix()


def _f(x: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _missing(ctx: Context, section: Section, what: str, rnd: Round, rel: str) -> None:
    section.add(NotAvailable(f"round {rnd.k} {what}", f"no {ctx.rel(rnd.dir / rel)}"))


def _no_rounds(ctx: Context, section: Section, what: str) -> Section:
    return section.add(NotAvailable(what, f"no {ctx.rel(ctx.exp.exp)}/round<k>/ folder yet"))


def error_rates(ctx: Context) -> Section:
    s = Section("rates", "Error rates (CER / WER / MER)")
    rows, series = [], {}
    for r in ctx.exp.rounds:
        if not r.scores:
            _missing(ctx, s, "scores", r, "eval/<system>/<set>/score/summary.json")
        for t in r.test_sets:
            zs, ft = r.scores.get(("zeroshot", t)), r.scores.get((r.system, t))
            metric = (zs or ft)["metric"]
            a, b = (x["rate"] if x else None for x in (zs, ft))
            diff = b - a if a is not None and b is not None else None
            rel = 100.0 * diff / a if diff is not None and a else None
            rows.append([r.k, t, metric.upper(), _f(a), _f(b), _f(diff, "{:+.2f}"),
                         _f(rel, "{:+.1f} %"), (ft or zs)["n_utts"]])
            rs = series.setdefault(t, plots.RateSeries(metric, [], [], []))
            rs.rounds.append(r.k)
            rs.zeroshot.append(a)
            rs.tuned.append(b)
    if not ctx.exp.rounds:
        return _no_rounds(ctx, s, "error rates")
    if rows:
        s.add(Para("Rates in percent; change = round k minus zero-shot (negative is better)."),
              Table(["round", "test set", "metric", "zero-shot %", "round k %", "change",
                     "relative", "utts"], rows))
        plots.error_rates(series, ctx.out / "error_rates.png")
        s.add(Image("error_rates.png", "error rate per test set across rounds"))
    return s


def pseudo_labels(ctx: Context) -> Section:
    s = Section("pseudo", "Pseudo-label filtering")
    rows, counts = [], {}
    for r in ctx.exp.rounds:
        p = r.pseudo
        if p is None:
            _missing(ctx, s, "pseudo-label counts", r, "pseudo/report.json")
            continue
        top = sorted(p.rejected.items(), key=lambda kv: -kv[1])[:3]
        rows.append([r.k, _f(p.total, "{}"), _f(p.kept, "{}"), _f(p.yield_pct, "{:.1f} %"),
                     _f(p.hours_kept, "{:.3f}"), ", ".join(f"{k} {v}" for k, v in top) or "-"])
        counts[r.k] = {"kept": p.kept or 0, **p.rejected}
    if not ctx.exp.rounds:
        return _no_rounds(ctx, s, "pseudo-label counts")
    if rows:
        s.add(Table(["round", "utterances", "kept", "yield", "hours kept", "top rejections"], rows),
              Para("An utterance can be rejected by several filters, so rejections may add up to "
                   "more than utterances minus kept."))
        plots.filter_yields(counts, ctx.out / "pseudo_filters.png")
        s.add(Image("pseudo_filters.png", "pseudo-labels kept and rejected per filter"))
    return s


def synthetic(ctx: Context) -> Section:
    s = Section("synth", "Synthetic speech and round-trip filter")
    rows, cer, threshold = [], {}, None
    for r in ctx.exp.rounds:
        f, v = r.synth, r.roundtrip_cer
        if f is None and v is None:
            _missing(ctx, s, "synthesis counts", r, "synth/report.json")
            continue
        threshold = f.max_cer if f is not None and f.max_cer is not None else threshold
        med = statistics.median(v) if v else None
        mean = statistics.fmean(v) if v else None
        rows.append([r.k, _f(f and f.total, "{}"), _f(f and f.kept, "{}"),
                     _f(f and f.yield_pct, "{:.1f} %"), _f(f and f.max_cer, "{:g} %"),
                     len(v) if v is not None else "n/a", _f(med), _f(mean)])
        if v:
            cer[r.k] = v
        elif v is None:
            _missing(ctx, s, "round-trip CER", r, "synth/scores.jsonl")
    if not ctx.exp.rounds:
        return _no_rounds(ctx, s, "synthesis counts")
    if rows:
        s.add(Table(["round", "synthesized", "kept", "yield", "CER threshold", "scored",
                     "median CER %", "mean CER %"], rows))
    if cer:
        plots.roundtrip_histogram(cer, threshold, ctx.out / "roundtrip_cer.png")
        s.add(Image("roundtrip_cer.png", "round-trip CER histogram of synthetic speech"))
    _speaker_table(s, ctx)
    return s


def _speaker_table(s: Section, ctx: Context) -> None:
    with_spk = [r for r in ctx.exp.rounds if r.synth is not None and r.synth.per_speaker]
    if not with_spk:
        return
    r = with_spk[-1]
    spk = sorted(r.synth.per_speaker.items(), key=lambda kv: (-kv[1][0], kv[0]))
    rows = [[name, tot, kept, _f(100.0 * kept / tot if tot else None, "{:.1f} %")]
            for name, (tot, kept) in spk[:MAX_SPEAKER_ROWS]]
    s.add(Para(f"Yield per speaker, round {r.k}"
               + (f" ({len(spk) - MAX_SPEAKER_ROWS} more speakers not shown)"
                  if len(spk) > MAX_SPEAKER_ROWS else "") + ":"),
          Table(["speaker", "synthesized", "kept", "yield"], rows))


def training_data(ctx: Context) -> Section:
    s = Section("hours", "ASR training data (hours)")
    rows, hours = [], {}
    for r in ctx.exp.rounds:
        if r.hours is None:
            _missing(ctx, s, "training data hours", r, "asr_data/report.json")
            continue
        real, synth = r.hours
        total = (real or 0.0) + (synth or 0.0)
        rows.append([r.k, _f(real, "{:.3f}"), _f(synth, "{:.3f}"), _f(total, "{:.3f}"),
                     _f(100.0 * (synth or 0.0) / total if total else None, "{:.1f} %")])
        hours[r.k] = r.hours
    if not ctx.exp.rounds:
        return _no_rounds(ctx, s, "training data hours")
    if rows:
        s.add(Table(["round", "real h", "synthetic h", "total h", "synthetic share"], rows))
        plots.hours(hours, ctx.out / "hours.png")
        s.add(Image("hours.png", "hours of real and synthetic training data"))
    return s


def training_loss(ctx: Context) -> Section:
    s = Section("loss", "Fine-tuning loss")
    rows, curves = [], {}
    for r in ctx.exp.rounds:
        c = r.loss
        if c is None:
            _missing(ctx, s, "loss curve", r, "asr/log/train.log (with epoch results)")
            continue
        valid = [(v, e) for e, v in zip(c.epochs, c.valid) if not math.isnan(v)]
        best = min(valid) if valid else None
        rows.append([r.k, len(c.epochs), _f(c.train[0]), _f(c.train[-1]), _f(c.valid[-1]),
                     f"{best[0]:.2f} (epoch {best[1]})" if best else "n/a", ctx.rel(c.path)])
        curves[r.k] = c
    if not ctx.exp.rounds:
        return _no_rounds(ctx, s, "loss curves")
    if rows:
        s.add(Table(["round", "epochs", "first train", "last train", "last valid", "best valid",
                     "log"], rows))
        plots.loss_curves(curves, ctx.out / "loss.png")
        s.add(Image("loss.png", "train and validation loss per epoch"))
    return s


def _hms(seconds: float) -> str:
    m, sec = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{sec:02d}"


def wall_time(ctx: Context) -> Section:
    s = Section("time", "Wall time per stage")
    times = ctx.exp.timing
    if not times:
        return s.add(NotAvailable("wall times", f"no {ctx.rel(ctx.exp.exp / 'timing.tsv')} and "
                                  "fewer than two stage .done markers"))
    src = times[0].source
    s.add(Para(f"From {src}" + (" (time between consecutive stage .done markers; approximate)"
                                if src != "timing.tsv" else "") + "."),
          Table(["round", "stage", "seconds", "h:mm:ss"],
                [[t.round or "-", t.stage, f"{t.seconds:.1f}", _hms(t.seconds)] for t in times]))
    plots.wall_time(times, ctx.out / "walltime.png")
    return s.add(Image("walltime.png", "wall time per stage and round"))


def examples(ctx: Context) -> Section:
    s = Section("examples", "Example utterances")
    s.add(Para("Per round and test set, the utterances with the largest improvement and the "
               "largest regression in errors, zero-shot -> round k."))
    for r in ctx.exp.rounds:
        for t in r.test_sets:
            ex = pick_examples(r, t, ctx.data, ctx.n_examples)
            if ex is None:
                _missing(ctx, s, f"{t} examples", r,
                         f"eval/<zeroshot|{r.system}>/{t}/score/per_utt.tsv")
                continue
            s.add(Para(f"Round {r.k}, {t}:"))
            rows = [[e.kind, e.utt_id, f"{e.errors_before} -> {e.errors_after} / {e.n_ref}",
                     e.ref, e.before, e.after] for e in ex]
            s.add(Table(["", "utterance", "errors", "reference", "zero-shot", f"round {r.k}"], rows)
                  if rows else Para("No utterance changed its error count."))
    if not ctx.exp.rounds:
        return _no_rounds(ctx, s, "examples")
    if not any(r.test_sets for r in ctx.exp.rounds):
        s.add(NotAvailable("examples", "no scored test set yet"))
    return s


SECTIONS: tuple[Callable[[Context], Section], ...] = (
    error_rates, pseudo_labels, synthetic, training_data, training_loss, wall_time, examples)
PNGS = ("error_rates.png", "pseudo_filters.png", "roundtrip_cer.png", "hours.png", "loss.png",
        "walltime.png")
