"""Figures for the Train page: the per-epoch curve after (or during) training, and the live per-step loss.

Loss and NDCG@10 sit in two side-by-side panels rather than on twin y-axes: twin axes invite reading the
crossing of two unrelated scales as meaningful. Both panels mark the best epoch, the one early stopping keeps.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from seqrec_core.viz.theme import ACCENT, MUTED, PALETTE, PRIMARY, apply_theme, empty_figure, fmt_metric, set_title

_VAL_METRIC = "val_NDCG@10"
_EMA_SPAN_MAX = 50  # longest smoothing span of the live loss, in logged steps


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def plot_training_curves(history: list[dict]) -> go.Figure:
    """Training loss (left) and validation NDCG@10 (right) per epoch, best epoch marked in both panels.
    ``seconds`` is the time since training started (cumulative), as :mod:`seqrec_core.training` writes it."""
    title, x_title = "Training curves", "epoch"
    if not history:
        return empty_figure(title, x_title, "training loss", "no finished epoch yet")
    frame = pd.DataFrame(list(history))
    if "epoch" not in frame:
        frame["epoch"] = np.arange(1, len(frame) + 1)
    frame = frame.sort_values("epoch", kind="stable").reset_index(drop=True)
    epoch, loss = _num(frame, "epoch"), _num(frame, "train_loss")
    ndcg, hr, secs = _num(frame, _VAL_METRIC), _num(frame, "val_HR@10"), _num(frame, "seconds")
    if not np.isfinite(loss).any() and not np.isfinite(ndcg).any():
        return empty_figure(title, x_title, "training loss", "no loss or validation values in the history")
    hover = np.stack([ndcg, hr, secs, loss], axis=1)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Training loss (lower is better)",
                                        "Validation NDCG@10 (higher is better)"))
    fig.update_annotations(font_size=14)  # only the two panel titles exist at this point
    common = ("epoch %{x}<br>loss %{customdata[3]:.4f} · NDCG@10 %{customdata[0]:.4f}"
              "<br>HR@10 %{customdata[1]:.4f} · at %{customdata[2]:,.0f} s<extra></extra>")
    fig.add_scatter(x=epoch, y=loss, mode="lines+markers", name="training loss", customdata=hover,
                    line=dict(color=PRIMARY, width=2.5), hovertemplate=common, row=1, col=1)
    fig.add_scatter(x=epoch, y=ndcg, mode="lines+markers", name="validation NDCG@10", customdata=hover,
                    line=dict(color=PALETTE[2], width=2.5), hovertemplate=common, connectgaps=True, row=1, col=2)
    subtitle = f"{len(frame)} epoch{'' if len(frame) == 1 else 's'}"
    if np.isfinite(secs).any():
        subtitle += f" · {np.nanmax(secs):,.0f} s of training"  # the trainer logs cumulative seconds
    if np.isfinite(ndcg).any():
        best = int(np.nanargmax(ndcg))
        best_epoch = epoch[best]
        label = f"best epoch {best_epoch:g}"
        for col in (1, 2):
            fig.add_vline(x=best_epoch, line=dict(color=ACCENT, dash="dash", width=1.5), row=1, col=col)
        fig.add_scatter(x=[best_epoch], y=[ndcg[best]], mode="markers", name=label,
                        marker=dict(symbol="star", size=16, color=ACCENT, line=dict(color="white", width=1)),
                        customdata=hover[best:best + 1], hovertemplate="<b>best</b> " + common, row=1, col=2)
        fig.add_annotation(x=best_epoch, xref="x2", y=1.0, yref="y2 domain", yanchor="top", xanchor="left",
                           xshift=4, showarrow=False, text=label, font=dict(color=ACCENT, size=13))
        subtitle += f" · {label}: NDCG@10 {fmt_metric(ndcg[best])}"
        if np.isfinite(hr[best]):
            subtitle += f", HR@10 {fmt_metric(hr[best])}"
    set_title(fig, title, subtitle)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(frame) <= 20 else None)
    fig.update_yaxes(title_text="training loss (per step, mean)", row=1, col=1)
    fig.update_yaxes(title_text="validation NDCG@10 (0–1)", rangemode="tozero", row=1, col=2)
    fig.update_layout(showlegend=False)  # the panel titles name the series
    fig = apply_theme(fig)
    fig.update_layout(margin=dict(t=120))  # room for the subtitle and the panel titles
    return fig


def plot_live_loss(steps: list[dict]) -> go.Figure:
    """Per-step loss while training runs, against fractional epoch, with an exponential moving average: the raw
    loss is too noisy to judge progress from. ``uirevision`` keeps the user's zoom across polling refreshes."""
    title, x_title, y_title = "Training loss (live)", "epoch (fractional)", "training loss (per step)"
    if not steps:
        return empty_figure(title, x_title, y_title, "waiting for the first training step")
    frame = pd.DataFrame(list(steps))
    epoch, step = _num(frame, "epoch"), _num(frame, "step")
    n_steps, loss, elapsed = _num(frame, "steps"), _num(frame, "loss"), _num(frame, "elapsed")
    ok = np.isfinite(epoch) & np.isfinite(loss)
    if not ok.any():
        return empty_figure(title, x_title, y_title, "waiting for the first training step")
    first_epoch = 0.0 if np.nanmin(epoch) == 0 else 1.0  # accept 0- or 1-based epochs; epoch k ends at x = k
    frac = np.where(np.isfinite(step) & (n_steps > 0), step / np.where(n_steps > 0, n_steps, 1), 0.0)
    x = epoch - first_epoch + np.clip(frac, 0.0, 1.0)
    order = np.argsort(np.where(ok, x, np.inf), kind="stable")[: int(ok.sum())]
    x, loss, elapsed = x[order], loss[order], elapsed[order]
    span = float(np.clip(len(loss) / 20, 3, _EMA_SPAN_MAX))  # smooth enough to read, short enough not to lag
    ema = pd.Series(loss).ewm(span=span, adjust=True).mean().to_numpy()
    custom = np.stack([elapsed, ema], axis=1)
    fig = go.Figure()
    fig.add_scatter(x=x, y=loss, mode="lines" if len(x) > 1 else "markers", name="loss per step",
                    line=dict(color=MUTED, width=1), marker=dict(color=PRIMARY), customdata=custom,
                    hovertemplate="epoch %{x:.2f}: loss %{y:.4f}<br>%{customdata[0]:,.0f} s elapsed"
                                  "<extra></extra>")
    fig.add_scatter(x=x, y=ema, mode="lines", name="smoothed", line=dict(color=PRIMARY, width=2.5),
                    hoverinfo="skip")
    subtitle = f"epoch {x[-1]:.2f} · loss {ema[-1]:.4f} (smoothed)"
    if np.isfinite(elapsed[-1]):
        subtitle += f" · {elapsed[-1]:,.0f} s elapsed"
    set_title(fig, title, subtitle)
    fig.update_xaxes(title_text=x_title, rangemode="tozero")
    fig.update_yaxes(title_text=y_title)
    fig = apply_theme(fig, height=360)
    fig.update_layout(uirevision="live-loss")
    return fig
