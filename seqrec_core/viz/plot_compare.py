"""Figures for the Compare page: several runs on one dataset, next to the baselines, under one protocol.

Every run keeps one colour across the page (``model_colors`` in the order the runs are given), baselines stay
grey, and every metric bar carries its 95% bootstrap whiskers, so "is run A really better than run B" is
answered by whether the whiskers overlap.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from seqrec_core.viz.plot_explain import fmt_seconds
from seqrec_core.viz.theme import (
    ACCENT,
    apply_theme,
    clean_text,
    empty_figure,
    fmt_metric,
    is_baseline,
    item_label,
    model_colors,
    set_title,
    truncate,
)

AGAINST = "#9A9A9A"  # attributions against the target (the Explain page's orange is a run colour here)
WHISKER = dict(type="data", symmetric=False, color="#3A3F47", thickness=1.5, width=5)


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)


def run_order(names: Sequence[str]) -> list[str]:
    """Runs first (in the given order), baselines after: the order of every legend and colour on the page."""
    names = list(dict.fromkeys(str(n) for n in names))
    return [n for n in names if not is_baseline(n)] + [n for n in names if is_baseline(n)]


def plot_runs_metrics(table: pd.DataFrame, metrics: Sequence[str] = ("HR@10", "NDCG@10", "MRR"),
                      runs: Sequence[str] | None = None, colors: Mapping[str, str] | None = None) -> go.Figure:
    """One panel per metric, one horizontal bar per run and baseline with its 95% whiskers; runs in colour,
    baselines grey, the dotted line is the best baseline. ``table``: compare.get_metrics_with_ci; ``runs``: which
    runs to show, in this order (default: the table's); the table's baselines always follow."""
    title = "Test metrics of every run next to the baselines"
    if table is None or len(table) == 0 or "model" not in table:
        return empty_figure(title, "metric value", "run", "no evaluated runs")
    metrics = [m for m in metrics if m in table]
    if not metrics:
        return empty_figure(title, "metric value", "run", "no metric columns")
    models = list(table["model"].astype(str))
    names = run_order([*(runs if runs is not None else models), *[m for m in models if is_baseline(m)]])
    names = [n for n in names if n in set(table["model"].astype(str))]
    colors = {**model_colors(names), **(colors or {})}
    data = table.assign(model=table["model"].astype(str)).set_index("model").reindex(names)
    fig = make_subplots(rows=1, cols=len(metrics), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=list(metrics))  # "higher is better" once, in the subtitle: five fit
    for c, metric in enumerate(metrics, start=1):
        value, lo, hi = _num(data, metric), _num(data, f"{metric} lo"), _num(data, f"{metric} hi")
        err = dict(WHISKER, array=np.clip(np.nan_to_num(hi - value), 0, None),
                   arrayminus=np.clip(np.nan_to_num(value - lo), 0, None))
        ci = [f"95% CI {fmt_metric(a)}–{fmt_metric(b)}" if np.isfinite(a) and np.isfinite(b) else "no interval"
              for a, b in zip(lo, hi, strict=True)]
        fig.add_bar(x=value, y=names, orientation="h", row=1, col=c, showlegend=False, error_x=err,
                    marker_color=[colors[n] for n in names], customdata=ci,
                    text=[fmt_metric(v) for v in value], textposition="inside", insidetextanchor="start",
                    textfont=dict(color="white", size=12),
                    hovertemplate=f"<b>%{{y}}</b><br>{metric} %{{x:.4f}}<br>%{{customdata}}<extra></extra>")
        base = [v for n, v in zip(names, value, strict=True) if is_baseline(n) and np.isfinite(v)]
        if base:
            fig.add_vline(x=max(base), line=dict(color="#5F6673", dash="dot", width=1.2), row=1, col=c)
        top = np.nanmax(np.where(np.isfinite(hi), np.maximum(hi, value), value)) if np.isfinite(value).any() else 1
        fig.update_xaxes(range=[0, max(float(top) * 1.08, 1e-3)], rangemode="tozero", row=1, col=c,
                         title_text="test users' mean")
    fig.update_yaxes(categoryorder="array", categoryarray=names, autorange="reversed", title_text=None)
    fig.update_yaxes(title_text="run / baseline", row=1, col=1)
    set_title(fig, title, "higher is better · whiskers: 95% bootstrap interval · dotted line: best baseline · "
                          "baselines in grey")
    fig.update_annotations(font=dict(size=14))
    apply_theme(fig, height=max(320, 170 + 38 * len(names)))
    fig.update_layout(margin=dict(t=120))
    return fig


def plot_attribution_side_by_side(aligned: pd.DataFrame, runs: Sequence[str], targets: pd.DataFrame | None = None,
                                  *, colors: Mapping[str, str] | None = None,
                                  names: Mapping[str, str] | None = None) -> go.Figure:
    """One row per run, the same history events on a shared lag axis (latest on the right): which past events
    each run credits for its prediction. Each row has its own scale (score units differ between models); the
    three most supportive events of each run are numbered, grey bars push against the target. ``colors``: the
    runs' colours elsewhere on the page; ``names``: a longer name per run for the row titles."""
    title, x_title = "Which past events each run relies on (integrated gradients)", "lag"
    runs = [r for r in runs if r in aligned] if aligned is not None else []
    if aligned is None or len(aligned) == 0 or not runs:
        return empty_figure(title, x_title, "attribution", "no attributions")
    lags = pd.to_numeric(aligned["lag"], errors="coerce").fillna(0).to_numpy(dtype=int)
    titles = [item_label(t, i, 60) for t, i in zip(aligned["title"], aligned["item_id"], strict=True)]
    secs = _num(aligned, "seconds_before")
    when = [f" · {fmt_seconds(s)} before" if np.isfinite(s) else "" for s in secs]
    colors = {**model_colors(runs), **(colors or {})}
    by_run = targets.set_index("run") if targets is not None and len(targets) else None
    labels = []
    for run in runs:
        label = f"<b>{truncate((names or {}).get(run, run), 50)}</b>"
        if by_run is not None and run in by_run.index:
            t = by_run.loc[run]
            label += f" explaining <i>{item_label(t['target_title'], t['target_item'], 40)}</i>"
        labels.append(label)
    fig = make_subplots(rows=len(runs), cols=1, shared_xaxes=True, vertical_spacing=0.16 if len(runs) < 3 else 0.1,
                        subplot_titles=labels)
    for r, run in enumerate(runs, start=1):
        v = _num(aligned, run)
        rank = pd.Series(-v).rank(method="first").to_numpy()
        text = [f"{int(k)}" if np.isfinite(k) and k <= 3 and np.isfinite(x) else ""
                for k, x in zip(rank, v, strict=True)]
        custom = np.array([[t, str(i), int(lag), w] for t, i, lag, w in
                           zip(titles, aligned["item_id"], lags, when, strict=True)], dtype=object)
        fig.add_bar(x=lags, y=v, row=r, col=1, showlegend=False, text=text, textposition="outside", cliponaxis=False,
                    marker_color=[colors[run] if (np.isfinite(x) and x >= 0) else AGAINST for x in v],
                    customdata=custom,
                    hovertemplate=f"<b>%{{customdata[0]}}</b><br>id %{{customdata[1]}} · lag %{{customdata[2]}}"
                                  f"%{{customdata[3]}}<br>{truncate(run, 30)}: %{{y:.4f}}<extra></extra>")
        fig.update_yaxes(title_text="IG", zeroline=True, row=r, col=1)
        fig.update_xaxes(autorange="reversed", row=r, col=1)
        if lags.size and lags.max() <= 30:
            fig.update_xaxes(dtick=1 if lags.max() <= 15 else 5, row=r, col=1)
    fig.update_xaxes(title_text="lag (events before the prediction; 1 = latest)", row=len(runs), col=1)
    set_title(fig, title, f"{len(aligned):,} events · each row in its own score units · numbers = the run's top 3 "
                          "events · grey = against the target")
    fig.update_annotations(font=dict(size=13))
    apply_theme(fig, height=170 + 190 * len(runs))
    fig.update_layout(margin=dict(t=120))
    return fig


def plot_topk_overlap(frame: pd.DataFrame, runs: Sequence[str], *, colors: Mapping[str, str] | None = None,
                      names: Mapping[str, str] | None = None) -> go.Figure:
    """Two runs' top-K as two ranked columns; a line joins an item both runs list, so agreement and reordering
    are one glance. The held-out (real next) item is a red star. ``frame``: compare.get_topk_comparison."""
    title = "Where the two runs agree"
    runs = list(runs)[:2]
    if frame is None or len(frame) == 0 or len(runs) < 2:
        return empty_figure(title, "run", "rank", "needs two runs' recommendations")
    a, b = (frame[frame["run"] == r] for r in runs)
    k = int(max(_num(frame, "rank").max(), 1))
    colors = {**model_colors(runs), **(colors or {})}
    fig = go.Figure()
    pos_b = dict(zip(b["item_id"].astype(str), b["rank"], strict=True))
    shared = 0
    for item, rank in zip(a["item_id"].astype(str), a["rank"], strict=True):
        if item in pos_b:
            shared += 1
            fig.add_scatter(x=[0, 1], y=[rank, pos_b[item]], mode="lines", showlegend=False, hoverinfo="skip",
                            line=dict(color="#8FB0D3", width=2))
    for x, part, run in ((0, a, runs[0]), (1, b, runs[1])):
        held = part["heldout"].to_numpy(dtype=bool) if "heldout" in part else np.zeros(len(part), dtype=bool)
        items = [item_label(t, i, 30) for t, i in zip(part["title"], part["item_id"], strict=True)]
        text = [f"{r}. {lab}  " if x == 0 else f"  {r}. {lab}" for r, lab in zip(part["rank"], items, strict=True)]
        fig.add_scatter(x=np.full(len(part), x), y=part["rank"], mode="markers+text", text=text,
                        textposition="middle left" if x == 0 else "middle right", cliponaxis=False, showlegend=False,
                        marker=dict(size=[15 if h else 10 for h in held],
                                    symbol=["star" if h else "circle" for h in held],
                                    color=[ACCENT if h else colors[run] for h in held]),
                        customdata=np.array(
                            list(zip(part["item_id"].astype(str), _num(part, "score"), items, strict=True)),
                            dtype=object).reshape(len(part), 3),  # the score stays a number
                        hovertemplate=f"<b>%{{customdata[2]}}</b><br>{truncate(run, 30)} rank %{{y}} · id "
                                      "%{customdata[0]}<br>score %{customdata[1]:.3f}<extra></extra>")
    heads = [truncate(clean_text((names or {}).get(r, r)), 34) for r in runs]
    fig.update_xaxes(range=[-1.5, 2.5], tickvals=[0, 1], ticktext=heads, showgrid=False, showline=False,
                     title_text=None, zeroline=False, tickangle=0)
    fig.update_yaxes(autorange=False, range=[k + 0.7, 0.3], visible=False)
    set_title(fig, title, f"{shared} of {len(a)} items in both lists · red star = the real next item")
    return apply_theme(fig, height=max(320, 150 + 30 * k))


def plot_paired_difference(table: pd.DataFrame, *, colors: Mapping[str, str] | None = None,
                           names: Mapping[str, str] | None = None) -> go.Figure:
    """Run A minus run B per metric: a dot at the mean per-user difference and its paired 95% interval; the
    grey line is "no difference". An interval clear of it is a real difference, drawn in the winner's colour.
    The subtitle names the runs (``names``, shortened: the page names them in full above the figure).
    ``table``: compare.get_paired_difference with labels ("A", "B"); ``colors`` / ``names``: keyed "A" and "B"."""
    title = "Run A minus run B on the same test users"
    if table is None or len(table) == 0 or not np.isfinite(_num(table, "difference")).any():
        return empty_figure(title, "difference (A − B)", "metric", "no test users in common")
    colors = {"A": "#4E79A7", "B": "#F28E2B", **(colors or {})}
    diff, lo, hi = _num(table, "difference"), _num(table, "lo"), _num(table, "hi")
    winner = ["A" if a > 0 else "B" if b < 0 else None for a, b in zip(lo, hi, strict=True)]
    fig = go.Figure()
    fig.add_vline(x=0, line=dict(color="#5F6673", width=1.5))
    fig.add_scatter(x=diff, y=list(table["metric"]), mode="markers", showlegend=False,
                    marker=dict(size=13, color=[colors[w] if w else AGAINST for w in winner]),
                    error_x=dict(WHISKER, array=np.clip(hi - diff, 0, None), arrayminus=np.clip(diff - lo, 0, None),
                                 thickness=2.5, width=9),
                    # numbers stay numbers
                    customdata=np.array(list(zip(lo, hi, table["verdict"], strict=True)), dtype=object),
                    hovertemplate="<b>%{y}</b><br>A − B = %{x:+.4f}<br>95% interval %{customdata[0]:+.4f} to "
                                  "%{customdata[1]:+.4f}<br>%{customdata[2]}<extra></extra>")
    span = float(np.nanmax(np.abs(np.concatenate([lo, hi])))) if np.isfinite(lo).any() else 0.0
    span = max(span * 1.25, 1e-3)
    fig.update_xaxes(range=[-span, span], zeroline=False,
                     title_text="difference in the metric (A − B); right of 0: A better · left: B better")
    fig.update_yaxes(title_text=None, autorange="reversed")
    heads = " · ".join(f"{k} = {truncate(clean_text(v), 18)}" for k, v in (names or {}).items())
    set_title(fig, title, heads or "whiskers: paired bootstrap 95% interval")
    return apply_theme(fig, height=300)
