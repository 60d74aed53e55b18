"""Figures for "What changed": two runs on the same newer log (:mod:`seqrec_core.what_changed`).

The old run keeps a muted colour and the new one the main colour on every chart, so "before" and "after" read the
same way everywhere; new items (ones the old run never saw) are drawn in the accent colour.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from seqrec_core.viz.theme import ACCENT, MUTED, PRIMARY, apply_theme, empty_figure, fmt_metric, item_label, set_title

PERIOD_LABELS = {"newest": "newest period", "all": "all users"}


def _run_colors(names: list[str]) -> dict[str, str]:
    """Old run (first) muted, new run (second) in the main colour."""
    return {name: (MUTED if i == 0 else PRIMARY) for i, name in enumerate(dict.fromkeys(names))}


def plot_newest_period_metrics(metrics: pd.DataFrame, since_label: str | None = None) -> go.Figure:
    """NDCG@10 and HR@10 of both runs on the newest period and on all users (one bar per run and period)."""
    title = "Before and after, on the newest behaviour"
    if metrics.empty:
        return empty_figure(title, "period", "metric value", "no evaluable users")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("NDCG@10", "HR@10"), horizontal_spacing=0.12)
    colors = _run_colors(list(metrics["run"]))
    for col, metric in enumerate(("NDCG@10", "HR@10"), start=1):
        for run, rows in metrics.groupby("run", sort=False):
            labels = [f"{PERIOD_LABELS.get(p, p)} ({n:,} users)" for p, n in zip(rows["period"], rows["users"],
                                                                                  strict=True)]
            fig.add_trace(go.Bar(x=labels, y=rows[metric], name=str(run), marker_color=colors[run],
                                 legendgroup=str(run), showlegend=col == 1,
                                 text=[fmt_metric(v) for v in rows[metric]], textposition="outside",
                                 hovertemplate=f"{run}<br>%{{x}}<br>{metric} %{{y:.4f}}<extra></extra>"),
                          row=1, col=col)
        fig.update_yaxes(title_text=f"{metric} (held-out last event)", rangemode="tozero", row=1, col=col)
    fig.update_layout(barmode="group")
    subtitle = f"newest period: test events after {since_label}" if since_label else None
    set_title(fig, title, subtitle)
    return apply_theme(fig, height=420)


def plot_entered_items(items: pd.DataFrame, top: int = 15) -> go.Figure:
    """The items that entered the most users' top-K with the new run; new items in the accent colour."""
    title = "Items that entered users' top-K"
    shown = items[items["entered"] > 0].head(top) if not items.empty else items
    if shown.empty:
        return empty_figure(title, "users whose top-K gained the item", "item", "no top-K changed")
    shown = shown.iloc[::-1]  # largest at the top
    labels = [item_label(t, i) for t, i in zip(shown["title"], shown["item_id"], strict=True)]
    colors = [ACCENT if new else PRIMARY for new in shown["is_new"]]
    fig = go.Figure(go.Bar(
        x=shown["entered"], y=labels, orientation="h", marker_color=colors,
        customdata=list(zip(shown["item_id"], shown["users_before"], shown["users_after"],
                            ["new item" if n else "known item" for n in shown["is_new"]], strict=True)),
        hovertemplate=("%{y} (%{customdata[0]}, %{customdata[3]})<br>entered %{x:,} top-Ks<br>in %{customdata[1]:,}"
                       " top-Ks before, %{customdata[2]:,} after<extra></extra>")))
    fig.update_xaxes(title_text="users whose top-K gained the item")
    fig.update_yaxes(title_text="item")
    n_new = int(shown["is_new"].sum())
    set_title(fig, title, f"{n_new} of these {len(shown)} are new items (red): the old run never saw them")
    return apply_theme(fig, height=max(360, 28 * len(shown) + 160))


def plot_shift_recovery(recovery: dict, label: str) -> go.Figure:
    """How many of the affected users have a shift item in their top-K, before and after."""
    title = f"{label}: new items in their top-{recovery.get('k', 10)}"
    total = int(recovery.get("affected_users", 0))
    if total == 0:
        return empty_figure(title, "run", "users", "no affected users in this comparison")
    values = [recovery["with_shift_items_before"], recovery["with_shift_items_after"]]
    fig = go.Figure(go.Bar(x=["old run", "new run"], y=values, marker_color=[MUTED, PRIMARY],
                           text=[f"{v:,} of {total:,}" for v in values], textposition="outside",
                           hovertemplate="%{x}: %{y:,} users<extra></extra>"))
    fig.update_yaxes(title_text="affected users with a new item in their top-K", range=[0, total * 1.15])
    fig.update_xaxes(title_text="run")
    set_title(fig, title, f"{total:,} affected users")
    return apply_theme(fig, height=360)


__all__ = ["plot_entered_items", "plot_newest_period_metrics", "plot_shift_recovery"]
