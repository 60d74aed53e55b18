"""Figure builders: every chart has data, a title and axis labels; empty input says "no data"; ids stand in for
missing titles; and each chart encodes its numbers correctly (counts add up, CDFs rise, best epoch is starred)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from seqrec_core import viz
from seqrec_core.viz import theme

RNG_SEED = 0


def _history() -> list[dict]:
    ndcg = [0.01, 0.03, 0.05, 0.04, np.nan, 0.045]
    return [{"epoch": e + 1, "train_loss": 9.0 - e, "val_NDCG@10": v, "val_HR@10": 2 * v, "seconds": 10.0 * (e + 1)}
            for e, v in enumerate(ndcg)]


def _steps(first_epoch: int = 1) -> list[dict]:
    return [{"epoch": e, "step": s, "steps": 10, "loss": 5.0 - 0.1 * s, "elapsed": 1.0 * s}
            for e in range(first_epoch, first_epoch + 2) for s in range(1, 11)]


def _table() -> pd.DataFrame:
    t = pd.DataFrame({"model": ["popularity", "sasrec", "markov", "itemknn"], "NDCG@10": [0.01, 0.05, 0.03, 0.02]})
    t["NDCG@10 lo"], t["NDCG@10 hi"] = t["NDCG@10"] - 0.004, t["NDCG@10"] + 0.006
    return t


def _ranks(n_items: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(RNG_SEED)
    return pd.DataFrame({"model": ["sasrec"] * 300 + ["popularity"] * 300,
                         "rank": np.concatenate([rng.integers(1, 60, 300), rng.integers(1, n_items + 1, 300)])})


def _by_length() -> pd.DataFrame:
    rows = [{"model": m, "bucket": b, "users": u, "value": v, "lo": v * 0.8, "hi": v * 1.2}
            for m, f in (("sasrec", 1.0), ("markov", 0.5))
            for b, u, v in (("3-5", 120, 0.03 * f), ("6-10", 80, 0.05 * f), ("11+", 20, 0.06 * f))]
    frame = pd.DataFrame(rows)
    frame["bucket"] = pd.Categorical(frame["bucket"], categories=["3-5", "6-10", "11+"], ordered=True)
    return frame


def _timeline(n: int = 30, with_time: bool = True) -> pd.DataFrame:
    cats = ["Drama", "Comedy|Drama", "Action", None]
    stamps = (pd.Series(pd.date_range("2024-01-01", periods=n, freq="37min", tz="UTC")) if with_time
              else pd.Series([None] * n, dtype=object))
    return pd.DataFrame({"position": np.arange(1, n + 1), "item_id": [f"i{k % 17}" for k in range(n)],
                         "title": [f"Title {k % 17}" if k % 5 else None for k in range(n)],
                         "category": [cats[k % 4] for k in range(n)], "timestamp": stamps,
                         "lag": np.arange(n, 0, -1), "split": ["train"] * (n - 2) + ["val", "test"]})


def _recs(k: int = 10) -> pd.DataFrame:
    return pd.DataFrame({"rank": np.arange(1, k + 1), "item_id": [f"i{j}" for j in range(k)],
                         "title": [f"Movie {j}" if j != 3 else None for j in range(k)],
                         "category": ["Drama"] * k, "score": np.linspace(5.0, 1.0, k)})


def _events_per_day() -> pd.Series:
    days = pd.date_range("2024-01-01", periods=90, freq="D", tz="UTC")
    return pd.Series(np.arange(90) % 7 + 1, index=days).drop(days[10:13])  # three days with no events


def _lengths() -> np.ndarray:
    return np.random.default_rng(RNG_SEED).zipf(1.8, 2000).clip(1, 5000)


GOOD = {
    "sequence_lengths": lambda: viz.plot_sequence_lengths(_lengths()),
    "events_over_time": lambda: viz.plot_events_over_time(_events_per_day()),
    "item_popularity": lambda: viz.plot_item_popularity(np.random.default_rng(RNG_SEED).zipf(1.5, 3000)),
    "quality_report": lambda: viz.plot_quality_report(pd.DataFrame(
        {"step": ["parse", "dedupe", "k-core"], "rows_dropped": [0, 5, 120], "reason": ["", "duplicates", "rare"]})),
    "training_curves": lambda: viz.plot_training_curves(_history()),
    "live_loss": lambda: viz.plot_live_loss(_steps()),
    "metric_comparison": lambda: viz.plot_metric_comparison(_table()),
    "rank_distribution": lambda: viz.plot_rank_distribution(_ranks(), 500),
    "metric_by_history_length": lambda: viz.plot_metric_by_history_length(_by_length()),
    "user_timeline": lambda: viz.plot_user_timeline(_timeline(), "i12"),
    "topk_scores": lambda: viz.plot_topk_scores(_recs(), "i5"),
}

EMPTY = {
    "sequence_lengths": lambda: viz.plot_sequence_lengths(np.array([], dtype=np.int64)),
    "events_over_time": lambda: viz.plot_events_over_time(pd.Series(dtype=float)),
    "item_popularity": lambda: viz.plot_item_popularity(np.zeros(5)),
    "quality_report": lambda: viz.plot_quality_report(pd.DataFrame(columns=["step", "rows_dropped", "reason"])),
    "training_curves": lambda: viz.plot_training_curves([]),
    "live_loss": lambda: viz.plot_live_loss([]),
    "metric_comparison": lambda: viz.plot_metric_comparison(pd.DataFrame(columns=["model", "NDCG@10"])),
    "rank_distribution": lambda: viz.plot_rank_distribution(pd.DataFrame(columns=["model", "rank"]), 100),
    "metric_by_history_length": lambda: viz.plot_metric_by_history_length(pd.DataFrame()),
    "user_timeline": lambda: viz.plot_user_timeline(_timeline().iloc[:0]),
    "topk_scores": lambda: viz.plot_topk_scores(_recs().iloc[:0]),
}


def _axis_titles(fig: go.Figure) -> list[str]:
    layout = fig.to_plotly_json()["layout"]
    return [layout[k].get("title", {}).get("text", "") for k in layout if k.startswith(("xaxis", "yaxis"))]


def _annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text or "" for a in fig.layout.annotations]


@pytest.mark.parametrize("name", sorted(GOOD))
def test_figure_has_data_title_labelled_axes_and_theme(name: str) -> None:
    fig = GOOD[name]()
    assert isinstance(fig, go.Figure)
    assert len(fig.data) > 0 and any(len(t.x if t.x is not None else []) > 0 for t in fig.data)
    assert fig.layout.title.text
    titles = _axis_titles(fig)
    assert len(titles) >= 2 and all(titles), f"unlabelled axis in {name}: {titles}"
    assert fig.layout.template.layout.font.family == theme.FONT_FAMILY
    assert fig.layout.height and fig.layout.width is None  # the page decides the width
    json.loads(fig.to_json())  # what st.plotly_chart sends must serialise (pandas string/NA values included)


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_input_says_no_data(name: str) -> None:
    fig = EMPTY[name]()
    assert any(text.startswith(theme.NO_DATA) for text in _annotation_texts(fig))
    assert fig.layout.title.text and all(_axis_titles(fig))


def test_axis_titles_carry_units() -> None:
    assert GOOD["sequence_lengths"]().layout.yaxis.title.text == "users"
    assert GOOD["events_over_time"]().layout.xaxis.title.text == "date (UTC)"
    assert GOOD["events_over_time"]().layout.yaxis.title.text == "events per day"
    assert GOOD["rank_distribution"]().layout.xaxis.title.text == "rank of the held-out item (log)"
    assert "0–1" in GOOD["metric_comparison"]().layout.xaxis.title.text


def test_sequence_lengths_counts_every_user_and_goes_log_when_skewed() -> None:
    lengths = _lengths()
    fig = viz.plot_sequence_lengths(lengths)
    assert int(np.sum(fig.data[0].y)) == len(lengths)
    assert "log" in fig.layout.xaxis.title.text and fig.layout.xaxis.tickvals is not None
    flat = viz.plot_sequence_lengths(np.random.default_rng(RNG_SEED).integers(5, 15, 300))
    assert int(np.sum(flat.data[0].y)) == 300 and "log" not in flat.layout.xaxis.title.text


def test_events_over_time_shows_quiet_days_as_zero() -> None:
    series = _events_per_day()
    fig = viz.plot_events_over_time(series)
    daily = fig.data[0]
    assert len(daily.x) == 90 and float(np.sum(daily.y)) == float(series.sum())
    assert list(np.asarray(daily.y)[10:13]) == [0, 0, 0]
    order_only = viz.plot_events_over_time(pd.Series([3, 4], index=[0, 1]))
    assert any("no timestamps" in t for t in _annotation_texts(order_only))
    assert any("no timestamps" in t for t in _annotation_texts(viz.plot_events_over_time(None)))


def test_item_popularity_is_a_falling_log_log_curve_without_zeros() -> None:
    counts = np.array([0, 5, 50, 1, 0, 20])
    fig = viz.plot_item_popularity(counts)
    y = np.asarray(fig.data[0].y)
    assert list(y) == [50, 20, 5, 1] and list(fig.data[0].x) == [1, 2, 3, 4]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_quality_report_keeps_step_order_and_counts() -> None:
    fig = GOOD["quality_report"]()
    assert list(fig.data[0].x) == [0, 5, 120]
    assert [s.split(". ", 1)[1] for s in fig.data[0].y] == ["parse", "dedupe", "k-core"]


def test_training_curves_star_the_best_epoch_despite_missing_values() -> None:
    fig = viz.plot_training_curves(_history())
    star = [t for t in fig.data if t.marker is not None and t.marker.symbol == "star"]
    assert len(star) == 1 and list(star[0].x) == [3] and star[0].y[0] == pytest.approx(0.05)
    assert "best epoch 3" in fig.layout.title.subtitle.text and "60 s" in fig.layout.title.subtitle.text
    no_val = viz.plot_training_curves([{"epoch": 1, "train_loss": 3.0}, {"epoch": 2, "train_loss": 2.5}])
    assert len(no_val.data) == 2 and not any(t.marker.symbol == "star" for t in no_val.data)


@pytest.mark.parametrize("first_epoch", [0, 1])
def test_live_loss_uses_fractional_epochs(first_epoch: int) -> None:
    fig = viz.plot_live_loss(_steps(first_epoch))
    x = np.asarray(fig.data[0].x, dtype=float)
    assert np.all(np.diff(x) > 0) and x[0] == pytest.approx(0.1) and x[-1] == pytest.approx(2.0)
    assert fig.layout.uirevision  # zoom survives the page's polling refreshes


def test_metric_comparison_greys_baselines_sorts_and_draws_intervals() -> None:
    fig = viz.plot_metric_comparison(_table())
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert list(bars["model"].y) == ["sasrec"] and bars["model"].marker.color == theme.PRIMARY
    assert set(bars["baseline"].y) == {"popularity", "markov", "itemknn"}
    assert bars["baseline"].marker.color in theme.BASELINE_GREYS
    assert list(fig.layout.yaxis.categoryarray) == ["sasrec", "markov", "itemknn", "popularity"]
    assert np.allclose(bars["model"].error_x.array, [0.006]) and np.allclose(bars["model"].error_x.arrayminus, [0.004])
    no_ci = viz.plot_metric_comparison(_table()[["model", "NDCG@10"]])
    assert all(t.error_x.array is None for t in no_ci.data if t.type == "bar")


def test_rank_distribution_is_a_rising_cdf_matching_hit_rate() -> None:
    ranks = _ranks()
    fig = viz.plot_rank_distribution(ranks, 500)
    for trace in fig.data:
        model = trace.name.split(" (")[0]
        x, y = np.asarray(trace.x), np.asarray(trace.y)
        assert np.all(np.diff(y) >= 0) and y[-1] == pytest.approx(1.0) and x[-1] == 500
        hit10 = float((ranks.loc[ranks["model"] == model, "rank"] <= 10).mean())
        assert y[list(x).index(10)] == pytest.approx(hit10)
    assert fig.data[0].name.startswith("sasrec") and fig.layout.xaxis.type == "log"
    guides = [s.x0 for s in fig.layout.shapes]
    assert 10 in guides and 20 in guides


def test_metric_by_history_length_keeps_bucket_order_and_shows_users() -> None:
    frame = _by_length()
    fig = viz.plot_metric_by_history_length(frame.iloc[::-1])  # row order must not matter: the categories decide
    assert list(fig.layout.xaxis.categoryarray) == ["3-5", "6-10", "11+"]
    assert [t.name for t in fig.data] == ["sasrec", "markov"]
    assert list(np.asarray(fig.data[0].customdata)[:, 0]) == [120, 80, 20]
    assert "(120 users)" in fig.layout.xaxis.ticktext[0]


def test_user_timeline_marks_heldout_and_falls_back_to_ids_and_positions() -> None:
    fig = viz.plot_user_timeline(_timeline(with_time=False))
    assert fig.layout.xaxis.title.text.startswith("position")
    star = [t for t in fig.data if t.name and t.name.startswith("held-out")]
    assert len(star) == 1 and list(star[0].x) == [30]
    hover = np.concatenate([np.asarray(t.customdata)[:, 0] for t in fig.data if t.customdata is not None])
    assert "id i0" in set(hover) and "Title 1" in set(hover)  # missing titles fall back to the original id
    lanes = {y for t in fig.data if t.y is not None for y in t.y if y is not None}
    assert "Comedy" in lanes and "(no category)" in lanes  # "Comedy|Drama" lanes by its first value
    timed = viz.plot_user_timeline(_timeline(), "i12")
    assert timed.layout.xaxis.title.text == "time (UTC)"
    no_title = viz.plot_user_timeline(_timeline().drop(columns=["title", "category"]))
    assert len(no_title.data) > 0


def test_user_timeline_stays_readable_for_long_histories() -> None:
    n = 260
    frame = _timeline(n)
    frame["category"] = [f"cat{k % 15}" for k in range(n)]
    fig = viz.plot_user_timeline(frame)
    lanes = {y for t in fig.data if t.y is not None for y in t.y if y is not None}
    assert len(lanes) <= 9 and "other" in lanes  # at most 8 categories plus "other"
    assert fig.layout.xaxis.range is not None and "last 200" in fig.layout.xaxis.title.text
    sizes = [s for t in fig.data if t.name and not t.name.startswith(("held", "validation", "same"))
             for s in np.atleast_1d(t.marker.size)]
    assert max(sizes) <= 14


def test_topk_puts_rank_one_on_top_highlights_heldout_and_uses_ids() -> None:
    recs = _recs()
    recs.loc[7, "title"] = "Movie 1"  # duplicate titles must still get their own bars
    fig = viz.plot_topk_scores(recs, "i5")
    labels = list(fig.layout.yaxis.categoryarray)
    assert labels[0].startswith("1. ") and fig.layout.yaxis.autorange == "reversed"
    assert labels[3] == "4. id i3" and len(set(labels)) == len(labels)
    hit = [t for t in fig.data if t.marker.color == theme.ACCENT]
    assert len(hit) == 1 and list(hit[0].y) == ["6. Movie 5"]
    assert "#6" in fig.layout.title.subtitle.text
    miss = viz.plot_topk_scores(recs, "nope")
    assert "not in the top 10" in miss.layout.title.subtitle.text
    bare = viz.plot_topk_scores(recs[["rank", "item_id", "score"]])
    assert list(bare.layout.yaxis.categoryarray)[0] == "1. id i0"


def test_theme_helpers() -> None:
    assert theme.item_label(pd.NA, "42") == "id 42" and theme.item_label("  ", "x") == "id x"
    assert theme.item_label("A" * 60, "x", 10).endswith("…") and len(theme.item_label("A" * 60, "x", 10)) == 10
    colors = theme.model_colors(["sasrec", "popularity", "bert4rec", "markov"])
    assert colors["popularity"] in theme.BASELINE_GREYS and colors["sasrec"] != colors["bert4rec"]
    assert theme.log_ticks(3, 250) == [5, 10, 20, 50, 100, 200]
    fig = theme.apply_theme(go.Figure(), height=300)
    assert fig.layout.height == 300 and fig.layout.template.layout.colorway == theme.PALETTE
