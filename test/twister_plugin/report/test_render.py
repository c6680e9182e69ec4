
import numpy as np
import pytest

from twister_plugin.report import ReportOptions, build_report
from twister_plugin.report.render import (
    Document, HtmlRenderer, Image, MarkdownRenderer, NotAvailable, Para, Section, Table,
)
from twister_plugin.testing.data import shared_data
from twister_plugin.testing.report import ExpTreeOptions, build_exp_tree, chromium, screenshot

WIDTH, HEIGHT = 1280, 2000


def _doc() -> Document:
    s = Section("a", "A & B").add(
        Para("x < y"), Table(["k", "v|w"], [["<b>", "苹果表配apple pay"]]),
        Image("fig.png", 'a "figure"'), NotAvailable("round 1 loss", "no exp/round1/asr"))
    return Document("T", "intro", [s])


def test_markdown_escapes_table_pipes():
    md = MarkdownRenderer().render(_doc())
    assert "| k | v\\|w |" in md and "| <b> | 苹果表配apple pay |" in md
    assert "![a \"figure\"](fig.png)" in md and "- [A & B](#a)" in md
    assert "*round 1 loss: not available (no exp/round1/asr)*" in md


def test_html_escapes_text():
    page = HtmlRenderer().render(_doc())
    assert "<h2>A &amp; B</h2>" in page and "<p>x &lt; y</p>" in page
    assert "<td>&lt;b&gt;</td>" in page and "<td>苹果表配apple pay</td>" in page
    assert '<img src="fig.png" alt="a &quot;figure&quot;">' in page
    assert '<p class="na">round 1 loss: not available (no exp/round1/asr)</p>' in page


@pytest.mark.skipif(chromium() is None, reason="chromium not installed (apt-get install chromium)")
@pytest.mark.skipif(shared_data() is None, reason="shared/data not beside the repo")
def test_report_renders_in_headless_chromium(tmp_path):
    tree = build_exp_tree(tmp_path / "recipe", ExpTreeOptions(rounds=2))
    files = build_report(ReportOptions(exp=tree.exp, out=tree.exp / "report"))
    img = screenshot(files.html, tmp_path / "shot.png", tmp_path / "profile", (WIDTH, HEIGHT))
    assert img.shape[:2] == (HEIGHT, WIDTH)
    rgb = img[..., :3]
    assert rgb.std() > 0.1, "screenshot is blank"
    dark = (rgb.mean(axis=2) < 0.5).mean()  # text, table rules and plot lines
    assert 0.005 < dark < 0.5
    # the figures on the first screen loaded: matplotlib's "tab:blue" (31, 119, 180) is drawn
    # by them only (links are (0, 0, 238)); a page whose images fail to load has none of it
    tab_blue = np.abs(rgb - np.array([31, 119, 180]) / 255).max(axis=2) < 0.06
    assert tab_blue.sum() > 1000
