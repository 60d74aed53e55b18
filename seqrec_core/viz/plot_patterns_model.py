"""Figures for the Patterns page's Model tab: does the model do better for some temporal segments or inside
item bursts, and does its attribution lean on timely events more than their number explains?

Each metric bar carries its 95% bootstrap whiskers and the group's user count; the attribution chart draws the
chance level (the events' share of the history) next to the measured share.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from seqrec_core.explain_methods import describe
from seqrec_core.viz.plot_evaluation import error_bars, ordered_models
from seqrec_core.viz.plot_patterns import SEGMENT_ORDER, column_values
from seqrec_core.viz.theme import (
    BASELINE_GREYS,
    PRIMARY,
    apply_theme,
    clean_text,
    empty_figure,
    fmt_count,
    label_above,
    model_colors,
    set_title,
)


def _metric_by_group(frame: pd.DataFrame, group: str, metric: str, title: str, x_title: str,
                     order: list[str] | None = None) -> go.Figure:
    y_title = f"{metric} (0–1, higher is better)"
    if frame is None or len(frame) == 0 or metric not in frame:
        return empty_figure(title, x_title, y_title, "no evaluated users")
    data = frame.copy()
    data[group] = data[group].astype(str)
    data["model"] = data["model"].astype(str) if "model" in data else "model"
    groups = order or list(dict.fromkeys(data[group]))
    groups = [g for g in groups if g in set(data[group])]
    users = data.groupby(group)["users"].max() if "users" in data else pd.Series(dtype=float)
    ticktext = [f"{g}<br>({fmt_count(users[g])} user{'' if users[g] == 1 else 's'})" if g in users else g
                for g in groups]
    models = ordered_models(list(dict.fromkeys(data["model"])))
    colors = model_colors(models)
    fig = go.Figure()
    for model in models:
        part = data[data["model"] == model].set_index(group).reindex(groups)
        value, lo, hi = (column_values(part, metric), column_values(part, f"{metric} lo"),
                         column_values(part, f"{metric} hi"))
        fig.add_bar(x=groups, y=value, name=model, marker_color=colors[model], error_y=error_bars(value, lo, hi),
                    customdata=np.column_stack([column_values(part, "users"), lo, hi]),
                    hovertemplate=f"<b>{model}</b> · %{{x}}<br>{metric} %{{y:.4f}} (95% CI %{{customdata[1]:.4f}}–"
                                  "%{customdata[2]:.4f})<br>%{customdata[0]:,} users<extra></extra>")
    set_title(fig, title, "whiskers: 95% bootstrap interval · user count under each group")
    fig.update_xaxes(title_text=x_title, categoryorder="array", categoryarray=groups, tickvals=groups,
                     ticktext=ticktext)
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    fig.update_layout(barmode="group", bargroupgap=0.05)
    return apply_theme(fig)


def plot_metrics_by_segment(frame: pd.DataFrame, metric: str = "NDCG@10") -> go.Figure:
    """Test metric per user segment (periodic / bursty / regular / Poisson-like), model next to baselines."""
    return _metric_by_group(frame, "segment", metric, f"{metric} by the user's temporal segment",
                            "user segment", order=list(SEGMENT_ORDER))


def plot_burst_split(frame: pd.DataFrame, metric: str = "NDCG@10") -> go.Figure:
    """Test metric for held-out events inside vs outside a burst of the held-out item."""
    return _metric_by_group(frame, "where", metric, f"{metric} inside vs outside item bursts",
                            "when the held-out event happened")


def plot_attribution_time_mass(frame: pd.DataFrame, *, users: int | None = None, method: str = "ig") -> go.Figure:
    """Share of |attribution| on history events with a temporal property (inside a burst of their item, same
    hour of day / weekday as the prediction), next to those events' share of the history (the chance level):
    a bar above its diamond means the model leans on that kind of event more than its number alone explains."""
    title, x_title, y_title = "Does the model lean on timely events?", "history events that are…", \
        "share of |attribution| (%)"
    if frame is None or len(frame) == 0:
        return empty_figure(title, x_title, y_title, "no explained predictions")
    aspects = frame["aspect"].astype(str).tolist()
    share = np.nan_to_num(column_values(frame, "share_of_abs_attribution"))
    chance = column_values(frame, "share_of_events")
    ratio = np.where(chance > 0, share / np.where(chance > 0, chance, 1), np.nan)
    fig = go.Figure()
    fig.add_bar(x=aspects, y=100 * share, name="share of |attribution|", marker_color=PRIMARY,
                customdata=np.column_stack([100 * chance, ratio]),
                hovertemplate="<b>%{x}</b><br>%{y:.1f}% of |attribution| vs %{customdata[0]:.1f}% of the events "
                              "(%{customdata[1]:.2f}× chance)<extra></extra>")
    fig.add_scatter(x=aspects, y=100 * chance, mode="markers", name="share of events (chance level)",
                    marker=dict(symbol="diamond", size=12, color=BASELINE_GREYS[2]),
                    hovertemplate="<b>%{x}</b><br>%{y:.1f}% of the history events<extra></extra>")
    known = describe(str(method))  # the registry's name; an unknown stored method keeps its own (cleaned) key
    parts = [known.label if known else clean_text(method, "ig")] + ([f"{users:,} predictions"] if users else [])
    tag = {"inside a burst of their item": "burst", "at the same hour of day": "hour", "on the same weekday": "weekday"}
    ratios = [f"{tag.get(a, a)} {r:.1f}×" for a, r in zip(aspects, ratio, strict=True) if np.isfinite(r)]
    if ratios:
        parts.append("vs chance: " + ", ".join(ratios))
    set_title(fig, title, " · ".join(parts))
    top = label_above(fig, aspects, 100 * share, 100 * chance, [f"{s:.0%}" for s in share])
    fig.update_xaxes(title_text=x_title, type="category")
    fig.update_yaxes(title_text=y_title, range=[0, max(top, 5.0)])
    return apply_theme(fig, height=400)
