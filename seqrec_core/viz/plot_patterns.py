"""Figures for the Patterns page: when does activity happen, how bursty is it, which items spike, and does the
model use any of it?

Every time axis is labelled in readable durations (1 min, 1 h, 1 d, 1 wk) rather than raw seconds, every
"how unusual is this" chart draws the chance level next to the measured value (a Poisson reference for gaps,
the share of events for attribution mass), and user segments have one fixed colour on every chart.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from seqrec_core.viz.theme import (
    ACCENT,
    BASELINE_GREYS,
    MUTED,
    PALETTE,
    PRIMARY,
    add_guide,
    apply_theme,
    empty_figure,
    fmt_count,
    set_title,
)

SEGMENT_ORDER = ("periodic", "bursty", "regular", "poisson-like", "too few events")
SEGMENT_COLORS = {"periodic": PALETTE[2], "bursty": PALETTE[1], "regular": PALETTE[0], "poisson-like": PALETTE[3],
                  "too few events": BASELINE_GREYS[3]}
DURATION_TICKS = ((1, "1 s"), (10, "10 s"), (60, "1 min"), (600, "10 min"), (3600, "1 h"), (6 * 3600, "6 h"),
                  (86400, "1 d"), (7 * 86400, "1 wk"), (30 * 86400, "30 d"), (365 * 86400, "1 yr"))
PERIOD_TICKS = (2, 3, 4, 6, 8, 12, 24, 48, 72, 168, 336, 720, 2160, 8760)
MAX_SCATTER_USERS = 5000  # the per-user scatter shows a fixed-seed sample beyond this (a browser stays responsive)
NEGATIVE = "#F28E2B"


def fmt_duration(seconds: float) -> str:
    """'45 s', '12 min', '3.5 h', '2.1 d', '3 wk': the unit a person would say."""
    if seconds is None or not np.isfinite(seconds):
        return "n/a"
    s = float(seconds)
    for unit, size in (("wk", 7 * 86400), ("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size * (2 if unit == "wk" else 1):
            v = s / size
            return f"{v:.0f} {unit}" if v >= 10 or v == round(v) else f"{v:.1f} {unit}"
    return f"{s:.0f} s"


def fmt_hours(hours: float) -> str:
    """A period in the unit people use: '24 h', '168 h (1 wk)', '60 h (2.5 d)', '19181 h (2.2 yr)'."""
    if hours is None or not np.isfinite(hours):
        return "none"
    h = float(hours)
    text = f"{h:.1f} h" if h < 10 else f"{h:.0f} h"
    weeks = h / 168
    if h >= 8760:
        text += f" ({h / 8766:.1f} yr)"
    elif 0.97 <= weeks <= 8.5 and abs(weeks - round(weeks)) < 0.03 * weeks:
        text += f" ({round(weeks)} wk)"
    elif h >= 48:
        text += f" ({h / 24:.1f} d)"
    return text


def column_values(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)


def _duration_axis(lo: float, hi: float) -> dict:
    ticks = [(v, t) for v, t in DURATION_TICKS if lo <= v <= hi] or [(lo, fmt_duration(lo)), (hi, fmt_duration(hi))]
    return dict(type="log", tickvals=[v for v, _ in ticks], ticktext=[t for _, t in ticks])


# ------------------------------------------------------------------------------------------- rhythm
def plot_periodogram(periods: pd.DataFrame, curve: pd.DataFrame | None = None) -> go.Figure:
    """Power per candidate period (log axis), with the reported periods marked: red = significant (false-alarm
    probability below the test's level), grey = the strongest peaks that noise could also produce."""
    title, x_title, y_title = "Which periods repeat in the activity", "period (hours, log scale)", \
        "strength (share of variance)"
    has_curve = curve is not None and len(curve) > 0
    if (periods is None or len(periods) == 0) and not has_curve:
        return empty_figure(title, x_title, y_title, "no period could be tested (too few events or too short a span)")
    fig = go.Figure()
    if has_curve:
        power_col = "power" if "power" in curve else "strength"
        fig.add_scatter(x=column_values(curve, "period_hours"), y=column_values(curve, power_col), mode="lines",
                        line=dict(color=PRIMARY, width=1.5), name="periodogram",
                        hovertemplate="period %{x:.1f} h<br>power %{y:.3f}<extra></extra>")
    found = periods if periods is not None else pd.DataFrame(columns=["period_hours", "strength", "significant"])
    hours, strength = column_values(found, "period_hours"), column_values(found, "strength")
    sig = found["significant"].astype(bool).to_numpy() if "significant" in found else np.zeros(len(found), bool)
    fap = column_values(found, "false_alarm")
    for flag, name, color in ((True, "significant period", ACCENT), (False, "not significant", BASELINE_GREYS[0])):
        m = sig == flag
        if not m.any():
            continue
        fig.add_scatter(x=hours[m], y=strength[m], mode="markers+text" if has_curve else "markers+text",
                        marker=dict(color=color, size=12, symbol="diamond"), name=name,
                        text=[fmt_hours(h) for h in hours[m]], textposition="top center", cliponaxis=False,
                        customdata=np.column_stack([[fmt_hours(h) for h in hours[m]], fap[m]]),
                        hovertemplate="<b>%{customdata[0]}</b><br>strength %{y:.3~%} of the variance"
                                      "<br>false-alarm probability %{customdata[1]:.2g}<extra></extra>")
        if not has_curve:  # stems down to zero so single markers read as a spectrum
            for h, s in zip(hours[m], strength[m], strict=True):
                fig.add_shape(type="line", x0=h, x1=h, y0=0, y1=s, line=dict(color=color, width=2))
    top = [fmt_hours(h) for h, s in zip(hours, sig, strict=True) if s]
    set_title(fig, title, "significant: " + ", ".join(top) if top else "no significant period (activity is "
              "not rhythmic at the tested scales)")
    all_h = np.concatenate([hours, column_values(curve, "period_hours") if has_curve else []])
    all_h = all_h[np.isfinite(all_h) & (all_h > 0)]
    lo, hi = (float(all_h.min()) / 1.3, float(all_h.max()) * 1.3) if all_h.size else (1.0, 1000.0)
    ticks = [t for t in PERIOD_TICKS if lo <= t <= hi]
    fig.update_xaxes(title_text=x_title, type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks],
                     range=[np.log10(lo), np.log10(hi)])
    top_y = np.nanmax(np.concatenate([strength, column_values(curve, "power" if has_curve and "power" in curve
                                                           else "strength") if has_curve else []]))
    top = top_y if np.isfinite(top_y) and top_y > 0 else 1.0
    # Head room for the labels, but a share of variance never reads above 100% on the axis.
    fig.update_yaxes(title_text=y_title, range=[0, min(top * 1.25, 1.1)], tickformat=".2~%",
                     tickvals=None if top * 1.25 <= 1.0 else [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    return apply_theme(fig)


def plot_hour_weekday(table: pd.DataFrame, tz: str = "UTC") -> go.Figure:
    """Events per hour of day x weekday in the chosen timezone: bright cells are when people are active."""
    title, x_title, y_title = "When in the week people are active", f"hour of day ({tz})", "weekday"
    if table is None or table.size == 0 or not np.nansum(table.to_numpy(dtype=float)):
        return empty_figure(title, x_title, y_title, "no timestamped events")
    z = table.to_numpy(dtype=float)
    days = [str(d) for d in table.index]
    hours = [int(h) for h in table.columns]
    share = z / z.sum()
    text = np.vectorize(lambda v: f"{v:.1%}")(share)
    fig = go.Figure(go.Heatmap(z=z, x=hours, y=days, colorscale="Blues", customdata=text,
                               colorbar=dict(title=dict(text="events"), thickness=14),
                               hovertemplate="%{y} %{x}:00–%{x}:59<br>%{z:,.0f} events (%{customdata} of all)"
                                             "<extra></extra>"))
    d, h = np.unravel_index(np.argmax(z), z.shape)
    by_day = z.sum(axis=1)
    set_title(fig, title, f"busiest hour: {days[d]} {hours[h]}:00 · busiest day: {days[int(np.argmax(by_day))]} "
                          f"({by_day.max() / by_day.mean():.2f}× the average day)")
    fig.update_xaxes(title_text=x_title, dtick=2, showgrid=False)
    fig.update_yaxes(title_text=y_title, autorange="reversed", showgrid=False)
    return apply_theme(fig, height=380)


def plot_daily_activity(daily: pd.DataFrame, tz: str = "UTC") -> go.Figure:
    """Events per calendar day with a rolling average (7 days; 30 or 91 over years): the weekly wiggle, trends,
    outages and one-off spikes."""
    title, x_title, y_title = "Activity per day", f"date ({tz})", "events per day"
    if daily is None or len(daily) == 0:
        return empty_figure(title, x_title, y_title, "no timestamped events")
    frame = daily.copy()
    frame["date"] = pd.to_datetime(frame["date"])
    frame = frame.sort_values("date").set_index("date")
    full = pd.date_range(frame.index[0], frame.index[-1], freq="D")
    events = frame["events"].reindex(full, fill_value=0).astype(float)
    users = frame["users"].reindex(full, fill_value=0).astype(float) if "users" in frame else events * np.nan
    window = 7 if len(full) <= 400 else 30 if len(full) <= 1500 else 91  # the trend, not the weekday wiggle
    hover = "%{x|%a %Y-%m-%d}: %{y:,} events by %{customdata:,} users<extra></extra>"
    fig = go.Figure()
    if len(full) <= 400:  # a season reads best as bars
        fig.add_bar(x=full, y=events.to_numpy(), marker_color=MUTED, name="events per day",
                    customdata=users.to_numpy(), hovertemplate=hover)
    else:  # years: thousands of bars would vanish; a thin daily line under the average
        fig.add_scatter(x=full, y=events.to_numpy(), mode="lines", line=dict(color=MUTED, width=1),
                        name="events per day", customdata=users.to_numpy(), hovertemplate=hover)
    smooth = events.rolling(window, min_periods=1, center=True).mean()
    fig.add_scatter(x=full, y=smooth.to_numpy(), mode="lines", line=dict(color=PRIMARY, width=2.5),
                    name=f"{window}-day average",
                    hovertemplate=f"%{{x|%Y-%m-%d}}: %{{y:,.0f}} events/day ({window}-day average)<extra></extra>")
    busiest = events.idxmax()
    set_title(fig, title, f"{fmt_count(events.sum())} events over {len(full):,} days · busiest "
                          f"{busiest:%a %Y-%m-%d} ({fmt_count(events.max())})")
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    fig.update_layout(bargap=0.05)
    return apply_theme(fig)


# --------------------------------------------------------------------------------------- burstiness
def _log_bins(hist: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    left, right, count = (column_values(hist, "bin_left_s"), column_values(hist, "bin_right_s"),
                          column_values(hist, "count"))
    ok = np.isfinite(left) & np.isfinite(right) & (right > left) & (left > 0) & np.isfinite(count)
    return left[ok], right[ok], count[ok]


def plot_iet_histogram(hist: pd.DataFrame, burstiness: float | None = None,
                       memory: float | None = None) -> go.Figure:
    """Log-binned distribution of the gaps between a user's consecutive events (density on log-log axes), next
    to what a Poisson process with the same mean gap would give. A heavy right tail far above the dashed curve
    = bursts separated by long silences."""
    title, x_title, y_title = "Time between a user's consecutive events", "gap (log scale)", \
        "probability density (per second, log scale)"
    if hist is None or len(hist) == 0:
        return empty_figure(title, x_title, y_title, "no user has two timestamped events")
    left, right, count = _log_bins(hist)
    if count.sum() <= 0:
        return empty_figure(title, x_title, y_title, "all gaps are zero (events share a timestamp)")
    centre = np.sqrt(left * right)
    density = count / (count.sum() * (right - left))
    fig = go.Figure()
    m = count > 0
    fig.add_scatter(x=centre[m], y=density[m], mode="lines+markers", line=dict(color=PRIMARY, width=2.5),
                    marker=dict(size=6), name="observed gaps",
                    customdata=np.column_stack([[fmt_duration(a) for a in left[m]], [fmt_duration(b) for b in
                                                                                      right[m]], count[m]]),
                    hovertemplate="%{customdata[0]} – %{customdata[1]}: %{customdata[2]:,.0f} gaps<extra></extra>")
    mean_gap = float((count * centre).sum() / count.sum())
    grid = np.logspace(np.log10(left.min()), np.log10(right.max()), 200)
    poisson = np.exp(-grid / mean_gap) / mean_gap
    keep = poisson > density[m].min() / 100
    fig.add_scatter(x=grid[keep], y=poisson[keep], mode="lines", line=dict(color=BASELINE_GREYS[0], dash="dash"),
                    name=f"Poisson, same mean gap ({fmt_duration(mean_gap)})", hoverinfo="skip")
    parts = [f"{fmt_count(count.sum())} gaps"]
    if burstiness is not None and np.isfinite(burstiness):
        parts.append(f"burstiness B = {burstiness:+.2f}")
    if memory is not None and np.isfinite(memory):
        parts.append(f"memory M = {memory:+.2f}")
    set_title(fig, title, " · ".join(parts))
    fig.update_xaxes(title_text=x_title, **_duration_axis(left.min(), right.max()))
    fig.update_yaxes(title_text=y_title, type="log", exponentformat="power")
    return apply_theme(fig, legend_inside=False)


def plot_user_burstiness(per_user: pd.DataFrame, max_points: int = MAX_SCATTER_USERS) -> go.Figure:
    """One dot per user: burstiness B (x; -1 clockwork, 0 Poisson, +1 extreme bursts) against memory M (y; > 0
    = long gaps follow long gaps), coloured by segment."""
    title, x_title, y_title = "Burstiness and memory per user", "burstiness B (−1 regular · 0 random · +1 bursty)", \
        "memory M (gap-to-gap correlation)"
    if per_user is None or len(per_user) == 0:
        return empty_figure(title, x_title, y_title, "no users")
    frame = per_user.copy()
    frame["B"], frame["M"] = column_values(frame, "burstiness"), column_values(frame, "memory")
    frame = frame[np.isfinite(frame["B"]) & np.isfinite(frame["M"])]
    if frame.empty:
        return empty_figure(title, x_title, y_title, "no user has enough events for B and M")
    n_all = len(frame)
    if n_all > max_points:
        frame = frame.sample(max_points, random_state=0)
    seg = frame["segment"].astype(str) if "segment" in frame else pd.Series("users", index=frame.index)
    period = column_values(frame, "dominant_period_hours")
    frame["period_text"] = [fmt_hours(p) for p in period]
    fig = go.Figure()
    for name in [s for s in SEGMENT_ORDER if s in set(seg)] + sorted(set(seg) - set(SEGMENT_ORDER)):
        part = frame[seg == name]
        fig.add_scattergl(x=part["B"], y=part["M"], mode="markers", name=f"{name} ({len(part):,})",
                          marker=dict(color=SEGMENT_COLORS.get(name, PRIMARY), size=6, opacity=0.7),
                          customdata=np.column_stack([part["user"].astype(str), column_values(part, "events"),
                                                      part["period_text"]]),
                          hovertemplate="<b>user %{customdata[0]}</b> · %{customdata[1]:,.0f} events<br>"
                                        "B %{x:+.2f} · M %{y:+.2f}<br>dominant period %{customdata[2]}"
                                        f"<extra>{name}</extra>")
    add_guide(fig, 0.0, "Poisson (B = 0)", color="#5F6673", dash="dot", width=1)
    sub = f"{n_all:,} users with enough events" + (f" · {max_points:,} shown (random sample)"
                                                    if n_all > max_points else "")
    set_title(fig, title, sub)
    fig.update_xaxes(title_text=x_title, range=[-1.05, 1.05], zeroline=False)
    fig.update_yaxes(title_text=y_title, range=[-1.05, 1.05])
    return apply_theme(fig, height=480)


def plot_segments(segments: pd.DataFrame) -> go.Figure:
    """How many users fall in each temporal segment (the page's table says how each is defined)."""
    title, x_title, y_title = "Users per temporal segment", "users", "segment"
    if segments is None or len(segments) == 0:
        return empty_figure(title, x_title, y_title, "no users")
    frame = segments.copy()
    frame["segment"] = frame["segment"].astype(str)
    order = [s for s in SEGMENT_ORDER if s in set(frame["segment"])] + sorted(set(frame["segment"]) -
                                                                             set(SEGMENT_ORDER))
    frame = frame.set_index("segment").reindex(order).reset_index()
    users = column_values(frame, "users")
    share = users / max(np.nansum(users), 1)
    fig = go.Figure(go.Bar(x=users, y=frame["segment"], orientation="h",
                           marker_color=[SEGMENT_COLORS.get(s, PRIMARY) for s in frame["segment"]],
                           text=[f" {u:,.0f} · {s:.0%}" for u, s in zip(users, share, strict=True)],
                           textposition="outside", cliponaxis=False,
                           hovertemplate="<b>%{y}</b>: %{x:,} users<extra></extra>"))
    set_title(fig, title, f"{fmt_count(np.nansum(users))} users")
    fig.update_xaxes(title_text=x_title, range=[0, np.nanmax(users) * 1.6 if np.nanmax(users) > 0 else 1])
    fig.update_yaxes(title_text=y_title, categoryorder="array", categoryarray=order, autorange="reversed")
    return apply_theme(fig, height=max(260, 120 + 40 * len(order)))


# ------------------------------------------------------------------------------------------- bursts
def plot_burst_timeline(timeline: pd.DataFrame, bursts: pd.DataFrame | None, *, what: str,
                        bin_hours: float = 6.0) -> go.Figure:
    """Events per time bin of one item (or one user), with its detected bursts shaded (darker = higher level).
    For items the hover also gives the share of all activity in the bin: a burst is a jump in that share, not
    just a busy hour."""
    title = f"Activity of {what} over time"
    x_title, y_title = "time (UTC)", f"events per {fmt_duration(bin_hours * 3600)}"
    if timeline is None or len(timeline) == 0:
        return empty_figure(title, x_title, y_title, "no timestamped events")
    x = pd.to_datetime(timeline["start"], utc=True)
    y = column_values(timeline, "events")
    total = column_values(timeline, "total")
    share = np.where(total > 0, y / np.where(total > 0, total, 1), np.nan)
    fig = go.Figure()
    fig.add_bar(x=x, y=y, marker_color=PRIMARY, name="events", customdata=share,
                hovertemplate="%{x|%a %Y-%m-%d %H:%M}: %{y:,} events"
                              + ("<br>%{customdata:.1%} of all activity" if np.isfinite(share).any() else "")
                              + "<extra></extra>")
    if bursts is not None and len(bursts):  # only what overlaps the drawn span, clipped to it
        lo, hi = x.min(), x.max() + pd.Timedelta(hours=bin_hours)
        b_start, b_end = pd.to_datetime(bursts["start"], utc=True), pd.to_datetime(bursts["end"], utc=True)
        keep = ((b_end >= lo) & (b_start <= hi)).to_numpy()
        bursts = bursts.loc[keep].assign(start=b_start[keep].clip(lower=lo), end=b_end[keep].clip(upper=hi))
    n = 0 if bursts is None else len(bursts)
    if n:
        level = column_values(bursts, "level")
        top = max(np.nanmax(level), 1) if np.isfinite(level).any() else 1
        for (_, row), lv in zip(bursts.iterrows(), level, strict=True):
            start, end = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
            alpha = 0.15 + 0.25 * (lv / top if np.isfinite(lv) else 1)
            fig.add_vrect(x0=start, x1=end, fillcolor=ACCENT, opacity=alpha, line_width=0, layer="below")
        # an invisible trace gives the shading a legend entry and a hover
        mid = [pd.Timestamp(s) + (pd.Timestamp(e) - pd.Timestamp(s)) / 2 for s, e in zip(bursts["start"],
                                                                                          bursts["end"], strict=True)]
        info = [f"burst level {lv:.0f}: {pd.Timestamp(s):%a %m-%d %H:%M} – {pd.Timestamp(e):%a %m-%d %H:%M} "
                f"({fmt_duration((pd.Timestamp(e) - pd.Timestamp(s)).total_seconds())})"
                for lv, s, e in zip(level, bursts["start"], bursts["end"], strict=True)]
        fig.add_scatter(x=mid, y=[0] * n, mode="markers", marker=dict(color=ACCENT, size=10, symbol="triangle-up"),
                        name="detected burst (shaded)", text=info, hovertemplate="%{text}<extra></extra>")
    set_title(fig, title, f"{fmt_count(np.nansum(y))} events · {n} burst{'s' if n != 1 else ''} in view")
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    if np.nanmax(y, initial=0) <= 6:  # small counts: whole-number ticks only
        fig.update_yaxes(dtick=1)
    fig.update_layout(bargap=0.0, showlegend=n > 0)
    return apply_theme(fig, height=380)


def plot_reconsumption_intervals(intervals: pd.DataFrame, repeat_share: float | None = None) -> go.Figure:
    """How long people wait before consuming the same item again (log-binned): a peak at 1 d or 1 wk is a
    habit, mass under 1 h is re-clicking within a session."""
    title, x_title, y_title = "Time until the same user repeats an item", "interval (log scale)", "repeats"
    if intervals is None or len(intervals) == 0:
        return empty_figure(title, x_title, y_title, "no user consumed an item twice")
    left, right, count = _log_bins(intervals)
    if count.sum() <= 0:
        return empty_figure(title, x_title, y_title, "no user consumed an item twice")
    centre = np.sqrt(left * right)
    fig = go.Figure(go.Bar(x=centre, y=count, width=(right - left) * 0.9, marker_color=PRIMARY, name="repeats",
                           customdata=np.column_stack([[fmt_duration(a) for a in left],
                                                       [fmt_duration(b) for b in right]]),
                           hovertemplate="%{customdata[0]} – %{customdata[1]}: %{y:,} repeats<extra></extra>"))
    med = float(np.interp(count.sum() / 2, np.cumsum(count), centre))
    add_guide(fig, med, f"median ≈ {fmt_duration(med)}", log_x=True, width=2)
    parts = [f"{fmt_count(count.sum())} repeats"]
    if repeat_share is not None and np.isfinite(repeat_share):
        parts.insert(0, f"{repeat_share:.1%} of events repeat an item the user had before")
    set_title(fig, title, " · ".join(parts))
    fig.update_xaxes(title_text=x_title, **_duration_axis(left.min(), right.max()))
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    return apply_theme(fig)
