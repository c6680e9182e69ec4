"""prepare_text on the shared Mandarin corpus: test overlap removed, seeded --sample subset."""
from pathlib import Path

import pytest

from twister_plugin.bin import prepare_text

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "text" / "zh_news_open.txt"


@pytest.fixture
def corpus(tmp_path):
    if not CORPUS.exists():
        pytest.skip("shared data absent")
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[:300]
    src = tmp_path / "corpus.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    test = tmp_path / "test_text"
    test.write_text(f"t1 {lines[5]}\nt2 {lines[7][2:-2]}\n", encoding="utf-8")  # equal, contained
    return src, test, lines


def test_excludes_test_sentences(corpus, tmp_path):
    src, test, lines = corpus
    out = tmp_path / "out.txt"
    assert prepare_text.main(["--text", str(src), "--exclude", str(test), "--out", str(out)]) == 0
    kept = out.read_text(encoding="utf-8").splitlines()
    assert lines[5] not in kept and lines[7] not in kept
    assert len(kept) == len(set(lines)) - 2


def test_sample_is_seeded_subset_in_corpus_order(corpus, tmp_path):
    src, _, lines = corpus
    outs = []
    for i, seed in enumerate((1, 1, 2)):
        out = tmp_path / f"s{i}.txt"
        prepare_text.main(["--text", str(src), "--sample", "50", "--seed", str(seed), "--out", str(out)])
        outs.append(out.read_text(encoding="utf-8").splitlines())
    assert len(outs[0]) == 50 and outs[0] == outs[1] and outs[0] != outs[2]
    pos = [lines.index(s) for s in outs[0]]
    assert pos == sorted(pos)
