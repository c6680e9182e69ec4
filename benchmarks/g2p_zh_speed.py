"""Mandarin g2p speed: pypinyin asked twice per run of Han characters (INITIALS, then
FINALS_TONE3: ZhG2P before session 8) vs once with tone marks split per syllable (ZhG2P now),
over every Han run of the text corpus; both must give the same (initial, final) pairs.

    python benchmarks/g2p_zh_speed.py [--text ../shared/data/text/zh_news_open.txt] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from pypinyin import Style, lazy_pinyin

from twister_plugin.tts.g2p_zh import _NO_READING, ZhG2P, _split

KW = dict(strict=True, neutral_tone_with_five=True, tone_sandhi=True, errors=lambda c: [_NO_READING] * len(c))


def two_passes(run: str) -> list[tuple]:
    pairs = zip(lazy_pinyin(run, style=Style.INITIALS, **KW), lazy_pinyin(run, style=Style.FINALS_TONE3, **KW),
                strict=True)
    return [(None, None) if fin.startswith(_NO_READING) else (ini, fin) for ini, fin in pairs]  # no reading


def one_pass(g2p: ZhG2P, run: str) -> list[tuple]:
    return [_split(s) if s is not None else (None, None) for s in g2p._pinyin(run)]


def main(argv=None) -> dict:
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", default=str(here.parent / "shared" / "data" / "text" / "zh_news_open.txt"))
    p.add_argument("--json", help="write the result here too")
    a = p.parse_args(argv)
    runs = re.findall(r"[\u3400-\u9fff]+", Path(a.text).read_text(encoding="utf-8"))
    g2p = ZhG2P()
    t0 = time.perf_counter()
    old = [two_passes(r) for r in runs]
    t_old = time.perf_counter() - t0
    t0 = time.perf_counter()
    new = [one_pass(g2p, r) for r in runs]
    t_new = time.perf_counter() - t0
    differ = sum(x != y for x, y in zip(old, new))
    result = dict(text=a.text, runs=len(runs), chars=sum(map(len, runs)), two_passes_s=round(t_old, 2),
                  one_pass_s=round(t_new, 2), speedup=round(t_old / t_new, 2), runs_differing=differ)
    print(json.dumps(result))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
