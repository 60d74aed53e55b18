"""Figures for explanations over many users: how far back the model looks (attribution mass by lag and by
time gap, mean attention distance per head, the history-truncation ablation), whether the explanations can be
trusted (deletion / insertion curves with AOPC), on the demo whether they recover the planted triggers, and the
counterfactual editor's before/after top-K.

Inputs are the frames of ``seqrec_core.explain.longrange`` / ``faithfulness`` / ``planted``. Methods keep the
colours of :mod:`seqrec_core.viz.plot_explain`; the random-order reference is a grey dashed line.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from seqrec_core.viz.plot_explain import NEGATIVE, method_color, method_name, method_short
from seqrec_core.viz.theme import (
    ACCENT,
    BASELINE_GREYS,
    PRIMARY,
    apply_theme,
    empty_figure,
    fmt_metric,
    item_label,
    label_above,
    set_title,
)

LAG_BUCKET_ORDER = ("1", "2-5", "6-20", "21-50", ">50")


def _share_column(frame: pd.DataFrame) -> str:
    for c in ("share_of_abs_attribution", "share"):
        if c in frame:
            return c
    raise ValueError("attribution mass frames need a share_of_abs_attribution (or share) column")


def plot_attribution_mass(frame: pd.DataFrame, *, by: str = "lag", share_top_ge20: float | None = None,
                          users: int | None = None, method: str = "ig") -> go.Figure:
    """Share of |attribution| per lag bucket (or time-gap bucket), next to the share of events in the bucket:
    a bar above its diamond means those events count more than their number alone would give them."""
    title = "Attribution by lag" if by == "lag" else "Attribution by time before the prediction"
    x_title = "lag bucket (events before the prediction)" if by == "lag" else "time gap before the prediction"
    y_title = "share of |attribution| (%)"
    if frame is None or len(frame) == 0:
        reason = "the log has no timestamps" if by != "lag" else "no explained predictions"
        return empty_figure(title, x_title, y_title, reason)
    col = _share_column(frame)
    share = pd.to_numeric(frame[col], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    buckets = frame["bucket"].astype(str).tolist()
    events = (pd.to_numeric(frame["events"], errors="coerce").fillna(0).to_numpy(dtype=float) if "events" in frame
              else np.zeros(len(share)))
    ev_share = events / events.sum() if events.sum() > 0 else np.full(len(share), np.nan)
    custom = np.column_stack([[f"{e:,.0f}" for e in events], [f"{s:.1%}" for s in ev_share]])
    fig = go.Figure()
    fig.add_bar(x=buckets, y=100 * share, name=f"{method_name(method)} mass", marker_color=method_color(method),
                customdata=custom,
                hovertemplate="<b>%{x}</b><br>%{y:.1f}% of |attribution|<br>%{customdata[0]} events "
                              "(%{customdata[1]} of all)<extra></extra>")
    if np.isfinite(ev_share).any():
        fig.add_scatter(x=buckets, y=100 * ev_share, mode="markers", name="share of events (equal weight)",
                        marker=dict(symbol="diamond", size=11, color=BASELINE_GREYS[2]),
                        hovertemplate="<b>%{x}</b><br>%{y:.1f}% of the events<extra></extra>")
    top = label_above(fig, buckets, 100 * share, 100 * ev_share, [f"{s:.0%}" for s in share])
    parts = []
    if share_top_ge20 is not None and np.isfinite(share_top_ge20):
        parts.append(f"top event ≥ 20 back: {share_top_ge20:.0%}")
    if users:
        parts.append(f"{users:,} users")
    set_title(fig, title, " · ".join(parts) or None)
    fig.update_xaxes(title_text=x_title, type="category")
    fig.update_yaxes(title_text=y_title, rangemode="tozero", range=[0, max(top, 5.0)])
    return apply_theme(fig, height=400)


def plot_attention_distance(frame: pd.DataFrame) -> go.Figure:
    """Mean attention distance per layer and head: how many events back each head looks on average. Heads
    with large values are the ones that can carry long-range dependencies."""
    title, x_title, y_title = "How far each attention head looks", "head", "layer"
    if frame is None or len(frame) == 0:
        return empty_figure(title, x_title, y_title, "no attention maps")
    table = frame.pivot_table(index="layer", columns="head", values="mean_distance", aggfunc="mean").sort_index()
    z = table.to_numpy(dtype=float)
    heads = [f"head {int(h) + 1}" for h in table.columns]
    layers = [f"layer {int(ly) + 1}" for ly in table.index]
    fig = go.Figure(go.Heatmap(z=z, x=heads, y=layers, colorscale="Blues", zmin=0, zmax=max(float(np.nanmax(z)), 1e-9),
                               text=np.vectorize(lambda v: f"{v:.1f}")(z), texttemplate="%{text}",
                               colorbar=dict(title=dict(text="events back"), thickness=14),
                               hovertemplate="%{y}, %{x}<br>looks %{z:.1f} events back on average<extra></extra>"))
    i = np.unravel_index(np.nanargmax(z), z.shape)
    set_title(fig, title, f"mean |query − key| under each head's attention · farthest: {layers[i[0]]}, "
                          f"{heads[i[1]]} ({z[i]:.1f} events)")
    fig.update_xaxes(title_text=x_title, showgrid=False)
    fig.update_yaxes(title_text=y_title, autorange="reversed", showgrid=False)
    return apply_theme(fig, height=max(280, 190 + 60 * len(layers)))


def _k_positions(ks: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Numeric x for each k on a log axis; "all" goes one step beyond the largest k."""
    numeric = pd.to_numeric(ks, errors="coerce").to_numpy(dtype=float)
    top = np.nanmax(numeric) if np.isfinite(numeric).any() else 1.0
    x = np.where(np.isfinite(numeric), numeric, top * 2.5)
    labels = [f"{v:,.0f}" if np.isfinite(v) else "all" for v in numeric]
    return x, labels


def plot_truncation_ablation(frame: pd.DataFrame, metric: str = "NDCG@10") -> go.Figure:
    """Test metric when the model may only see its last k events: the rise from k = 1 to "all" is what the
    older context is worth. A flat curve after small k means the model is effectively short-sighted."""
    title = "What longer context is worth"
    x_title, y_title = "events the model may see (last k, log scale)", f"{metric} on test users (0–1)"
    if frame is None or len(frame) == 0 or metric not in frame:
        return empty_figure(title, x_title, y_title, "no ablation results")
    x, labels = _k_positions(frame["k"])
    y = pd.to_numeric(frame[metric], errors="coerce").to_numpy(dtype=float)
    order = np.argsort(x, kind="stable")
    x, y, labels = x[order], y[order], [labels[i] for i in order]
    users = frame["users"].to_numpy()[order] if "users" in frame else np.full(len(x), "")
    custom = np.column_stack([labels, [f"{u:,}" if isinstance(u, (int, np.integer)) else str(u) for u in users]])
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers+text", line=dict(color=PRIMARY, width=2.5),
                               marker=dict(size=9, color=PRIMARY), text=[fmt_metric(v) for v in y],
                               textposition="top center", cliponaxis=False, customdata=custom,
                               hovertemplate=f"last %{{customdata[0]}} events<br>{metric} %{{y:.4f}}"
                                             "<br>%{customdata[1]} users<extra></extra>"))
    if "all" in labels:
        full = y[labels.index("all")]
        fig.add_hline(y=full, line=dict(color=ACCENT, dash="dot", width=1.2))
        at10 = y[labels.index("10")] if "10" in labels else y[0]
        ref = "10" if "10" in labels else labels[0]
        subtitle = f"all events {fmt_metric(full)} vs last {ref} {fmt_metric(at10)}"
        if np.isfinite(at10) and at10 > 0:
            subtitle += f" ({(full - at10) / at10:+.0%})"
    else:
        subtitle = None
    set_title(fig, title, subtitle)
    fig.update_xaxes(title_text=x_title, type="log", tickvals=list(x), ticktext=labels)
    fig.update_yaxes(title_text=y_title, rangemode="tozero", range=[0, max(np.nanmax(y), 0.01) * 1.2])
    return apply_theme(fig, height=400)


def plot_faithfulness(curves: pd.DataFrame, aopc: pd.DataFrame | None = None, kind: str = "deletion", *,
                      value: str = "score") -> go.Figure:
    """Deletion (remove the top-k events by each method) or insertion (add them to an empty history) curves of
    the target's score. A faithful method makes the score fall fastest on deletion and rise fastest on
    insertion; random order is the reference. AOPC (area over the curve) is in the legend."""
    verb = "removed" if kind == "deletion" else "added"
    title = f"{kind.capitalize()} curves: do the top events matter?"
    use_prob = value == "prob" and curves is not None and "prob" in curves
    column, area = ("prob", "aopc_prob") if use_prob else ("score", "aopc")
    y_title = "target probability (softmax, mean over users)" if use_prob else "target score (logit, mean over users)"
    x_title = f"top events {verb} (k)"
    if curves is None or len(curves) == 0:
        return empty_figure(title, x_title, y_title, "no faithfulness results")
    part = curves[curves["kind"] == kind] if "kind" in curves else curves
    if part.empty:
        return empty_figure(title, x_title, y_title, f"no {kind} curve")
    scores = {}
    if aopc is not None and len(aopc):
        for _, row in aopc[aopc["kind"] == kind].iterrows() if "kind" in aopc else aopc.iterrows():
            if area in row:
                scores[str(row["method"])] = float(row[area])
    fig = go.Figure()
    for i, (method, group) in enumerate(part.groupby("method", sort=False)):
        group = group.sort_values("k")
        a = scores.get(str(method))
        label = method_name(str(method)) + (f" · AOPC {a:.3f}" if a is not None and np.isfinite(a) else "")
        is_random = str(method) == "random"
        fig.add_scatter(x=group["k"], y=group[column], mode="lines+markers", name=label,
                        line=dict(color=method_color(str(method), i), width=2 if is_random else 2.5,
                                  dash="dash" if is_random else "solid"), marker=dict(size=6),
                        hovertemplate=f"<b>{method_name(str(method))}</b><br>k %{{x}} events {verb}"
                                      f"<br>{column} %{{y:.3f}}<extra></extra>")
    ranked = {m: v for m, v in scores.items() if m != "random" and np.isfinite(v)}
    best = max(ranked, key=ranked.get) if ranked else None
    # Short enough for a half-width chart: the full wording is in the page's caption
    subtitle = ("steeper fall = more faithful" if kind == "deletion" else "steeper rise = more faithful")
    if best:
        subtitle += f" · best AOPC: {method_short(best)} {scores[best]:.2f}"
        if "random" in scores:
            subtitle += f" (random {scores['random']:.2f})"
    set_title(fig, title, subtitle)
    fig.update_xaxes(title_text=x_title, dtick=1 if part["k"].max() <= 12 else None)
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(showlegend=True)
    return apply_theme(fig, height=420)


def plot_planted_check(cases: pd.DataFrame, top_attr: int = 3, bar: float = 0.8) -> go.Figure:
    """On the demo log: where does the planted trigger rank among the history's events by attribution? Bars
    at ranks 1..top_attr are hits; the subtitle gives the hit share against the 80% bar."""
    title, x_title, y_title = "Does the explanation find the planted trigger?", "trigger's rank by attribution", \
        "cases"
    if cases is None or len(cases) == 0:
        return empty_figure(title, x_title, y_title, "no planted response ranked in the top K")
    ranks = pd.to_numeric(cases["trigger_attr_rank"], errors="coerce").fillna(np.inf).to_numpy(dtype=float)
    cap = 10
    labels = [str(r) for r in range(1, cap + 1)] + [f">{cap}"]
    counts = [int((ranks == r).sum()) for r in range(1, cap + 1)] + [int((ranks > cap).sum())]
    colors = [PRIMARY if i < top_attr else BASELINE_GREYS[1] for i in range(len(labels))]
    fig = go.Figure(go.Bar(x=labels, y=counts, marker_color=colors, text=counts, textposition="outside",
                           cliponaxis=False, hovertemplate="rank %{x}: %{y} cases<extra></extra>"))
    hits = cases["hit"].astype(bool).mean() if "hit" in cases else float((ranks <= top_attr).mean())
    verdict = "meets" if hits >= bar else "misses"
    set_title(fig, title, f"trigger in the top {top_attr} in {hits:.0%} of {len(cases):,} cases "
                          f"({verdict} the {bar:.0%} bar) · blue = hit")
    fig.update_xaxes(title_text=x_title, type="category")
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    return apply_theme(fig, height=360)


# ------------------------------------------------------------------------------------------ counterfactual


def counterfactual_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Every item in either top-K with its rank and score before and after the edit (NaN = not in that top-K)
    and the change (positive = moved up)."""
    cols = ["item_id", "title", "rank_before", "rank_after", "change", "score_before", "score_after"]
    if (before is None or len(before) == 0) and (after is None or len(after) == 0):
        return pd.DataFrame(columns=cols)
    empty = pd.DataFrame(columns=["rank", "item_id", "title", "score"])
    b = (before if before is not None and len(before) else empty)[["item_id", "title", "rank", "score"]]
    a = (after if after is not None and len(after) else empty)[["item_id", "title", "rank", "score"]]
    merged = b.merge(a, on="item_id", how="outer", suffixes=("_before", "_after"), sort=False)
    merged["title"] = merged["title_before"].where(merged["title_before"].notna(), merged["title_after"])
    for c in ("rank_before", "rank_after", "score_before", "score_after"):
        merged[c] = pd.to_numeric(merged[c], errors="coerce").astype(float)
    merged["change"] = merged["rank_before"] - merged["rank_after"]
    key = merged["rank_after"].fillna(1e6) * 1e7 + merged["rank_before"].fillna(1e6)  # after-order, then leavers
    return merged.assign(_k=key).sort_values("_k", kind="stable")[cols].reset_index(drop=True)


def plot_counterfactual(before: pd.DataFrame, after: pd.DataFrame, *, target_item: str | None = None,
                        target_rank_before: int | None = None, target_rank_after: int | None = None) -> go.Figure:
    """Top-K before and after the edit as a slope chart: one line per item from its old rank to its new one;
    items that leave or enter the list drop to the "not in top K" row. The target is red."""
    title, x_title, y_title = "How the edit changes the top-K", "history", "rank (1 = first)"
    changes = counterfactual_changes(before, after)
    if changes.empty:
        return empty_figure(title, x_title, y_title, "no recommendations")
    k = int(np.nanmax(changes[["rank_before", "rank_after"]].to_numpy(dtype=float)))
    out = k + 1.5
    fig = go.Figure()
    for _, row in changes.iterrows():
        y0 = row["rank_before"] if np.isfinite(row["rank_before"]) else out
        y1 = row["rank_after"] if np.isfinite(row["rank_after"]) else out
        is_target = target_item is not None and str(row["item_id"]) == str(target_item)
        color = (ACCENT if is_target else "#8A8F98" if y1 == out else PRIMARY if y0 == out
                 else "#59A14F" if y1 < y0 else NEGATIVE if y1 > y0 else "#B9BFC8")
        name = item_label(row["title"], row["item_id"], 34)
        sb = f"{row['score_before']:.3f}" if np.isfinite(row["score_before"]) else "—"
        sa = f"{row['score_after']:.3f}" if np.isfinite(row["score_after"]) else "—"
        rb = f"#{y0:.0f}" if y0 != out else "not in top K"
        ra = f"#{y1:.0f}" if y1 != out else "not in top K"
        hover = (f"<b>{item_label(row['title'], row['item_id'], 60)}</b><br>id {row['item_id']}<br>rank {rb} → {ra}"
                 f"<br>score {sb} → {sa}<extra></extra>")
        fig.add_scatter(x=[0, 1], y=[y0, y1], mode="lines+markers+text", showlegend=False, hovertemplate=hover,
                        line=dict(color=color, width=3 if is_target else 1.8),
                        marker=dict(color=color, size=9 if is_target else 7),
                        text=[name if y0 != out else "", name if y1 != out else ""],
                        textposition=["middle left", "middle right"], cliponaxis=False,
                        textfont=dict(color=ACCENT if is_target else "#262730", size=12))
    for name, color in (("target", ACCENT), ("moved up", "#59A14F"), ("moved down", NEGATIVE),
                        ("entered the top K", PRIMARY), ("left the top K", "#8A8F98")):
        fig.add_scatter(x=[None], y=[None], mode="lines+markers", name=name, line=dict(color=color, width=2),
                        marker=dict(color=color, size=7), hoverinfo="skip")
    fig.add_hrect(y0=k + 0.75, y1=k + 2.25, fillcolor="#F0F2F6", line_width=0, layer="below")
    if target_item is not None:
        tb = f"#{target_rank_before}" if target_rank_before else "?"
        ta = f"#{target_rank_after}" if target_rank_after else "?"
        subtitle = f"target rank {tb} → {ta} in the full catalogue"
    else:
        subtitle = "no target picked"
    entered = int((changes["rank_before"].isna() & changes["rank_after"].notna()).sum())
    subtitle += f" · {entered} item{'s' if entered != 1 else ''} entered the top {k}"
    set_title(fig, title, subtitle)
    fig.update_xaxes(title_text=x_title, tickvals=[0, 1], ticktext=["before (original)", "after (edited)"],
                     range=[-1.3, 2.3], showgrid=False, zeroline=False)
    ticks = list(range(1, k + 1))
    fig.update_yaxes(title_text=y_title, range=[out + 0.9, 0.3], tickvals=ticks + [out],
                     ticktext=[str(t) for t in ticks] + ["not in top K"], showgrid=False, zeroline=False)
    fig.update_layout(showlegend=True)
    return apply_theme(fig, height=max(360, 150 + 30 * (k + 2)))
