"""Figures for one explained recommendation: attention maps, attributions by method and the attributed timeline
(the counterfactual top-K and the many-user figures are in :mod:`seqrec_core.viz.plot_explain_stats`).

Every figure takes the history as a frame with one row per event the model saw, oldest first — the shape of
``Attribution.to_frame()`` (``item_id``, ``title``, ``lag``; optionally ``category``, ``timestamp``,
``seconds_before``, ``attribution``). Events are named by title and lag ("3 steps back") because that is how a
reviewer reasons about a sequence; positions only appear where a person asked for them. Lag axes run oldest on
the left to latest on the right, like time. The small tables behind the figures (method table, agreement) live
here too, so the page and the figures read the same numbers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from seqrec_core.explain_methods import RANDOM, describe, method_keys
from seqrec_core.viz.theme import (
    ACCENT,
    PRIMARY,
    apply_theme,
    clean_text,
    empty_figure,
    item_label,
    set_title,
    truncate,
)

NEGATIVE = "#F28E2B"  # attributions against the target
# white -> house blue, for weights in 0..1 (attention)
WEIGHT_SCALE = [[0.0, "#FFFFFF"], [0.15, "#DCE7F2"], [0.5, "#8FB0D3"], [1.0, "#1F4E79"]]
# orange (against) -> light grey -> blue (for), centred on zero
DIVERGING = [[0.0, NEGATIVE], [0.5, "#F4F4F4"], [1.0, PRIMARY]]
ZOOM_LAST = 60  # a long history's heatmap opens on its most recent events


def method_name(method: str) -> str:
    """The registry's full name of a method (seqrec_core.explain_methods); an unknown key as it is."""
    known = describe(method)
    return known.label if known else method


def method_short(method: str) -> str:
    known = describe(method)
    return known.short if known else method


def method_color(method: str, i: int = 0) -> str:
    known = describe(method)
    return known.color if known else ("#EDC948", "#FF9DA7", "#BAB0AC")[i % 3]


def fmt_seconds(seconds: float | None) -> str:
    """'4.2 d', '3 h', '12 min': how long before the prediction an event happened."""
    if seconds is None or not np.isfinite(seconds):
        return ""
    s = abs(float(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            v = s / size
            return f"{v:.1f} {unit}" if v < 10 else f"{v:,.0f} {unit}"
    return f"{s:.0f} s"


def _check_history(history: pd.DataFrame, fn: str) -> pd.DataFrame:
    missing = {"item_id", "lag"} - set(history.columns)
    if missing:
        raise ValueError(f"{fn} needs a history frame with item_id and lag columns; missing {sorted(missing)}")
    return history.reset_index(drop=True)


def _titles(history: pd.DataFrame) -> list[str]:
    ids = [clean_text(v, "?") for v in history["item_id"]]
    raw = history["title"] if "title" in history else [None] * len(ids)
    return [item_label(t, i, 60) for t, i in zip(raw, ids, strict=True)]


def _lags(history: pd.DataFrame) -> np.ndarray:
    return pd.to_numeric(history["lag"], errors="coerce").fillna(0).to_numpy(dtype=int)


def _when(history: pd.DataFrame) -> list[str]:
    """' · 4.2 d before' per event when the log has time, else empty strings."""
    if "seconds_before" not in history:
        return [""] * len(history)
    secs = pd.to_numeric(history["seconds_before"], errors="coerce").to_numpy(dtype=float)
    return [f" · {fmt_seconds(s)} before" if np.isfinite(s) else "" for s in secs]


def _lag_axis(fig: go.Figure, lags: np.ndarray, **where: int) -> None:
    """Lag axis running like time: oldest event on the left, lag 1 (latest) on the right."""
    fig.update_xaxes(autorange="reversed", title_text="lag (events before the prediction; 1 = latest)", **where)
    if lags.size and lags.max() <= 30:
        fig.update_xaxes(dtick=1 if lags.max() <= 15 else 5, **where)


# ---------------------------------------------------------------------------------------------- attention


def _groups(lags: np.ndarray, near: int, bin_size: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Group id per position: every event within ``near`` steps stays alone, older ones share bins of
    ``bin_size`` lags. Returns the ids and (first position, last position, n) per group, oldest group first."""
    key = np.where(lags <= near, -lags, -(near + 1 + (lags - near - 1) // bin_size * bin_size))
    keys, first = np.unique(key, return_index=True)
    order = np.argsort(first)
    gid = np.empty(len(lags), dtype=int)
    spans = []
    for g, k in enumerate(keys[order]):
        rows = np.flatnonzero(key == k)
        gid[rows] = g
        spans.append((int(rows[0]), int(rows[-1]), int(rows.size)))
    return gid, spans


def plot_attention_heatmap(matrix: np.ndarray, history: pd.DataFrame, *, view: str = "mean of all layers and heads",
                           group_far: bool = False, near: int = 20, bin_size: int = 10,
                           causal: bool = True) -> go.Figure:
    """Query x key attention over the history (row = the position attending, column = the event attended to).
    For a causal model (``causal``) the mask forbids attention above the diagonal, so those cells stay blank;
    a bidirectional one (BERT4Rec) fills the whole square. Long histories open on the
    last 60 events (zoom out with a double-click) or, with ``group_far``, fold events beyond ``near`` steps
    into lag bins (columns summed, rows averaged, so each row still sums to 1)."""
    title = f"Attention over the history — {view}"
    x_title, y_title = "attended event (key), oldest → latest", "attending position (query)"
    if history is None or len(history) == 0 or matrix is None or np.size(matrix) == 0:
        return empty_figure(title, x_title, y_title, "no history to attend over")
    history = _check_history(history, "plot_attention_heatmap")
    w = np.asarray(matrix, dtype=float)
    n = len(history)
    if w.shape != (n, n):
        raise ValueError(f"attention matrix is {w.shape} but the history has {n} events")
    lags, titles = _lags(history), _titles(history)
    labels = [f"{truncate(t, 26)} · lag {lag}" for t, lag in zip(titles, lags, strict=True)]
    mask = np.triu(np.ones((n, n), dtype=bool), k=1) if causal else np.zeros((n, n), dtype=bool)
    grouped = group_far and lags.max() > near + 1
    if grouped:
        gid, spans = _groups(lags, near, max(1, bin_size))
        g = len(spans)
        onehot = np.zeros((n, g))
        onehot[np.arange(n), gid] = 1.0
        z = (onehot.T @ np.where(mask, 0.0, w) @ onehot) / onehot.sum(0)[:, None]  # (G, G): rows mean, cols sum
        first = np.array([s[0] for s in spans])
        last = np.array([s[1] for s in spans])
        z[first[None, :] > last[:, None]] = np.nan  # whole bin after the query bin: masked
        labels = [labels[a] if cnt == 1 else f"lags {lags[b]}–{lags[a]} ({cnt} events)" for a, b, cnt in spans]
    else:
        z = np.where(mask, np.nan, w)
    m = len(labels)
    # the first queries can only attend to themselves (weight 1): they would wash out the colour scale
    body = z[min(3, m - 1):]
    zmax = float(np.nanmax(body)) if np.isfinite(body).any() else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, colorscale=WEIGHT_SCALE, zmin=0.0, zmax=zmax if zmax > 0 else 1.0,
        hoverongaps=False, colorbar=dict(title=dict(text="weight"), thickness=14),
        hovertemplate="query: %{y}<br>key: %{x}<br>attention %{z:.3f}<extra></extra>"))
    subtitle = f"{n:,} events · rows sum to 1 · blank = future events (causal mask)"
    if grouped:
        subtitle += f" · beyond lag {near} grouped in bins of {bin_size}"
    elif m > ZOOM_LAST:
        fig.update_xaxes(range=[m - ZOOM_LAST - 0.5, m - 0.5])
        fig.update_yaxes(range=[m - 0.5, m - ZOOM_LAST - 0.5])
        subtitle += f" · last {ZOOM_LAST} shown, double-click for all"
    set_title(fig, title, subtitle)
    fig.update_xaxes(title_text=x_title, tickangle=-45, showgrid=False)
    fig.update_yaxes(title_text=y_title, autorange=None if (m > ZOOM_LAST and not grouped) else "reversed",
                     showgrid=False)
    rows_shown = min(m, ZOOM_LAST) if not grouped else m
    return apply_theme(fig, height=int(min(900, max(420, 230 + 13 * rows_shown))))


def plot_last_attention(weights: np.ndarray, history: pd.DataFrame, *, view: str = "mean of all layers and heads",
                        x: str = "lag") -> go.Figure:
    """What the prediction point attends to: one bar per history event. The subtitle splits the weight into
    recent / far so "does it look far back" is read off at once."""
    title = f"Attention of the prediction point — {view}"
    y_title = "attention weight (0–1)"
    x_title = "lag (events before the prediction; 1 = latest)" if x == "lag" else "position in history (event #)"
    if history is None or len(history) == 0 or weights is None or np.size(weights) == 0:
        return empty_figure(title, x_title, y_title, "no history to attend over")
    history = _check_history(history, "plot_last_attention")
    w = np.asarray(weights, dtype=float).ravel()
    if w.size != len(history):
        raise ValueError(f"{w.size} weights for {len(history)} history events")
    lags, titles, when = _lags(history), _titles(history), _when(history)
    xs = lags if x == "lag" else np.arange(1, len(w) + 1)
    custom = np.array([[t, i, f"{lag}", wh] for t, i, lag, wh in
                       zip(titles, history["item_id"].astype(str), lags, when, strict=True)], dtype=object)
    top = np.argsort(-w, kind="stable")[:3]
    colors = np.full(len(w), PRIMARY, dtype=object)
    colors[top] = ACCENT
    fig = go.Figure(go.Bar(x=xs, y=w, marker_color=list(colors), customdata=custom,
                           hovertemplate="<b>%{customdata[0]}</b><br>id %{customdata[1]} · lag %{customdata[2]}"
                                         "%{customdata[3]}<br>attention %{y:.3f}<extra></extra>"))
    total = w.sum() or 1.0
    near, far = w[lags <= 5].sum() / total, w[lags > 20].sum() / total
    set_title(fig, title, f"{near:.0%} of the weight on the last 5 events, {far:.0%} beyond 20 steps back · "
                          "red = the 3 largest")
    if x == "lag":
        _lag_axis(fig, lags)
    else:
        fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    return apply_theme(fig, height=380)


# ------------------------------------------------------------------------------------------- attributions


def attribution_table(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per history event, one attribution column and one rank column (1 = most supportive) per method,
    from each method's ``Attribution.to_frame()``; what the page shows and offers as CSV."""
    frames = {m: f for m, f in frames.items() if f is not None and len(f)}
    if not frames:
        return pd.DataFrame(columns=["position", "item_id", "title", "lag"])
    first = next(iter(frames.values())).reset_index(drop=True)
    keep = [c for c in ("position", "item_id", "title", "category", "timestamp", "lag", "seconds_before")
            if c in first]
    table = first[keep].copy()
    for method, frame in frames.items():
        if len(frame) != len(table):
            raise ValueError(f"method {method} explains {len(frame)} events, the others {len(table)}")
        values = pd.to_numeric(frame["attribution"], errors="coerce").to_numpy(dtype=float)
        table[method] = values
        table[f"{method} rank"] = pd.Series(values).rank(ascending=False, method="min").astype("Int64").to_numpy()
    return table


def _methods(table: pd.DataFrame, methods: Sequence[str] | None) -> list[str]:
    cols = [m for m in (methods or (*method_keys(), RANDOM.key)) if m in table.columns]
    return cols


def method_agreement(table: pd.DataFrame, methods: Sequence[str] | None = None, k: int = 10) -> pd.DataFrame:
    """Pairwise rank agreement of the methods over the events: Spearman rho, Kendall tau and how many of each
    method's top-k events the other also has in its top k. NaN where a method is constant (no ranking)."""
    ms = _methods(table, methods)
    rows = []
    for a_i, a in enumerate(ms):
        for b in ms[a_i + 1:]:
            x, y = table[a].to_numpy(dtype=float), table[b].to_numpy(dtype=float)
            ok = np.isfinite(x) & np.isfinite(y)
            x, y = x[ok], y[ok]
            varied = x.size >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0
            rho = float(stats.spearmanr(x, y).statistic) if varied else np.nan
            tau = float(stats.kendalltau(x, y).statistic) if varied else np.nan
            kk = min(k, x.size)
            overlap = len(set(np.argsort(-x, kind="stable")[:kk]) & set(np.argsort(-y, kind="stable")[:kk]))
            rows.append({"method_a": a, "method_b": b, "spearman": rho, "kendall": tau,
                         f"top{k}_overlap": overlap, "k": kk})
    return pd.DataFrame(rows, columns=["method_a", "method_b", "spearman", "kendall", f"top{k}_overlap", "k"])


def plot_method_comparison(table: pd.DataFrame, methods: Sequence[str] | None = None) -> go.Figure:
    """The methods side by side, one row each with its own scale (IG and occlusion speak in score units,
    attention in weights), aligned on the same events; the 3 events each method ranks highest are numbered."""
    title, x_title = "Which events drive the recommendation, by method", "lag"
    if table is None or len(table) == 0 or not _methods(table, methods):
        return empty_figure(title, x_title, "attribution", "no attributions")
    _check_history(table, "plot_method_comparison")
    ms = _methods(table, methods)
    lags, titles, when = _lags(table), _titles(table), _when(table)
    fig = make_subplots(rows=len(ms), cols=1, shared_xaxes=True, vertical_spacing=0.06 if len(ms) < 5 else 0.04)
    for r, m in enumerate(ms, start=1):
        v = table[m].to_numpy(dtype=float)
        rank = pd.Series(-v).rank(method="first").to_numpy()
        label = [f"{int(k)}" if k <= 3 else "" for k in rank]
        custom = np.array([[t, i, f"{lag}", wh, f"{int(k)}"] for t, i, lag, wh, k in
                           zip(titles, table["item_id"].astype(str), lags, when, rank, strict=True)], dtype=object)
        color = method_color(m, r)
        fig.add_bar(x=lags, y=v, row=r, col=1, name=method_name(m), showlegend=False,
                    marker_color=[color if x >= 0 else NEGATIVE for x in v], text=label, textposition="outside",
                    cliponaxis=False, customdata=custom,
                    hovertemplate=f"<b>%{{customdata[0]}}</b><br>id %{{customdata[1]}} · lag %{{customdata[2]}}"
                                  f"%{{customdata[3]}}<br>{method_name(m)} %{{y:.4f}} (rank %{{customdata[4]}})"
                                  "<extra></extra>")
        fig.update_yaxes(title_text=truncate(method_short(m), 14), row=r, col=1,
                         zeroline=True)
    for r in range(1, len(ms) + 1):
        _lag_axis(fig, lags, row=r, col=1)
        if r < len(ms):
            fig.update_xaxes(title_text=None, row=r, col=1)
    set_title(fig, title, f"{len(table):,} events · each row in its own units · numbers = each method's top 3 · "
                          "orange = against the target")
    return apply_theme(fig, height=130 + 150 * len(ms))


def plot_method_agreement(table: pd.DataFrame, methods: Sequence[str] | None = None, k: int = 10) -> go.Figure:
    """Do the methods rank the same events first? Spearman rho per pair as a matrix, written large in each cell
    (Kendall tau and the top-k overlap on hover: three numbers per cell were too small to read); the subtitle
    gives the mean so the answer is one number."""
    title = "Do the methods agree?"
    if table is None or len(table) < 2 or len(_methods(table, methods)) < 2:
        return empty_figure(title, "method", "method", "needs two methods and two events")
    ms = _methods(table, methods)
    agree = method_agreement(table, ms, k)
    n = len(ms)
    rho = np.eye(n)
    text = np.full((n, n), "—", dtype=object)
    hover = np.full((n, n), "the same method", dtype=object)
    for _, row in agree.iterrows():
        a, b = ms.index(row["method_a"]), ms.index(row["method_b"])
        rho[a, b] = rho[b, a] = row["spearman"]
        known = np.isfinite(row["spearman"])
        text[a, b] = text[b, a] = f"{row['spearman']:.2f}" if known else "n/a"
        hover[a, b] = hover[b, a] = (f"Spearman ρ {row['spearman']:.2f} · Kendall τ {row['kendall']:.2f}<br>"
                                     f"{row[f'top{k}_overlap']} of their top {row['k']} events shared" if known
                                     else "n/a (constant scores)")
    names = [method_short(m) for m in ms]
    fig = go.Figure(go.Heatmap(z=rho, x=names, y=names, zmin=-1, zmax=1, colorscale=DIVERGING, text=text,
                               texttemplate="%{text}", textfont=dict(size=14), customdata=hover,
                               colorbar=dict(title=dict(text="Spearman ρ"), thickness=14),
                               hovertemplate="%{y} vs %{x}<br>%{customdata}<extra></extra>"))
    mean = np.nanmean(agree["spearman"]) if agree["spearman"].notna().any() else np.nan
    set_title(fig, title, f"Spearman ρ over {len(table):,} events · mean {mean:.2f}" if np.isfinite(mean)
              else "rank correlation: n/a (constant scores)")
    fig.update_xaxes(title_text="method", showgrid=False)
    fig.update_yaxes(title_text="method", autorange="reversed", showgrid=False)
    return apply_theme(fig, height=180 + 80 * n)


def plot_attribution_timeline(frame: pd.DataFrame, *, method: str = "ig", target_label: str | None = None) -> go.Figure:
    """The history along time (or position without timestamps), one lane per category, each event coloured
    and sized by its attribution, so "which events, how long ago, of what kind" is one picture. The prediction
    point is the dashed line on the right."""
    title, y_title = f"History coloured by {method_name(method)}", "category"
    if frame is None or len(frame) == 0:
        return empty_figure(title, "position in history (event #)", y_title, "no history")
    frame = _check_history(frame, "plot_attribution_timeline")
    if "attribution" not in frame:
        raise ValueError("plot_attribution_timeline needs an attribution column")
    n = len(frame)
    a = pd.to_numeric(frame["attribution"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    lags, titles, when = _lags(frame), _titles(frame), _when(frame)
    cats = ([clean_text(c, "(no category)").split("|")[0] for c in frame["category"]] if "category" in frame
            else ["(no category)"] * n)
    ts = frame["timestamp"] if "timestamp" in frame else None
    has_time = ts is not None and pd.api.types.is_datetime64_any_dtype(ts) and ts.notna().all()
    if has_time:
        x = ts.dt.tz_convert("UTC").dt.tz_localize(None) if ts.dt.tz is not None else ts
        x_title = "time (UTC)"
        secs = pd.to_numeric(frame.get("seconds_before"), errors="coerce") if "seconds_before" in frame else None
        pred_x = (x.iloc[-1] + pd.Timedelta(seconds=float(secs.iloc[-1]))) if secs is not None and \
            np.isfinite(secs.iloc[-1]) else x.iloc[-1]
    else:
        x = pd.Series(pd.to_numeric(frame["position"], errors="coerce") if "position" in frame
                      else np.arange(1, n + 1))
        x_title, pred_x = "position in history (event #)", float(x.max()) + 1
    scale = float(np.abs(a).max()) or 1.0
    rank = pd.Series(-a).rank(method="first").astype(int).to_numpy()
    custom = np.array([[t, i, c, f"{lag}", wh, f"{r}"] for t, i, c, lag, wh, r in
                       zip(titles, frame["item_id"].astype(str), cats, lags, when, rank, strict=True)], dtype=object)
    fig = go.Figure(go.Scatter(
        x=list(x), y=cats, mode="markers", customdata=custom,
        marker=dict(color=a, cmin=-scale, cmax=scale, colorscale=DIVERGING, size=7 + 20 * np.abs(a) / scale,
                    line=dict(color="#5F6673", width=0.6), opacity=0.95,
                    colorbar=dict(title=dict(text="attribution"), thickness=14)),
        hovertemplate="<b>%{customdata[0]}</b><br>id %{customdata[1]} · %{customdata[2]}<br>lag %{customdata[3]} "
                      "steps%{customdata[4]}<br>attribution %{marker.color:.4f} (rank %{customdata[5]} of "
                      f"{n})<extra></extra>"))
    fig.add_vline(x=pred_x, line=dict(color=ACCENT, dash="dash", width=1.5))
    fig.add_annotation(x=pred_x, y=1.0, yref="y domain", yanchor="bottom", xanchor="right", showarrow=False,
                       text=f"prediction: {truncate(target_label or 'target', 36)}", font=dict(color=ACCENT, size=13))
    top = np.argsort(-a, kind="stable")[:3]
    subtitle = "top events: " + ", ".join(f"{truncate(titles[i], 24)} (lag {lags[i]})" for i in top)
    set_title(fig, title, subtitle)
    order = list(pd.Series(cats).value_counts().index)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, categoryorder="array", categoryarray=order[::-1], showgrid=True)
    return apply_theme(fig, height=max(320, 200 + 36 * len(order)))
