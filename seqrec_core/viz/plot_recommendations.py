"""Figures for the Recommendations and Explain pages: one user's history as a timeline, and the top-K list.

Both speak in original ids and titles. The timeline puts each category in its own lane (coloured the same) so a
history of hundreds of events still reads as "mostly X, lately Y", and the held-out event is a red star.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from seqrec_core.viz.theme import (
    ACCENT,
    PRIMARY,
    apply_theme,
    category_colors,
    clean_text,
    empty_figure,
    is_missing,
    item_label,
    set_title,
    truncate,
)

_MAX_LANES = 8  # categories beyond the most frequent ones fold into "other"
_OTHER = "other"
_UNKNOWN = "(no category)"
_WINDOW = 200  # events shown at first in long histories


def _text_column(frame: pd.DataFrame, name: str, fallback: list[str]) -> list[str]:
    if name not in frame:
        return list(fallback)
    return [clean_text(v, f) for v, f in zip(frame[name], fallback, strict=True)]


def _time_axis(frame: pd.DataFrame) -> pd.Series | None:
    """Real timestamps when every event has one; otherwise None and the timeline falls back to positions."""
    if "timestamp" not in frame or not pd.api.types.is_datetime64_any_dtype(frame["timestamp"]):
        return None
    ts = frame["timestamp"]
    if ts.isna().any():
        return None
    return ts.dt.tz_convert("UTC").dt.tz_localize(None) if ts.dt.tz is not None else ts


def _lanes(categories: list[str]) -> tuple[list[str], list[str]]:
    """Per-event lane and the lane order (most frequent first). Multi-valued categories such as MovieLens
    genres "Comedy|Drama" use their first value for the lane; the hover shows the full string."""
    primary = [c.split("|")[0].strip() or _UNKNOWN for c in categories]
    counts = pd.Series(primary).value_counts(sort=True)
    keep = list(counts.index[:_MAX_LANES]) if len(counts) > _MAX_LANES + 1 else list(counts.index)
    lane = [c if c in keep else _OTHER for c in primary]
    order = keep + ([_OTHER] if _OTHER in lane and _OTHER not in keep else [])
    return lane, order


def plot_user_timeline(timeline: pd.DataFrame, heldout_item: str | None = None) -> go.Figure:
    """One user's events along time (or position when the log has no timestamps), one lane per category.
    The held-out test event is a red star and earlier events of the same item are ringed, because repeat
    consumption is the easiest prediction a model can make and reviewers should see it."""
    title, y_title = "User history", "category"
    if timeline is None or len(timeline) == 0:
        return empty_figure(title, "position in history (event #)", y_title, "this user has no events")
    if "item_id" not in timeline:
        raise ValueError("plot_user_timeline needs an item_id column")
    frame = timeline.reset_index(drop=True)
    n = len(frame)
    ids = [clean_text(v, "?") for v in frame["item_id"]]
    titles = _text_column(frame, "title", [""] * n)
    cats = _text_column(frame, "category", [_UNKNOWN] * n)
    split = _text_column(frame, "split", ["train"] * n)
    position = (pd.to_numeric(frame["position"], errors="coerce").to_numpy(dtype=float) if "position" in frame
                else np.arange(1, n + 1, dtype=float))
    position = np.where(np.isfinite(position), position, np.arange(1, n + 1))
    times = _time_axis(frame)
    if times is not None:
        x = list(times)
        x_title = "time (UTC)"
        when = [f"{t:%Y-%m-%d %H:%M} UTC" for t in times]
    else:
        x = list(position)
        x_title = "position in history (event #)"
        when = [f"event #{p:,.0f}" for p in position]
    lag = _text_column(frame, "lag", [""] * n) if "lag" in frame else [""] * n
    lag_txt = [f" · lag {float(v):,.0f}" if not is_missing(v) and _is_number(v) else "" for v in lag]
    rows_txt = zip(titles, ids, cats, when, lag_txt, strict=True)
    custom = np.array([[item_label(t, i, 60), i, truncate(c, 40), w + lg] for t, i, c, w, lg in rows_txt],
                      dtype=object)
    hover = "<b>%{customdata[0]}</b><br>id %{customdata[1]} · %{customdata[2]}<br>%{customdata[3]}<extra></extra>"
    lane, order = _lanes(cats)
    colors = category_colors(order, other=_OTHER)
    size = 11 if n <= 60 else 8 if n <= 300 else 6
    test = np.array([s == "test" for s in split])
    if not test.any() and heldout_item is not None:
        hits = np.flatnonzero(np.array(ids) == str(heldout_item))
        if hits.size:
            test[hits[-1]] = True
    target_id = ids[int(np.flatnonzero(test)[-1])] if test.any() else clean_text(heldout_item, "") or None
    fig = go.Figure()
    lane_arr = np.array(lane, dtype=object)
    for name in order:
        rows = np.flatnonzero((lane_arr == name) & ~test)
        if rows.size == 0:
            continue
        symbols = ["diamond" if split[r] == "val" else "circle" for r in rows]
        sizes = [size + 6 if split[r] == "val" else size for r in rows]
        fig.add_scatter(x=[x[r] for r in rows], y=[name] * rows.size, mode="markers", name=name,
                        showlegend=False, marker=dict(color=colors[name], size=sizes, symbol=symbols, opacity=0.85,
                                    line=dict(color="white", width=0.5)),
                        customdata=custom[rows], hovertemplate=hover)
    earlier = np.flatnonzero((np.array(ids) == target_id) & ~test) if target_id else np.array([], dtype=int)
    if earlier.size:
        fig.add_scatter(x=[x[r] for r in earlier], y=[lane[r] for r in earlier], mode="markers",
                        name="same item earlier", marker=dict(symbol="circle-open", size=size + 9, color=ACCENT,
                                                              line=dict(width=2)),
                        customdata=custom[earlier], hovertemplate=hover)
    for r in np.flatnonzero(test):
        fig.add_scatter(x=[x[r]], y=[lane[r]], mode="markers", name="held-out (test) event",
                        marker=dict(symbol="star", size=20, color=ACCENT, line=dict(color="white", width=1)),
                        customdata=custom[[r]], hovertemplate="<b>held-out</b> " + hover)
        fig.add_annotation(x=x[r], y=lane[r], text=f"held-out: {item_label(titles[r], ids[r], 32)}",
                           showarrow=True, arrowhead=2, ax=0, ay=-28, xanchor="right",
                           font=dict(color=ACCENT, size=13), arrowcolor=ACCENT)
    if "val" in split:
        fig.add_scatter(x=[None], y=[None], mode="markers", name="validation event (◆)",
                        marker=dict(symbol="diamond", size=10, color="#8A8F98"), hoverinfo="skip")
    subtitle = f"{n:,} events · {len(order)} categor{'y' if len(order) == 1 else 'ies'}"
    if times is not None and n > 1:
        span = (max(times) - min(times)).total_seconds() / 86400
        subtitle += f" · {span:,.0f} days from first to last" if span >= 2 else f" · {span * 24:,.1f} hours"
    if n > _WINDOW:  # the model only sees the recent past; start there, the rest is one double-click away
        lo, hi = x[n - _WINDOW], x[-1]
        pad = (hi - lo) * 0.03 if times is None else (hi - lo) * 0.03 + pd.Timedelta(minutes=1)
        fig.update_xaxes(range=[lo - pad, hi + pad])
        x_title += f" · last {_WINDOW} of {n:,} events shown, double-click for all"
    if not test.any() and heldout_item is not None:
        subtitle += f" · held-out item {heldout_item} comes after this history"
    set_title(fig, title, subtitle)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, categoryorder="array", categoryarray=order[::-1], showgrid=True)
    return apply_theme(fig, height=max(320, 190 + 38 * len(order)))


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


def plot_topk_scores(recs: pd.DataFrame, heldout_item: str | None = None) -> go.Figure:
    """Top-K list as horizontal bars, rank 1 at the top, labelled by title; the held-out item, if the model
    found it, is red, so "did it get it and how high" needs no reading."""
    title, x_title, y_title = "Top recommendations", "model score (higher = ranked first)", "recommended item"
    if recs is None or len(recs) == 0:
        return empty_figure(title, x_title, y_title, "no recommendations")
    if "item_id" not in recs:
        raise ValueError("plot_topk_scores needs an item_id column")
    frame = recs.reset_index(drop=True)
    n = len(frame)
    rank = (pd.to_numeric(frame["rank"], errors="coerce").to_numpy(dtype=float) if "rank" in frame
            else np.arange(1, n + 1, dtype=float))
    rank = np.where(np.isfinite(rank), rank, np.arange(1, n + 1))
    frame = frame.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)
    rank = np.sort(rank, kind="stable")
    ids = [clean_text(v, "?") for v in frame["item_id"]]
    titles = _text_column(frame, "title", [""] * n)
    cats = _text_column(frame, "category", ["—"] * n)
    score = (pd.to_numeric(frame["score"], errors="coerce").fillna(0.0).to_numpy(dtype=float) if "score" in frame
             else np.zeros(n))
    # the rank prefix keeps labels unique: two items with the same title would otherwise share one bar
    labels = [f"{r:.0f}. {item_label(t, i, 40)}" for r, t, i in zip(rank, titles, ids, strict=True)]
    rows_txt = zip(titles, ids, cats, rank, strict=True)
    custom = np.array([[item_label(t, i, 60), i, c, f"{r:.0f}"] for t, i, c, r in rows_txt],
                      dtype=object)
    hit = np.array([heldout_item is not None and i == str(heldout_item) for i in ids])
    hover = ("<b>%{customdata[0]}</b><br>id %{customdata[1]} · %{customdata[2]}"
             "<br>rank %{customdata[3]} · score %{x:.3f}<extra></extra>")
    fig = go.Figure()
    for is_hit, name, color in ((False, "recommended", PRIMARY), (True, "held-out item (the real next event)",
                                                                    ACCENT)):
        rows = np.flatnonzero(hit == is_hit)
        if rows.size == 0:
            continue
        fig.add_bar(x=score[rows], y=[labels[r] for r in rows], orientation="h", name=name, marker_color=color,
                    customdata=custom[rows], text=[f"{score[r]:.2f}" for r in rows], textposition="outside",
                    cliponaxis=False, hovertemplate=hover)
    if heldout_item is None:
        subtitle = f"top {n} items for this user"
    elif hit.any():
        subtitle = f"the held-out item is ranked #{rank[np.flatnonzero(hit)[0]]:.0f} of these {n}"
    else:
        subtitle = f"the held-out item {heldout_item} is not in the top {n}"
    set_title(fig, title, subtitle)
    lo, hi = float(min(score.min(), 0.0)), float(max(score.max(), 0.0))
    pad = 0.15 * (hi - lo) if hi > lo else 1.0
    fig.update_xaxes(title_text=x_title, range=[lo - (pad if lo < 0 else 0), hi + pad])
    fig.update_yaxes(title_text=y_title, categoryorder="array", categoryarray=labels, autorange="reversed")
    fig.update_layout(barmode="overlay", showlegend=bool(hit.any()))
    return apply_theme(fig, height=max(300, 150 + 30 * n))

