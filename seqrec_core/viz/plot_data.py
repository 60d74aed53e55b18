"""Figures for the Data page: how long the histories are, when events happen, how skewed popularity is, and
what cleaning removed. Each answers one question an analyst asks before trusting any model trained on the log.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from seqrec_core.viz.theme import (
    ACCENT,
    MUTED,
    PRIMARY,
    add_guide,
    apply_theme,
    clean_text,
    empty_figure,
    fmt_count,
    log_axis_ticks,
    log_ticks,
    set_title,
)

_LOG_BINS = 40  # log-spaced bins for skewed length distributions
_MAX_LINEAR_BINS = 60
_MAX_CURVE_POINTS = 1500  # rank-frequency curves are downsampled on a log grid beyond this


def _is_skewed(values: np.ndarray) -> bool:
    """Log-x pays off when the long tail would squash the bulk into one or two bars."""
    med = float(np.median(values))
    return values.max() >= 50 and values.max() > 10 * max(med, 1.0)


def plot_sequence_lengths(seq_lengths: np.ndarray) -> go.Figure:
    """Histogram of events per user. Skewed logs (the usual case) get log-spaced bins on a log axis, because a
    linear axis would show one tall bar and an invisible tail."""
    title, x_title, y_title = "Events per user", "events per user", "users"
    lengths = np.asarray(seq_lengths, dtype=float).ravel()
    lengths = lengths[np.isfinite(lengths) & (lengths >= 1)]
    if lengths.size == 0:
        return empty_figure(title, x_title, y_title, "no users with events")
    lengths = np.round(lengths).astype(np.int64)
    lo, hi = int(lengths.min()), int(lengths.max())
    fig = go.Figure()
    skewed = _is_skewed(lengths)
    if skewed:
        edges = np.unique(np.round(np.logspace(np.log10(lo), np.log10(hi + 1), _LOG_BINS + 1)).astype(np.int64))
    else:
        width = max(1, int(np.ceil((hi - lo + 1) / _MAX_LINEAR_BINS)))
        edges = np.arange(lo, hi + width + 1, width, dtype=np.int64)
    counts, _ = np.histogram(lengths, bins=edges)
    left, right = edges[:-1], edges[1:] - 1  # integer bins [left, right]
    ranges = [f"{a:,}" if a == b else f"{a:,}–{b:,}" for a, b in zip(left, right, strict=True)]
    if skewed:  # bars live in log10 space so equal-width bins look equal; ticks show real counts.
        log_edges = np.log10(edges - 0.5)  # half-integer edges put the integer k inside its own bar
        x = (log_edges[:-1] + log_edges[1:]) / 2
        widths = np.diff(log_edges) * 0.92
    else:
        x = (edges[:-1] + edges[1:] - 1) / 2
        widths = np.diff(edges) * 0.9
    fig.add_bar(x=x, y=counts, width=widths, marker_color=PRIMARY, customdata=ranges, name="users",
                hovertemplate="%{customdata} events: %{y:,} users<extra></extra>")
    med = float(np.median(lengths))
    med_x = np.log10(med) if skewed else med
    add_guide(fig, med_x, f"median {med:,.0f}", width=2)
    if skewed:
        ticks = log_ticks(lo, hi)
        if not ticks or ticks[0] > 1.4 * lo:  # always label where the axis starts
            ticks.insert(0, float(lo))
        fig.update_xaxes(tickvals=np.log10(ticks), ticktext=[f"{t:,.0f}" for t in ticks],
                         range=[log_edges[0] - 0.01, log_edges[-1] + 0.01])
        x_title = "events per user (log scale)"
    set_title(fig, title, f"{fmt_count(lengths.size)} users · median {med:,.0f} · longest {hi:,} events")
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return apply_theme(fig)


def plot_events_over_time(events_per_day: pd.Series) -> go.Figure:
    """Daily event counts with a rolling average on top: the raw line shows bursts and outages, the average
    shows the trend. Days with no events are drawn as zero rather than silently bridged."""
    title, x_title, y_title = "Events over time", "date (UTC)", "events per day"
    if events_per_day is None:  # what the data summary gives for logs without time
        return empty_figure(title, x_title, y_title, "this log has event order only, no timestamps")
    series = pd.Series(events_per_day)
    series = pd.to_numeric(series, errors="coerce").dropna()
    if series.empty:
        return empty_figure(title, x_title, y_title, "no events")
    if not isinstance(series.index, pd.DatetimeIndex):
        if pd.api.types.is_numeric_dtype(series.index.dtype):  # an event order, not time: nothing to plot by date
            return empty_figure(title, x_title, y_title, "this log has event order only, no timestamps")
        try:
            series.index = pd.to_datetime(series.index, utc=True)
        except (ValueError, TypeError):
            return empty_figure(title, x_title, y_title, "the index is not a date")
    index = series.index.tz_convert("UTC").tz_localize(None) if series.index.tz is not None else series.index
    daily = series.groupby(index.normalize()).sum().sort_index()
    daily = daily.reindex(pd.date_range(daily.index[0], daily.index[-1], freq="D"), fill_value=0)
    window = 7 if len(daily) <= 400 else 30 if len(daily) <= 1500 else 91  # the trend, not the weekday wiggle
    fig = go.Figure()
    if len(daily) <= 62:  # a few weeks read best as bars
        fig.add_bar(x=daily.index, y=daily.to_numpy(), marker_color=PRIMARY, name="events per day",
                    hovertemplate="%{x|%a %Y-%m-%d}: %{y:,} events<extra></extra>")
    else:
        fig.add_scatter(x=daily.index, y=daily.to_numpy(), mode="lines", line=dict(color=MUTED, width=1),
                        name="daily", hovertemplate="%{x|%a %Y-%m-%d}: %{y:,} events<extra></extra>")
        smooth = daily.rolling(window, min_periods=1, center=True).mean()
        fig.add_scatter(x=smooth.index, y=smooth.to_numpy(), mode="lines", line=dict(color=PRIMARY, width=2.5),
                        name=f"{window}-day average",
                        hovertemplate=f"%{{x|%Y-%m-%d}}: %{{y:,.1f}} events/day ({window}-day avg)<extra></extra>")
    total = float(daily.sum())
    busiest = daily.idxmax()
    set_title(fig, title, f"{fmt_count(total)} events over {len(daily):,} days "
                          f"({daily.index[0]:%Y-%m-%d} to {daily.index[-1]:%Y-%m-%d}) · "
                          f"busiest day {busiest:%Y-%m-%d} with {fmt_count(daily.max())}")
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    return apply_theme(fig)


def plot_item_popularity(item_counts: np.ndarray) -> go.Figure:
    """Rank-frequency curve on log-log axes: a straight, steep line means a few hits dominate, which is why the
    popularity baseline is hard to beat. Items with zero events cannot sit on a log axis and are left out."""
    title, x_title, y_title = "Item popularity (long tail)", "item rank (1 = most popular, log scale)", \
        "events (log scale)"
    counts = np.asarray(item_counts, dtype=float).ravel()
    counts = np.sort(counts[np.isfinite(counts) & (counts > 0)])[::-1]
    if counts.size == 0:
        return empty_figure(title, x_title, y_title, "no item has events")
    n = counts.size
    ranks = np.arange(1, n + 1)
    if n > _MAX_CURVE_POINTS:  # keep the shape, drop the points a log axis would pile on top of each other
        keep = np.unique(np.round(np.logspace(0, np.log10(n), _MAX_CURVE_POINTS)).astype(np.int64)) - 1
        ranks, shown = ranks[keep], counts[keep]
    else:
        shown = counts
    cum_share = np.cumsum(counts) / counts.sum()
    fig = go.Figure()
    fig.add_scatter(x=ranks, y=shown, mode="lines+markers" if n <= 60 else "lines",
                    line=dict(color=PRIMARY, width=2.5), name="items", customdata=cum_share[ranks - 1] * 100,
                    hovertemplate="rank %{x:,}: %{y:,} events<br>top %{x:,} items = %{customdata:.1f}% of events"
                                  "<extra></extra>")
    top = max(1, int(round(0.2 * n)))
    top_share = float(cum_share[top - 1])
    if n >= 10:
        add_guide(fig, top, f"top 20% of items: {top_share:.0%} of events", dash="dot", log_x=True)
    set_title(fig, title, f"{n:,} items with events · the top 20% get {top_share:.0%} of all events")
    fig.update_xaxes(title_text=x_title, type="log", **log_axis_ticks(1, n))
    fig.update_yaxes(title_text=y_title, type="log", **log_axis_ticks(counts[-1], counts[0]))
    return apply_theme(fig)


def plot_quality_report(report_frame: pd.DataFrame) -> go.Figure:
    """Rows dropped by each cleaning step, in the order the steps ran, so a surprising loss is obvious."""
    title, x_title, y_title = "Rows dropped by step", "rows dropped", "cleaning step"
    if report_frame is None or len(report_frame) == 0:
        return empty_figure(title, x_title, y_title, "no cleaning steps ran")
    missing = {"step", "rows_dropped"} - set(report_frame.columns)
    if missing:
        raise ValueError(f"plot_quality_report needs columns step, rows_dropped (reason optional); "
                         f"missing {sorted(missing)}")
    frame = report_frame.reset_index(drop=True)
    steps = [f"{i + 1}. {clean_text(s, 'step')}" for i, s in enumerate(frame["step"])]
    dropped = pd.to_numeric(frame["rows_dropped"], errors="coerce").fillna(0).to_numpy(dtype=float)
    reasons = [clean_text(r, "—") for r in frame["reason"]] if "reason" in frame else ["—"] * len(frame)
    if "rows_left" in frame:  # the prep report carries it: show what survives each step too
        left = pd.to_numeric(frame["rows_left"], errors="coerce")
        reasons = [f"{fmt_count(n)} rows left · {r}" if np.isfinite(n) else r for n, r in zip(left, reasons,
                                                                                                strict=True)]
    colors = [ACCENT if d > 0 else MUTED for d in dropped]
    fig = go.Figure()
    fig.add_bar(x=dropped, y=steps, orientation="h", marker_color=colors, customdata=reasons,
                text=[fmt_count(d) for d in dropped], textposition="outside", cliponaxis=False,
                hovertemplate="%{y}: %{x:,} rows dropped<br>%{customdata}<extra></extra>", name="rows dropped")
    total = float(dropped.sum())
    set_title(fig, title, "no rows were dropped" if total == 0 else f"{fmt_count(total)} rows dropped in total")
    fig.update_xaxes(title_text=x_title, rangemode="tozero", range=None if total else [0, 1])
    fig.update_yaxes(title_text=y_title, autorange="reversed", categoryorder="array", categoryarray=steps)
    return apply_theme(fig, height=max(260, 120 + 42 * len(steps)))
