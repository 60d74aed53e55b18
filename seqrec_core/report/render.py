"""The HTML of a review report: one self-contained file (plotly.js inline once, every figure a div that draws from
inline JSON, CSS inline, no fonts, images or scripts from the network), with small tables and escaped text.

Why self-contained: a review is mailed, archived and opened years later on machines without the dashboard and
often without network; a page that needs a CDN shows empty boxes there. Every piece of data text (item titles,
user ids, file names) comes from files a person uploaded, so all of it is escaped here, in one place: callers
pass plain text and DataFrames, never HTML, except the fragments these helpers return.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

FIGURE_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}
_CODE = re.compile(r"`([^`]+)`")

CSS = """
:root { --ink: #262730; --muted: #5F6673; --line: #E3E7ED; --blue: #4E79A7; --red: #E15759; --bg: #F7F8FA; }
* { box-sizing: border-box; }
body { margin: 0; font-family: 'Source Sans Pro', 'Segoe UI', Helvetica, Arial, sans-serif; color: var(--ink);
       background: white; line-height: 1.45; font-size: 15px; }
header.top { background: var(--bg); border-bottom: 1px solid var(--line); padding: 24px 40px 16px; }
header.top h1 { margin: 0 0 6px; font-size: 28px; }
main { padding: 8px 40px 60px; max-width: 1400px; }
nav.toc { margin: 12px 0 0; font-size: 14px; }
nav.toc a { color: var(--blue); text-decoration: none; margin-right: 16px; white-space: nowrap; }
section { border-top: 1px solid var(--line); padding-top: 10px; margin-top: 28px; }
h2 { font-size: 22px; margin: 10px 0 6px; }
h3 { font-size: 18px; margin: 22px 0 6px; }
p.lead { color: var(--muted); margin: 2px 0 12px; }
p.finding { font-size: 16px; background: #EEF3F9; border-left: 4px solid var(--blue); padding: 8px 12px; }
p.provenance { color: var(--muted); font-size: 13px; margin: 4px 0 12px; }
div.note { background: #FFF6E5; border-left: 4px solid #F2B134; padding: 8px 12px; margin: 8px 0; }
div.note.skip { background: var(--bg); border-left-color: #BFC5CD; }
figure.fig { margin: 10px 0 18px; }
figure.fig figcaption { color: var(--muted); font-size: 13px; margin-top: 2px; }
div.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 8px 24px; }
table.data { border-collapse: collapse; font-size: 13.5px; margin: 6px 0 14px; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
       vertical-align: top; }
table.data th { background: var(--bg); font-weight: 600; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 6px 0 12px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
code { background: var(--bg); padding: 1px 4px; border-radius: 3px; font-size: 13px; word-break: break-all; }
div.user { border: 1px solid var(--line); border-radius: 6px; padding: 4px 18px 10px; margin: 18px 0; }
"""


def text(value: object) -> str:
    """Plain text as HTML: escaped, with `backticks` shown as code (commands the reader can copy)."""
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(str(value)))


def para(value: object, cls: str | None = None) -> str:
    return f'<p class="{cls}">{text(value)}</p>' if cls else f"<p>{text(value)}</p>"


def note(value: object, skip: bool = False) -> str:
    """A box saying what is not shown and how to get it (``skip``: it does not apply to this run)."""
    return f'<div class="note{" skip" if skip else ""}">{text(value)}</div>'


def facts(pairs: Sequence[tuple[str, object]]) -> str:
    """A two-column list of labelled values (the header, the model card)."""
    rows = "".join(f"<dt>{text(k)}</dt><dd>{text(v)}</dd>" for k, v in pairs if v is not None and v != "")
    return f'<dl class="facts">{rows}</dl>'


def _cell(value: object, fmt: Callable[[object], str] | str | None) -> tuple[str, bool]:
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or (
            not isinstance(value, (str, list, tuple, np.ndarray)) and pd.isna(value)):
        return "", False
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if callable(fmt):
        shown = fmt(value)
    elif isinstance(fmt, str) and numeric:
        shown = format(value, fmt)
    else:
        shown = f"{value:,}" if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else str(value)
    return html.escape(shown), numeric


def table(frame: pd.DataFrame, formats: Mapping[str, Callable[[object], str] | str] | None = None,
          max_rows: int = 50) -> str:
    """A DataFrame as a small HTML table (escaped cells, numbers right-aligned); at most ``max_rows`` rows."""
    if frame is None or not len(frame):
        return para("(no rows)", "provenance")
    formats = dict(formats or {})
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for col, value in zip(shown.columns, row, strict=True):
            content, numeric = _cell(value, formats.get(str(col)))
            cells.append(f'<td class="num">{content}</td>' if numeric else f"<td>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = para(f"… {len(frame) - max_rows:,} more rows", "provenance") if len(frame) > max_rows else ""
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'


@dataclass
class Section:
    """One part of the report: an anchor, a title, a lead sentence and its HTML blocks in order."""

    id: str
    title: str
    lead: str = ""
    blocks: list[str] = field(default_factory=list)

    def add(self, *blocks: str) -> Section:
        self.blocks.extend(b for b in blocks if b)
        return self

    def html(self) -> str:
        lead = para(self.lead, "lead") if self.lead else ""
        return f'<section id="{html.escape(self.id)}"><h2>{text(self.title)}</h2>{lead}{"".join(self.blocks)}</section>'


class Canvas:
    """Turns figures into HTML divs (plotly.js itself is added once, by :func:`page`) and counts them, so the
    report's ``figures`` number is exactly the number of plotly divs in the file."""

    def __init__(self) -> None:
        self.count = 0

    def figure(self, fig: go.Figure, caption: str = "") -> str:
        self.count += 1
        div = fig.to_html(include_plotlyjs=False, full_html=False, div_id=f"fig-{self.count}",
                          config=FIGURE_CONFIG, default_width="100%")
        cap = f"<figcaption>{text(caption)}</figcaption>" if caption else ""
        return f'<figure class="fig">{div}{cap}</figure>'


def page(title: str, header: str, sections: Sequence[Section], plotly_js: str) -> str:
    """The whole document: head with inline CSS and plotly.js, a header, a table of contents, the sections."""
    toc = "".join(f'<a href="#{html.escape(s.id)}">{text(s.title)}</a>' for s in sections)
    body = "".join(s.html() for s in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style>"
            f"<script type=\"text/javascript\">{plotly_js}</script></head><body>"
            f"<header class=\"top\">{header}<nav class=\"toc\">{toc}</nav></header>"
            f"<main>{body}</main></body></html>\n")
