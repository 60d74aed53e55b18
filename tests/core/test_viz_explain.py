"""Explain figures: every chart has data, a title and labelled axes, says "no data" on empty input, and encodes its
numbers correctly (causal triangle blank, far lags grouped with rows still summing to 1, methods' agreement,
rank changes, AOPC in the legend, "all" at the end of the truncation axis)."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from seqrec_core.viz import plot_explain as pe
from seqrec_core.viz import plot_explain_stats as ps
from seqrec_core.viz import theme

SEED = 0


def _history(n: int = 40, with_time: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    lags = np.arange(n, 0, -1)
    stamps = pd.Series(pd.date_range("2024-01-01", periods=n, freq="5h", tz="UTC"))
    pred = stamps.iloc[-1] + pd.Timedelta(hours=5)
    return pd.DataFrame({
        "position": np.arange(1, n + 1), "item_id": [f"i{k}" for k in range(n)],
        "title": [f"Item {k}" if k % 6 else None for k in range(n)],
        "category": [("A", "B|C", None, "D")[k % 4] for k in range(n)],
        "timestamp": stamps if with_time else pd.Series([pd.NaT] * n),
        "lag": lags, "seconds_before": (pred - stamps).dt.total_seconds().to_numpy() if with_time else np.nan,
        "attribution": rng.normal(0, 0.1, n) + (lags == 25) * 1.0})


def _attention(n: int) -> np.ndarray:
    w = np.tril(np.random.default_rng(SEED).random((n, n)) ** 3)
    return w / w.sum(1, keepdims=True)


def _table(n: int = 40) -> pd.DataFrame:
    h = _history(n)
    a = h["attribution"].to_numpy()
    frames = {"ig": h, "occlusion": h.assign(attribution=a * 0.5 + 0.001 * np.arange(n)),
              "gradshap": h.assign(attribution=-a), "attention": h.assign(attribution=np.abs(a) / np.abs(a).sum())}
    return pe.attribution_table(frames)


def _cf() -> tuple[pd.DataFrame, pd.DataFrame]:
    def frame(ids: list[int]) -> pd.DataFrame:
        return pd.DataFrame({"rank": np.arange(1, len(ids) + 1), "item_id": [f"r{i}" for i in ids],
                             "title": [f"Rec {i}" for i in ids], "score": np.linspace(9, 5, len(ids))})
    return frame(list(range(10))), frame([3, 0, 1, 2, 11, 5, 12, 6, 4, 8])


def _curves() -> tuple[pd.DataFrame, pd.DataFrame]:
    slopes = {"ig": 0.6, "occlusion": 0.5, "attention": 0.3, "random": 0.1}
    curves = pd.DataFrame([{"method": m, "kind": kind, "k": k,
                            "score": 8 - f * k if kind == "deletion" else 2 + f * k, "prob": 0.5 - 0.01 * k}
                           for m, f in slopes.items() for kind in ("deletion", "insertion") for k in range(11)])
    aopc = pd.DataFrame([{"method": m, "kind": kind, "aopc": f * 5.5, "aopc_prob": 0.055}
                         for m, f in slopes.items() for kind in ("deletion", "insertion")])
    return curves, aopc


BY_LAG = pd.DataFrame({"bucket": ["1", "2-5", "6-20", "21-50", ">50"],
                       "share_of_abs_attribution": [0.2, 0.25, 0.2, 0.3, 0.05], "events": [10, 40, 150, 250, 30]})
BY_TIME = pd.DataFrame({"bucket": ["<1 h", "1 h-1 d", "1-7 d", "7-30 d", ">30 d"], "share": [0.3, 0.2, 0.2, 0.2, 0.1],
                        "events": [1, 4, 15, 25, 3]})
DIST = pd.DataFrame([{"layer": ly, "head": h, "mean_distance": 2.0 + 5 * ly + h} for ly in range(2) for h in range(2)])
TRUNC = pd.DataFrame({"k": ["1", "2", "5", "10", "20", "50", "all"],
                      "NDCG@10": [0.05, 0.08, 0.1, 0.12, 0.2, 0.35, 0.36], "HR@10": [0.1] * 7, "users": [200] * 7})
CASES = pd.DataFrame({"user": [f"u{i}" for i in range(10)], "trigger_attr_rank": [1, 1, 2, 3, 1, 4, 12, 1, 2, 1]})
CASES["hit"] = CASES["trigger_attr_rank"] <= 3

GOOD = {
    "heatmap": lambda: pe.plot_attention_heatmap(_attention(40), _history(40)),
    "last_attention": lambda: pe.plot_last_attention(_attention(40)[-1], _history(40)),
    "method_comparison": lambda: pe.plot_method_comparison(_table()),
    "method_agreement": lambda: pe.plot_method_agreement(_table()),
    "timeline": lambda: pe.plot_attribution_timeline(_history(), target_label="Tent seam sealer"),
    "counterfactual": lambda: ps.plot_counterfactual(*_cf(), target_item="r3", target_rank_before=4,
                                                     target_rank_after=1),
    "mass_lag": lambda: ps.plot_attribution_mass(BY_LAG, share_top_ge20=0.3, users=100),
    "mass_time": lambda: ps.plot_attribution_mass(BY_TIME, by="time"),
    "attention_distance": lambda: ps.plot_attention_distance(DIST),
    "truncation": lambda: ps.plot_truncation_ablation(TRUNC),
    "deletion": lambda: ps.plot_faithfulness(*_curves(), "deletion"),
    "insertion": lambda: ps.plot_faithfulness(*_curves(), "insertion", value="prob"),
    "planted": lambda: ps.plot_planted_check(CASES),
}
EMPTY = {
    "heatmap": lambda: pe.plot_attention_heatmap(np.zeros((0, 0)), _history(4).iloc[:0]),
    "last_attention": lambda: pe.plot_last_attention(np.zeros(0), _history(4).iloc[:0]),
    "method_comparison": lambda: pe.plot_method_comparison(pe.attribution_table({})),
    "method_agreement": lambda: pe.plot_method_agreement(pe.attribution_table({})),
    "timeline": lambda: pe.plot_attribution_timeline(_history(4).iloc[:0]),
    "counterfactual": lambda: ps.plot_counterfactual(_cf()[0].iloc[:0], _cf()[1].iloc[:0]),
    "mass_lag": lambda: ps.plot_attribution_mass(BY_LAG.iloc[:0]),
    "mass_time": lambda: ps.plot_attribution_mass(BY_TIME.iloc[:0], by="time"),
    "attention_distance": lambda: ps.plot_attention_distance(DIST.iloc[:0]),
    "truncation": lambda: ps.plot_truncation_ablation(TRUNC.iloc[:0]),
    "deletion": lambda: ps.plot_faithfulness(_curves()[0].iloc[:0]),
    "insertion": lambda: ps.plot_faithfulness(_curves()[0][lambda f: f["kind"] == "deletion"], kind="insertion"),
    "planted": lambda: ps.plot_planted_check(CASES.iloc[:0]),
}


def _axis_titles(fig: go.Figure) -> list[str]:
    layout = fig.to_plotly_json()["layout"]
    return [(layout[k].get("title") or {}).get("text", "") for k in layout if k.startswith(("xaxis", "yaxis"))]


@pytest.mark.parametrize("name", sorted(GOOD))
def test_figure_has_data_title_labelled_axes_and_theme(name: str) -> None:
    fig = GOOD[name]()
    assert len(fig.data) > 0 and fig.layout.title.text
    xs = [t for t in fig.data if (t.x is not None and len(t.x)) or (getattr(t, "z", None) is not None)]
    assert xs, name
    titles = [t for t in _axis_titles(fig) if t]
    assert len(titles) >= 2, f"unlabelled axes in {name}"
    assert fig.layout.template.layout.font.family == theme.FONT_FAMILY
    assert fig.layout.height and fig.layout.width is None
    json.loads(fig.to_json())


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_input_says_no_data(name: str) -> None:
    fig = EMPTY[name]()
    assert any((a.text or "").startswith(theme.NO_DATA) for a in fig.layout.annotations)
    assert fig.layout.title.text and all(_axis_titles(fig))


def test_heatmap_blanks_the_causal_triangle_and_opens_long_histories_on_recent_events() -> None:
    fig = pe.plot_attention_heatmap(_attention(200), _history(200))
    z = np.array(fig.data[0].z, dtype=float)
    assert z.shape == (200, 200)
    assert np.isnan(z[np.triu_indices(200, 1)]).all() and np.isfinite(z[np.tril_indices(200)]).all()
    assert np.allclose(np.nansum(z, axis=1), 1.0)
    assert list(fig.layout.xaxis.range) == [200 - pe.ZOOM_LAST - 0.5, 199.5]
    assert "double-click" in fig.layout.title.subtitle.text
    labels = list(fig.data[0].x)
    assert len(set(labels)) == 200 and labels[-1].endswith("lag 1") and "id i0" in labels[0]


def test_heatmap_groups_far_lags_into_bins_whose_rows_still_sum_to_one() -> None:
    fig = pe.plot_attention_heatmap(_attention(200), _history(200), group_far=True, near=20, bin_size=10)
    z = np.array(fig.data[0].z, dtype=float)
    labels = list(fig.data[0].x)
    assert z.shape == (20 + 18, 20 + 18)  # 20 single recent events + lags 21..200 in 18 bins of 10
    assert labels[0] == "lags 191–200 (10 events)" and "lags 21–30 (10 events)" in labels
    assert labels[-1].endswith("lag 1")
    assert np.allclose(np.nansum(z, axis=1), 1.0)
    assert np.isnan(z[np.triu_indices(len(z), 1)]).all()
    assert fig.layout.xaxis.range is None  # everything fits, no initial zoom


def test_heatmap_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="40 events"):
        pe.plot_attention_heatmap(_attention(30), _history(40))


def test_last_attention_bars_follow_lags_and_mark_the_top_three() -> None:
    w = _attention(40)[-1]
    fig = pe.plot_last_attention(w, _history(40))
    bar = fig.data[0]
    assert list(bar.x) == list(range(40, 0, -1)) and np.allclose(bar.y, w)
    red = [i for i, c in enumerate(bar.marker.color) if c == theme.ACCENT]
    assert sorted(red) == sorted(np.argsort(-w)[:3].tolist())
    assert fig.layout.xaxis.autorange == "reversed"  # latest event on the right
    assert "last 5 events" in fig.layout.title.subtitle.text


def test_attribution_table_ranks_each_method_and_agreement_reads_the_ranks() -> None:
    table = _table()
    assert {"ig", "ig rank", "occlusion", "gradshap rank", "attention"} <= set(table.columns)
    assert table.loc[table["ig"].idxmax(), "ig rank"] == 1 and table.loc[table["lag"] == 25, "ig rank"].item() == 1
    agree = pe.method_agreement(table).set_index(["method_a", "method_b"])
    assert agree.loc[("ig", "gradshap"), "spearman"] == pytest.approx(-1.0)
    assert agree.loc[("ig", "gradshap"), "top10_overlap"] == 0
    assert agree.loc[("ig", "occlusion"), "spearman"] > 0.5
    fig = pe.plot_method_agreement(table)
    z = np.array(fig.data[0].z, dtype=float)
    assert z.shape == (4, 4) and np.allclose(np.diag(z), 1) and np.allclose(z, z.T)
    assert re.search(r"mean -?\d\.\d\d$", fig.layout.title.subtitle.text)  # short enough not to be cut off
    cells = np.array(fig.data[0].text, dtype=object)
    assert cells[0, 0] == "—" and all(len(c) <= 5 for c in cells.ravel())  # one number per cell, readable
    assert "Kendall" in str(fig.data[0].customdata[0][1]) and "top 10" in str(fig.data[0].customdata[0][1])


def test_method_agreement_is_nan_for_constant_scores() -> None:
    h = _history(10)
    table = pe.attribution_table({"ig": h, "attention": h.assign(attribution=0.1)})
    assert np.isnan(pe.method_agreement(table)["spearman"].item())
    pe.plot_method_agreement(table).to_json()


def test_method_comparison_draws_one_row_per_method_on_the_same_events() -> None:
    fig = pe.plot_method_comparison(_table(), ["ig", "attention"])
    assert [t.name for t in fig.data] == ["Integrated Gradients", "Attention (last position)"]
    assert all(list(t.x) == list(range(40, 0, -1)) for t in fig.data)
    assert fig.data[0].text[list(fig.data[0].x).index(25)] == "1"  # the planted event is IG's top event
    assert fig.layout.yaxis.title.text and fig.layout.yaxis2.title.text


def test_timeline_colours_and_sizes_by_attribution() -> None:
    h = _history()
    fig = pe.plot_attribution_timeline(h, target_label="X")
    marker = fig.data[0].marker
    a = h["attribution"].to_numpy()
    assert np.allclose(marker.color, a) and marker.cmin == -marker.cmax
    assert int(np.argmax(marker.size)) == int(np.argmax(np.abs(a)))
    assert "lag" in fig.data[0].hovertemplate and "before" in fig.data[0].customdata[0][4]
    assert fig.layout.xaxis.title.text == "time (UTC)"
    no_time = pe.plot_attribution_timeline(_history(with_time=False))
    assert no_time.layout.xaxis.title.text.startswith("position")


def test_counterfactual_changes_and_slope_chart() -> None:
    before, after = _cf()
    ch = ps.counterfactual_changes(before, after).set_index("item_id")
    assert ch.loc["r3", "change"] == 3 and ch.loc["r4", "change"] == -4
    assert np.isnan(ch.loc["r11", "rank_before"]) and ch.loc["r11", "rank_after"] == 5
    assert np.isnan(ch.loc["r9", "rank_after"])
    fig = ps.plot_counterfactual(before, after, target_item="r3", target_rank_before=4, target_rank_after=1)
    target = [t for t in fig.data if t.line.color == theme.ACCENT and t.x and t.x[0] is not None]
    assert len(target) == 1 and list(target[0].y) == [4, 1]
    assert "#4 → #1" in fig.layout.title.subtitle.text and "2 items entered" in fig.layout.title.subtitle.text


def test_attribution_mass_bars_are_percent_shares() -> None:
    fig = ps.plot_attribution_mass(BY_LAG, share_top_ge20=0.3, users=100)
    assert np.isclose(sum(fig.data[0].y), 100) and list(fig.data[0].x) == list(BY_LAG["bucket"])
    assert "top event ≥ 20 back: 30%" in fig.layout.title.subtitle.text
    bars, diamonds, labels = fig.data  # each label sits above its bar and its diamond; the axis holds all three
    top = np.maximum(np.asarray(bars.y, dtype=float), np.nan_to_num(np.asarray(diamonds.y, dtype=float)))
    assert labels.mode == "text" and (np.asarray(labels.y, dtype=float) > top).all()
    assert fig.layout.yaxis.range[1] > np.asarray(labels.y, dtype=float).max()


def test_truncation_puts_all_last_on_a_log_axis() -> None:
    fig = ps.plot_truncation_ablation(TRUNC.iloc[::-1])
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.ticktext)[-1] == "all"
    assert list(fig.data[0].y) == list(TRUNC["NDCG@10"])
    assert "0.360" in fig.layout.title.subtitle.text


def test_faithfulness_puts_aopc_in_the_legend_and_random_dashed() -> None:
    fig = ps.plot_faithfulness(*_curves(), "deletion")
    names = {t.name.split(" ·")[0]: t for t in fig.data}
    assert "AOPC 3.300" in names["Integrated Gradients"].name
    assert names["Random order"].line.dash == "dash"
    assert "best AOPC: IG 3.30" in fig.layout.title.subtitle.text and "(random " in fig.layout.title.subtitle.text
    prob = ps.plot_faithfulness(*_curves(), "deletion", value="prob")
    assert "probability" in prob.layout.yaxis.title.text and "AOPC 0.055" in prob.data[0].name


def test_attention_distance_heatmap_and_planted_counts() -> None:
    fig = ps.plot_attention_distance(DIST)
    assert np.array(fig.data[0].z).shape == (2, 2) and "layer 2, head 2" in fig.layout.title.subtitle.text
    planted = ps.plot_planted_check(CASES)
    assert sum(planted.data[0].y) == len(CASES) and list(planted.data[0].x)[-1] == ">10"
    assert "80% of 10 cases" in planted.layout.title.subtitle.text
