"""Figures for the Evaluate page: is the model better than honest baselines, by how much, for whom?

Baselines (popularity, markov, itemknn) are always grey and the model always in colour, so "does it beat the
baselines" is answered by colour alone. Error bars are 95% intervals over test users: overlapping bars mean
the difference may be noise.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from seqrec_core.viz.theme import (
    BASELINE_GREYS,
    PRIMARY,
    add_guide,
    apply_theme,
    clean_text,
    empty_figure,
    fmt_count,
    fmt_metric,
    is_baseline,
    log_axis_ticks,
    model_colors,
    set_title,
)

_CDF_POINTS = 400  # log-spaced ranks at which each model's CDF is evaluated exactly
_GUIDES = (10, 20)


def _require(frame: pd.DataFrame, columns: set[str], fn: str) -> None:
    missing = columns - set(frame.columns)
    if missing:
        raise ValueError(f"{fn} needs columns {sorted(columns)}; missing {sorted(missing)}")


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)


def error_bars(value: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict | None:
    """Asymmetric whiskers from interval bounds; none at all when no bound is known."""
    if not (np.isfinite(lo).any() or np.isfinite(hi).any()):
        return None
    plus = np.where(np.isfinite(hi), np.clip(hi - value, 0, None), 0.0)
    minus = np.where(np.isfinite(lo), np.clip(value - lo, 0, None), 0.0)
    return dict(type="data", symmetric=False, array=plus, arrayminus=minus, color="#3A3F47", thickness=1.5,
                width=6)


def plot_metric_comparison(table: pd.DataFrame, metric: str = "NDCG@10") -> go.Figure:
    """One bar per model, best at the top, 95% whiskers; a dotted line at the best baseline makes "beats the
    baselines" a single glance."""
    chance = metric in ("AUC", "GAUC")  # 0.5 is what a random ranking gets, so the chart marks it
    title, y_title = f"{metric} by model", "model"
    x_title = f"{metric} on test users (0–1, {'0.5 = random, ' if chance else ''}higher is better)"
    if table is None or len(table) == 0:
        return empty_figure(title, x_title, y_title, "no evaluated models")
    _require(table, {"model", metric}, "plot_metric_comparison")
    frame = pd.DataFrame({"model": [clean_text(m, "?") for m in table["model"]], "value": _col(table, metric),
                          "lo": _col(table, f"{metric} lo"), "hi": _col(table, f"{metric} hi")})
    frame = frame[np.isfinite(frame["value"])].sort_values("value", ascending=False, kind="stable")
    if frame.empty:
        return empty_figure(title, x_title, y_title, f"no {metric} values")
    frame["baseline"] = [is_baseline(m) for m in frame["model"]]
    fig = go.Figure()
    for baseline, group in frame.groupby("baseline", sort=True):
        value, lo, hi = (group[c].to_numpy(dtype=float) for c in ("value", "lo", "hi"))
        ci = [f"95% CI {fmt_metric(a)}–{fmt_metric(b)}" if np.isfinite(a) and np.isfinite(b) else "no interval"
              for a, b in zip(lo, hi, strict=True)]
        fig.add_bar(x=value, y=group["model"], orientation="h", name="baseline" if baseline else "model",
                    marker_color=BASELINE_GREYS[0] if baseline else PRIMARY, customdata=ci,
                    error_x=error_bars(value, lo, hi),
                    hovertemplate=f"<b>%{{y}}</b><br>{metric} %{{x:.4f}}<br>%{{customdata}}<extra></extra>")
    value, hi = frame["value"].to_numpy(dtype=float), frame["hi"].to_numpy(dtype=float)
    label_x = np.where(np.isfinite(hi), np.maximum(hi, value), value)
    fig.add_scatter(x=label_x, y=frame["model"], mode="text", text=[f"  {fmt_metric(v)}" for v in value],
                    textposition="middle right", showlegend=False, hoverinfo="skip", cliponaxis=False)
    baselines = frame[frame["baseline"]]
    models = frame[~frame["baseline"]]
    subtitle = "whiskers: 95% confidence interval"
    if chance:
        add_guide(fig, 0.5, "random (0.5)", color="#5F6673", dash="dash")
    if not baselines.empty:
        best_base = baselines.iloc[0]
        add_guide(fig, float(best_base["value"]), f"best baseline ({best_base['model']})", dash="dot")
        if not models.empty and best_base["value"] > 0:
            best = models.iloc[0]
            lift = float(best["value"]) / float(best_base["value"]) - 1
            subtitle = f"{best['model']} {lift:+.0%} vs the best baseline ({best_base['model']}) · " + subtitle
    set_title(fig, title, subtitle)
    x_max = float(np.nanmax(label_x)) if np.isfinite(label_x).any() else 1.0
    fig.update_xaxes(title_text=x_title, range=[0, x_max * 1.18 if x_max > 0 else 1], rangemode="tozero")
    fig.update_yaxes(title_text=y_title, categoryorder="array", categoryarray=list(frame["model"]),
                     autorange="reversed")
    fig.update_layout(barmode="overlay")
    return apply_theme(fig, height=max(280, 140 + 44 * len(frame)))


def ordered_models(models: list[str]) -> list[str]:
    """Models first, baselines after, each in the order given, so the legend leads with what was trained."""
    return [m for m in models if not is_baseline(m)] + [m for m in models if is_baseline(m)]


def plot_rank_distribution(ranks: pd.DataFrame, n_items: int) -> go.Figure:
    """Cumulative share of test users whose held-out item is at rank <= r. HR@K is the curve's height at K,
    so one curve shows every cut-off at once; higher and further left is better."""
    title = "Where the held-out item lands in the ranking"
    x_title, y_title = "rank of the held-out item (log)", "share of users ≤ rank"
    if ranks is None or len(ranks) == 0:
        return empty_figure(title, x_title, y_title, "no ranks")
    _require(ranks, {"model", "rank"}, "plot_rank_distribution")
    n_items = max(int(n_items), 1)
    frame = pd.DataFrame({"model": [clean_text(m, "?") for m in ranks["model"]], "rank": _col(ranks, "rank")})
    frame = frame[np.isfinite(frame["rank"])]
    if frame.empty:
        return empty_figure(title, x_title, y_title, "no ranks")
    grid = np.unique(np.concatenate([np.round(np.logspace(0, np.log10(n_items), _CDF_POINTS)),
                                     [g for g in _GUIDES if g <= n_items]])).astype(float)
    models = ordered_models(list(dict.fromkeys(frame["model"])))
    colors = model_colors(models)
    fig = go.Figure()
    for model in models:
        values = np.sort(frame.loc[frame["model"] == model, "rank"].to_numpy(dtype=float))
        share = np.searchsorted(values, grid, side="right") / len(values)
        at10 = np.searchsorted(values, 10, side="right") / len(values)
        fig.add_scatter(x=grid, y=share, mode="lines", line_shape="hv", name=f"{model} ({at10:.0%} in top 10)",
                        line=dict(color=colors[model], width=2 if is_baseline(model) else 3,
                                  dash="dash" if is_baseline(model) else "solid"),
                        customdata=np.full(len(grid), len(values)),
                        hovertemplate=f"<b>{model}</b>: %{{y:.1%}} of %{{customdata:,}} users at rank ≤ %{{x:,}}"
                                      "<extra></extra>")
    _add_rank_guides(fig, [g for g in _GUIDES if g <= n_items])
    set_title(fig, title, f"catalogue of {n_items:,} items · a curve further up and to the left is better")
    fig.update_xaxes(title_text=x_title, type="log", range=[0, np.log10(max(n_items, 2))],
                     **log_axis_ticks(1, n_items))
    fig.update_yaxes(title_text=y_title, range=[0, 1.02], tickformat=".0%")
    # Under the axis: a good model's curve fills the top-left and the baselines' the bottom-right, so a legend of
    # four long names inside the plot always covers one of them.
    return apply_theme(fig)


def _add_rank_guides(fig: go.Figure, guides: list[int]) -> None:
    """Dotted lines at the top-K cut-offs, each labelled above the plot on its outer side: the first to the left
    of its line, the others to the right. 10 and 20 are only 0.3 log-decades apart, so centred labels ran into
    each other ("top 10top 20") on any catalogue over a few hundred items; text that points away from the
    neighbouring line cannot touch the neighbour's, whatever the rank range or chart width."""
    color = "#5F6673"
    for k, guide in enumerate(guides):
        add_guide(fig, guide, color=color, dash="dot", log_x=True, width=1)
        left = k == 0 and len(guides) > 1
        fig.add_annotation(x=math.log10(guide), xref="x", y=1.0, yref="y domain", yanchor="bottom",
                           xanchor="right" if left else "left", xshift=-3 if left else 3, showarrow=False,
                           text=f"top {guide}", font=dict(color=color, size=13), name=f"guide top {guide}")


def _bucket_order(frame: pd.DataFrame) -> list[str]:
    if isinstance(frame["bucket"].dtype, pd.CategoricalDtype):
        present = set(frame["bucket"].astype(str))
        return [str(c) for c in frame["bucket"].cat.categories if str(c) in present]
    return list(dict.fromkeys(frame["bucket"].astype(str)))


def plot_metric_by_history_length(frame: pd.DataFrame, metric: str = "NDCG@10") -> go.Figure:
    """Grouped bars per history-length bucket: does the model help users with long histories more (the point
    of a sequence model) or only cold users? Each bucket's user count is under its label, since small buckets
    have wide intervals."""
    title = f"{metric} by history length"
    x_title, y_title = "history length before the held-out event (events)", f"{metric} (0–1, higher is better)"
    if frame is None or len(frame) == 0:
        return empty_figure(title, x_title, y_title, "no history-length buckets")
    _require(frame, {"model", "bucket", "value"}, "plot_metric_by_history_length")
    data = frame.copy()
    data["model"] = [clean_text(m, "?") for m in data["model"]]
    order = _bucket_order(data)
    data["bucket"] = data["bucket"].astype(str)
    data["value"], data["lo"], data["hi"] = _col(data, "value"), _col(data, "lo"), _col(data, "hi")
    data["users"] = _col(data, "users")
    data = data[np.isfinite(data["value"])]
    if data.empty:
        return empty_figure(title, x_title, y_title, f"no {metric} values")
    order = [b for b in order if b in set(data["bucket"])]
    users = data.groupby("bucket")["users"].max()
    ticktext = [f"{b}<br>({fmt_count(users[b])} users)" if np.isfinite(users.get(b, np.nan)) else b for b in order]
    models = ordered_models(list(dict.fromkeys(data["model"])))
    colors = model_colors(models)
    fig = go.Figure()
    for model in models:
        part = data[data["model"] == model].set_index("bucket").reindex(order)
        value, lo, hi = (part[c].to_numpy(dtype=float) for c in ("value", "lo", "hi"))
        n_users = part["users"].to_numpy(dtype=float)
        custom = np.stack([n_users, lo, hi], axis=1)
        fig.add_bar(x=order, y=value, name=model, marker_color=colors[model], customdata=custom,
                    error_y=error_bars(value, lo, hi),
                    hovertemplate=(f"<b>{model}</b> · %{{x}} events<br>{metric} %{{y:.4f}} "
                                   "(95% CI %{customdata[1]:.4f}–%{customdata[2]:.4f})"
                                   "<br>%{customdata[0]:,} users<extra></extra>"))
    set_title(fig, title, "whiskers: 95% confidence interval · user count under each bucket")
    fig.update_xaxes(title_text=x_title, categoryorder="array", categoryarray=order, tickvals=order,
                     ticktext=ticktext)
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    fig.update_layout(barmode="group", bargroupgap=0.05)
    return apply_theme(fig)
