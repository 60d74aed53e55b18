"""One look for every chart: palette, font, margins, and the small presentation conventions they share.

Analysts meet these charts cold, so every figure must read the same way: the same blue for "the model",
the same greys for baselines, the same red for "look here" (best epoch, held-out item), the same font and
the same hover style. Builders call :func:`apply_theme` last and :func:`empty_figure` for empty input, so a
page never has to style or guard a figure itself.

Pages should render with ``st.plotly_chart(fig, theme=None)`` so Streamlit's own theme does not replace this
one (explicit trace colours survive either way, fonts and grid do not).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

# Tableau-10 hues without its grey (greys are reserved for baselines) and without its red (reserved for ACCENT).
PALETTE: tuple[str, ...] = ("#4E79A7", "#F28E2B", "#59A14F", "#B07AA1", "#76B7B2", "#EDC948", "#FF9DA7", "#9C755F")
PRIMARY = PALETTE[0]  # "the model" / the main series
ACCENT = "#E15759"  # highlights: best epoch, held-out item, guides
BASELINE_GREYS: tuple[str, ...] = ("#7F7F7F", "#ABABAB", "#555555", "#C7C7C7")
MUTED = "#C3CCD8"  # raw, noisy series drawn under their smoothed version
OTHER = "#D0D0D0"  # the "other" bucket when categories are folded
TEXT = "#262730"  # Streamlit's body text colour, so charts sit well on the page
FONT_FAMILY = "'Source Sans Pro', 'Source Sans 3', 'Segoe UI', Helvetica, Arial, sans-serif"
FONT_SIZE = 14
MARGIN = dict(l=80, r=40, t=90, b=70)
DEFAULT_HEIGHT = 440
LEGEND_ROOM = 40  # pixels added under the plot when a legend is shown there
BASELINE_NAMES = frozenset({"popularity", "markov", "itemknn"})
NO_DATA = "no data"


def _build_template() -> go.layout.Template:
    template = go.layout.Template(pio.templates["plotly_white"])
    axis = dict(showline=True, linecolor="#BFC5CD", ticks="outside", tickcolor="#BFC5CD", gridcolor="#ECEFF3",
                zerolinecolor="#D5DAE1", title=dict(standoff=12, font=dict(size=FONT_SIZE)), automargin=True)
    template.layout.update(
        colorway=list(PALETTE),
        font=dict(family=FONT_FAMILY, size=FONT_SIZE, color=TEXT),
        title=dict(x=0.0, xanchor="left", xref="paper", font=dict(size=18),
                   subtitle=dict(font=dict(size=13, color="#5F6673"))),
        margin=MARGIN,
        hoverlabel=dict(font=dict(family=FONT_FAMILY, size=13), bgcolor="white", bordercolor="#BFC5CD",
                        align="left"),
        # below the x-axis title: a legend above the plot collides with the subtitle and guide labels
        legend=dict(orientation="h", yref="container", y=0.0, yanchor="bottom", xref="paper", x=0.0,
                    xanchor="left", title_text=""),
        xaxis=axis, yaxis=axis, bargap=0.15, hovermode="closest", plot_bgcolor="white", paper_bgcolor="white",
    )
    return template


TEMPLATE = _build_template()


def _shows_legend(fig: go.Figure) -> bool:
    """Plotly's own rule: an explicit showlegend wins, otherwise a legend appears from two legend entries on."""
    if fig.layout.showlegend is not None:
        return bool(fig.layout.showlegend)
    return sum(1 for t in fig.data if t.showlegend is not False) >= 2


def apply_theme(fig: go.Figure, *, height: int | None = None, legend_inside: bool = False) -> go.Figure:
    """Give ``fig`` the house template and a height; the width is left to the page (``width="stretch"``).
    A legend goes under the x-axis title (the bottom margin grows to hold it) or, with ``legend_inside``, into
    the plot's top-left corner, for curves that leave that corner empty."""
    height = int(height or DEFAULT_HEIGHT)
    fig.update_layout(template=TEMPLATE, autosize=True)
    if legend_inside:
        fig.update_layout(legend=dict(orientation="v", yref="paper", y=0.98, yanchor="top", x=0.01,
                                      xanchor="left", bgcolor="rgba(255,255,255,0.85)"))
    elif _shows_legend(fig):
        fig.update_layout(margin=dict(b=MARGIN["b"] + LEGEND_ROOM))
        height += LEGEND_ROOM
    fig.update_layout(height=height)
    return fig


def set_title(fig: go.Figure, title: str, subtitle: str | None = None) -> None:
    """Title plus an optional one-line subtitle carrying the key number, so a glance is enough."""
    fig.update_layout(title=dict(text=title, subtitle=dict(text=subtitle or "")))


def empty_figure(title: str, x_title: str, y_title: str, reason: str | None = None,
                 *, height: int | None = None) -> go.Figure:
    """A themed figure that says "no data" instead of an empty grid, so a page never has to special-case it."""
    fig = go.Figure()
    text = NO_DATA if not reason else f"{NO_DATA}: {reason}"
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font=dict(size=16, color="#7F7F7F"))
    bare = dict(showticklabels=False, showgrid=False, zeroline=False, showline=False, ticks="")
    fig.update_xaxes(title_text=x_title, **bare)
    fig.update_yaxes(title_text=y_title, **bare)
    set_title(fig, title)
    return apply_theme(fig, height=height or 320)


def is_baseline(model: str) -> bool:
    """Baselines are the non-neural reference scorers; they are drawn in grey so the models stand out."""
    return str(model).strip().lower() in BASELINE_NAMES


def model_colors(models: Iterable[str]) -> dict[str, str]:
    """A stable colour per model name: palette hues for models in order, greys for baselines."""
    colors: dict[str, str] = {}
    n_model = n_base = 0
    for model in models:
        if model in colors:
            continue
        if is_baseline(model):
            colors[model] = BASELINE_GREYS[n_base % len(BASELINE_GREYS)]
            n_base += 1
        else:
            colors[model] = PALETTE[n_model % len(PALETTE)]
            n_model += 1
    return colors


def category_colors(categories: Sequence[str], other: str = "other") -> dict[str, str]:
    """Palette colour per category in the given order (most frequent first); ``other`` is always grey."""
    colors = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(c for c in categories if c != other)}
    colors[other] = OTHER
    return colors


def is_missing(value: object) -> bool:
    """True for None, NaN, pd.NA, NaT and blank strings: all the ways a title or category can be absent."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(value != value)  # NaN, NaT
    except (TypeError, ValueError):
        return str(value) in {"<NA>", "NaT", "nan"}


def clean_text(value: object, fallback: str = "") -> str:
    return fallback if is_missing(value) else str(value)


def item_label(title: object, item_id: object, max_chars: int = 42) -> str:
    """What a person calls an item: its title when known, else "id <original id>" (a bare "4" next to a rank
    reads as a number, not an item); shortened for axis labels."""
    return truncate(clean_text(title, f"id {clean_text(item_id, '?')}"), max_chars)


def truncate(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def fmt_metric(value: float) -> str:
    """Metric values are small fractions (NDCG@10 ~ 0.05); three significant digits is what people compare."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    value = float(value)
    return f"{value:.3f}" if abs(value) >= 0.1 else f"{value:.3g}"


def fmt_count(value: float) -> str:
    return f"{int(round(float(value))):,}"


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 tick positions between lo and hi, for axes that show log10 values with readable labels."""
    ticks: list[float] = []
    decade = 10 ** math.floor(math.log10(max(lo, 1e-12)))
    while decade <= hi * 10:
        for m in (1, 2, 5):
            t = m * decade
            if lo <= t <= hi:
                ticks.append(float(t))
        decade *= 10
    return ticks


def add_guide(fig: go.Figure, x: float, text: str = "", *, color: str = ACCENT, dash: str = "dash",
              log_x: bool = False, width: float = 1.5) -> None:
    """Vertical guide line labelled just above the plot area, where it cannot hide data. On a log axis a shape's
    x is in data units but an annotation's is in log10 units, so ``add_vline``'s own label lands off-chart;
    the label is therefore added here with the right coordinate."""
    fig.add_vline(x=x, line=dict(color=color, dash=dash, width=width))
    if text:
        fig.add_annotation(x=math.log10(x) if log_x else x, xref="x", y=1.0, yref="y domain", yanchor="bottom",
                           xanchor="center", showarrow=False, text=text, font=dict(color=color, size=13))


def log_axis_ticks(lo: float, hi: float) -> dict:
    """tickvals/ticktext for a log axis: 1-2-5 steps with thousands separators instead of Plotly's crowded
    minor digits."""
    ticks = log_ticks(lo, hi)
    return dict(tickvals=ticks, ticktext=[f"{t:,.0f}" if t >= 1 else f"{t:g}" for t in ticks])


def label_above(fig: go.Figure, x: Sequence, values: np.ndarray, markers: np.ndarray | None, labels: Sequence[str],
                **scatter: object) -> float:
    """Write each bar's value above both the bar and the marker drawn at the same x (a chance-level diamond),
    so a label never sits on its marker; returns the y-axis top that keeps labels and markers inside the plot
    (the markers above the bars were clipped before)."""
    values = np.nan_to_num(np.asarray(values, dtype=float))
    marks = np.zeros_like(values) if markers is None else np.nan_to_num(np.asarray(markers, dtype=float))
    highest = np.maximum(values, marks)
    top = float(max(highest.max(initial=0.0), 1e-9))
    fig.add_scatter(x=list(x), y=highest + 0.05 * top, mode="text", text=list(labels), textposition="top center",
                    showlegend=False, hoverinfo="skip", cliponaxis=False, **scatter)
    return top * 1.3
