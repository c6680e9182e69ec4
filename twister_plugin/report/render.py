"""A tiny document model (sections of paragraphs, tables, images, "not available" notes) and
its two renderings: Markdown (``index.md``) and self-contained HTML (``index.html``: inline
CSS, images by relative path, no scripts, no fonts or anything else from the network)."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Union


@dataclass
class Para:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[object]]


@dataclass
class Image:
    path: str  # relative to the report folder
    alt: str


@dataclass
class NotAvailable:
    what: str  # e.g. "pseudo-label counts"
    why: str  # e.g. "no exp/round1/pseudo/report.json"


Block = Union[Para, Table, Image, NotAvailable]


@dataclass
class Section:
    anchor: str  # HTML id, also used by the table of contents
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self


@dataclass
class Document:
    title: str
    intro: str
    sections: list[Section]


def not_available_text(b: NotAvailable) -> str:
    return f"{b.what}: not available ({b.why})"


class MarkdownRenderer:
    def render(self, doc: Document) -> str:
        out = [f"# {doc.title}", "", doc.intro, ""]
        out += [f"- [{s.title}](#{s.anchor})" for s in doc.sections] + [""]
        for s in doc.sections:
            out += [f'<a id="{s.anchor}"></a>', "", f"## {s.title}", ""]
            for b in s.blocks:
                out += [self.block(b), ""]
        return "\n".join(out)

    def block(self, b: Block) -> str:
        if isinstance(b, Para):
            return b.text
        if isinstance(b, Image):
            return f"![{b.alt}]({b.path})"
        if isinstance(b, NotAvailable):
            return f"*{not_available_text(b)}*"
        cells = lambda row: "| " + " | ".join(_md_cell(c) for c in row) + " |"  # noqa: E731
        rule = "|" + "---|" * len(b.header)
        return "\n".join([cells(b.header), rule] + [cells(r) for r in b.rows])


def _md_cell(c: object) -> str:
    return str(c).replace("|", "\\|").replace("\n", " ")


CSS = """
body { font-family: sans-serif, "Noto Sans CJK SC", "WenQuanYi Micro Hei";
       margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #aaa; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; } tr:nth-child(even) td { background: #f8f8f8; }
img { max-width: 100%; border: 1px solid #ddd; }
.na { color: #a33; font-style: italic; }
nav li { display: inline; margin-right: 1em; }
"""


class HtmlRenderer:
    def render(self, doc: Document) -> str:
        e = html.escape
        nav = "".join(f'<li><a href="#{e(s.anchor)}">{e(s.title)}</a></li>' for s in doc.sections)
        body = [f"<h1>{e(doc.title)}</h1>", f"<p>{e(doc.intro)}</p>", f"<nav><ul>{nav}</ul></nav>"]
        for s in doc.sections:
            body.append(f'<section id="{e(s.anchor)}"><h2>{e(s.title)}</h2>')
            body += [self.block(b) for b in s.blocks]
            body.append("</section>")
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{e(doc.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
                + "\n".join(body) + "\n</body>\n</html>\n")

    def block(self, b: Block) -> str:
        e = html.escape
        if isinstance(b, Para):
            return f"<p>{e(b.text)}</p>"
        if isinstance(b, Image):
            return f'<p><img src="{e(b.path)}" alt="{e(b.alt)}"></p>'
        if isinstance(b, NotAvailable):
            return f'<p class="na">{e(not_available_text(b))}</p>'
        head = "".join(f"<th>{e(str(c))}</th>" for c in b.header)
        rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>"
                       for r in b.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
