"""The map of a learned item (or user) space: one dot per item, near = the model treats them alike.

WebGL scatter so 10,000+ dots stay smooth. Colour answers one question at a time: popularity (log scale, since
counts are Zipf-like and a linear scale would paint everything but the head the same colour), category (does
the model rediscover the catalogue's structure?) or k-means cluster of the full vectors. A picked item is a red
star and its nearest neighbours red rings on top, so "what does the model think is like this" is one glance.
Coordinates are unitless; the axes say "UMAP 1"/"PCA 1" and carry no tick labels.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from seqrec_core.viz.theme import (
    ACCENT,
    OTHER,
    PALETTE,
    PRIMARY,
    apply_theme,
    clean_text,
    empty_figure,
    item_label,
    log_ticks,
    set_title,
    truncate,
)

COLOR_BY = ("popularity", "category", "cluster")
# Tableau-20's lighter partners of PALETTE: clusters can outnumber the 8 house hues.
_EXTRA = ("#A0CBE8", "#FFBE7D", "#8CD17D", "#D4A6C8", "#86BCB6", "#F1CE63", "#FABFD2", "#D7B5A6")
_MAX_GROUPS = 12  # categories beyond the most frequent ones fold into "other"
_OTHER = "other"
_UNKNOWN = "(no category)"
_HEIGHT = 620
_METHOD_NAMES = {"umap": "UMAP", "pca": "PCA"}


def _group_colors(names: Sequence[str]) -> dict[str, str]:
    hues = list(PALETTE) + list(_EXTRA)
    colors = {n: hues[i % len(hues)] for i, n in enumerate(x for x in names if x not in (_OTHER, _UNKNOWN))}
    colors[_OTHER] = OTHER
    colors[_UNKNOWN] = "#A8A8A8"
    return colors


def _groups(values: Sequence[object], natural_order: bool = False) -> tuple[np.ndarray, list[str]]:
    """Per-point group label and the legend order (most frequent first, or natural "cluster 1, 2, ..."
    order). Multi-valued categories such as MovieLens genres "Comedy|Drama" group by their first value."""
    primary = [clean_text(v, _UNKNOWN).split("|")[0].strip() or _UNKNOWN for v in values]
    counts = pd.Series(primary).value_counts(sort=True)
    names = [n for n in counts.index if n != _UNKNOWN]
    if natural_order:
        names = sorted(names, key=lambda s: (len(s), s))
    keep = names if len(names) <= _MAX_GROUPS + 1 else names[:_MAX_GROUPS]
    label = np.array([p if p in keep or p == _UNKNOWN else _OTHER for p in primary], dtype=object)
    order = keep + [g for g in (_OTHER, _UNKNOWN) if (label == g).any()]
    return label, order


def _hover(frame: pd.DataFrame, what: str) -> tuple[np.ndarray, str]:
    n = len(frame)
    ids = [clean_text(v, "?") for v in frame["id"]]
    titles = [clean_text(v) for v in frame["title"]] if "title" in frame else [""] * n
    cats = [truncate(clean_text(v, "—"), 40) for v in frame["category"]] if "category" in frame else ["—"] * n
    pop = pd.to_numeric(frame["popularity"], errors="coerce") if "popularity" in frame else pd.Series([np.nan] * n)
    clusters = [clean_text(v, "") for v in frame["cluster"]] if "cluster" in frame else [""] * n
    if what == "users":
        head = [f"user {i}" for i in ids]
        second = [truncate(t, 60) for t in titles]
        third = [f"mostly {c} · {p:,.0f} events" if math.isfinite(p) else f"mostly {c}"
                 for c, p in zip(cats, pop, strict=True)]
    else:
        head = [item_label(t, i, 60) for t, i in zip(titles, ids, strict=True)]
        second = [f"id {i} · {c}" for i, c in zip(ids, cats, strict=True)]
        third = [f"{p:,.0f} events in the log" if math.isfinite(p) else "" for p in pop]
    custom = np.array(list(zip(head, second, third, clusters, strict=True)), dtype=object).reshape(n, 4)
    template = ("<b>%{customdata[0]}</b><br>%{customdata[1]}<br>%{customdata[2]}<br>%{customdata[3]}"
                "<extra></extra>")
    return custom, template


def plot_embedding_map(points_frame: pd.DataFrame, color_by: str = "popularity", highlight: list[str] | None = None,
                       title: str | None = None, *, method: str = "umap", what: str = "items",
                       note: str | None = None) -> go.Figure:
    """Scatter of a projected embedding (``id, x, y`` plus optional ``title, category, popularity, cluster``).

    ``highlight``: ids to draw on top, the first as the picked item (red star, labelled), the rest as its
    neighbours (red rings). ``method`` only names the axes; ``note`` (e.g. a PCA fallback) joins the subtitle.
    """
    axis = _METHOD_NAMES.get(str(method).lower(), str(method).upper())
    noun = "user" if what == "users" else "item"
    title = title or (f"{noun.capitalize()} map "
                      f"({axis} of the learned {'representations' if what == 'users' else 'vectors'})")
    x_title, y_title = f"{axis} 1", f"{axis} 2"
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {COLOR_BY}, got {color_by!r}")
    if points_frame is None or len(points_frame) == 0:
        return empty_figure(title, x_title, y_title, f"no {noun}s to map", height=_HEIGHT)
    missing = {"id", "x", "y"} - set(points_frame.columns)
    if missing:
        raise ValueError(f"plot_embedding_map needs columns {sorted(missing)}")
    frame = points_frame.reset_index(drop=True)
    n = len(frame)
    x = frame["x"].to_numpy(dtype=float)
    y = frame["y"].to_numpy(dtype=float)
    custom, hover = _hover(frame, what)
    marked = [str(h) for h in (highlight or [])]
    base_opacity = 0.55 if marked else 0.8  # dimmed under a highlight, colours still readable
    size = 8 if n <= 500 else 6 if n <= 3_000 else 4
    fig = go.Figure()
    subtitle = f"{n:,} {noun}s"
    pop = pd.to_numeric(frame["popularity"], errors="coerce").to_numpy(dtype=float) if "popularity" in frame \
        else np.full(n, np.nan)
    if color_by == "popularity" and np.isfinite(pop).any():
        counts = np.where(np.isfinite(pop), np.maximum(pop, 1.0), 1.0)
        lo, hi = float(counts.min()), float(max(counts.max(), counts.min() * 10))
        ticks = log_ticks(lo, hi)
        order = np.argsort(counts, kind="stable")  # popular dots drawn last: the head stays visible
        fig.add_scattergl(x=x[order], y=y[order], mode="markers", name=f"{noun}s", showlegend=False,
                          marker=dict(size=size, color=np.log10(counts[order]), colorscale="Viridis",
                                      cmin=math.log10(lo), cmax=math.log10(hi), opacity=base_opacity,
                                      colorbar=dict(title=dict(text="events<br>(log)", side="top"), thickness=14,
                                                    tickvals=[math.log10(t) for t in ticks],
                                                    ticktext=[f"{t:,.0f}" for t in ticks])),
                          customdata=custom[order], hovertemplate=hover)
        subtitle += " · colour: " + ("events in the user's history" if what == "users" else "events in the log") \
            + " (log scale)"
    elif color_by in ("category", "cluster") and color_by in frame and frame[color_by].notna().any():
        label, order = _groups(frame[color_by].tolist(), natural_order=color_by == "cluster")
        colors = _group_colors(order)
        for name in order:
            rows = np.flatnonzero(label == name)
            fig.add_scattergl(x=x[rows], y=y[rows], mode="markers", name=f"{name} ({rows.size:,})",
                              marker=dict(size=size, color=colors[name], opacity=base_opacity),
                              customdata=custom[rows], hovertemplate=hover)
        subtitle += f" · colour: {'main category' if what == 'users' and color_by == 'category' else color_by}"
        if color_by == "cluster":
            subtitle += " (k-means on the full vectors)"
    else:
        fig.add_scattergl(x=x, y=y, mode="markers", name=f"{noun}s", showlegend=False,
                          marker=dict(size=size, color=PRIMARY, opacity=base_opacity),
                          customdata=custom, hovertemplate=hover)
        subtitle += f" · no {color_by} known, one colour"
    _add_highlight(fig, frame, x, y, custom, hover, marked, size)
    if note:
        subtitle += f" · {note}"
    set_title(fig, title, subtitle)
    bare = dict(showticklabels=False, ticks="", zeroline=False)
    fig.update_xaxes(title_text=x_title, **bare)
    fig.update_yaxes(title_text=y_title, scaleanchor="x", scaleratio=1, **bare)  # distances read the same both ways
    return apply_theme(fig, height=_HEIGHT)


def _add_highlight(fig: go.Figure, frame: pd.DataFrame, x: np.ndarray, y: np.ndarray, custom: np.ndarray,
                   hover: str, marked: list[str], size: int) -> None:
    """Neighbours (red rings) and then the picked item (red star, labelled) on top of everything."""
    if not marked:
        return
    pos = {str(v): i for i, v in enumerate(frame["id"])}
    picked = pos.get(marked[0])
    neighbours = [pos[m] for m in marked[1:] if m in pos and pos[m] != picked]
    titles = frame["title"].tolist() if "title" in frame else [None] * len(frame)
    if neighbours:
        nb = np.array(neighbours)
        fig.add_scattergl(x=x[nb], y=y[nb], mode="markers", name="nearest neighbours",
                          marker=dict(size=size + 9, color="rgba(0,0,0,0)", line=dict(color=ACCENT, width=2.5),
                                      symbol="circle"),
                          customdata=custom[nb], hovertemplate="<b>neighbour</b> " + hover)
    if picked is not None:
        fig.add_scattergl(x=x[[picked]], y=y[[picked]], mode="markers", name="picked",
                          marker=dict(size=size + 14, color=ACCENT, symbol="star", line=dict(color="white", width=1)),
                          customdata=custom[[picked]], hovertemplate="<b>picked</b> " + hover)
        fig.add_annotation(x=x[picked], y=y[picked], text=item_label(titles[picked], frame["id"][picked], 32),
                           showarrow=True, arrowhead=2, ax=0, ay=-30, font=dict(color=ACCENT, size=13),
                           arrowcolor=ACCENT, bgcolor="rgba(255,255,255,0.8)")
