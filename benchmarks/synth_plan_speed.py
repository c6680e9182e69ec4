"""Synthesis planning (CPU): each corpus line to phones + spoken text, as ``Synthesizer.plan`` does,
with the line chunked twice (before session 9: once inside ``phonemize_batch``, once more for the
spoken text) or once (the chunks handed to ``phonemize_batch``). Same results asserted.

    python benchmarks/synth_plan_speed.py [--text ../shared/data/text/zh_news_open.txt] [--lines 8000] \
        [--repeats 2] [--json r.json]

The two ways alternate (``--repeats`` times each) in one process with a warm frontend.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from twister_plugin.tts.frontend import Frontend, FrontendConfig
from twister_plugin.tts.text_norm import spoken_text


def twice(fe: Frontend, texts: list[str]) -> list[tuple[list[str], str]]:
    phones = fe.phonemize_batch(texts, where="corpus")
    return [(ph, spoken_text(fe.chunks(t))) for t, ph in zip(texts, phones, strict=True)]


def once(fe: Frontend, texts: list[str]) -> list[tuple[list[str], str]]:
    chunks = [fe.chunks(t) for t in texts]
    phones = fe.phonemize_batch(texts, where="corpus", chunks=chunks)
    return [(ph, spoken_text(c)) for ph, c in zip(phones, chunks, strict=True)]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "text"
                                         / "zh_news_open.txt"))
    p.add_argument("--lines", type=int, default=8000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", help="write the result here too")
    a = p.parse_args(argv)
    texts = [t.strip() for t in Path(a.text).read_text(encoding="utf-8").splitlines() if t.strip()][: a.lines]
    fe = Frontend(FrontendConfig())
    ref = once(fe, texts[:200])  # warm: dictionaries loaded, caches filled alike for both ways
    assert twice(fe, texts[:200]) == ref
    times: dict[str, list[float]] = {"twice": [], "once": []}
    results = {}
    for _ in range(a.repeats):
        for name, fn in (("twice", twice), ("once", once)):
            t0 = time.perf_counter()
            results[name] = fn(fe, texts)
            times[name].append(round(time.perf_counter() - t0, 2))
    assert results["twice"] == results["once"]
    result = dict(text=a.text, lines=len(texts), seconds=times,
                  speedup=round(min(times["twice"]) / min(times["once"]), 2))
    print(json.dumps(result))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
