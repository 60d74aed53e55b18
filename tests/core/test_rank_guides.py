"""The rank-distribution figure's labels stay readable: the "top 10" / "top 20" guides must not overlap at any
catalogue size (they used to be centred on lines 0.3 log-decades apart and ran into each other: "top 10top 20"),
and the legend must not cover a curve."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from seqrec_core.viz.plot_evaluation import plot_rank_distribution


def _ranks(n_items: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ranks = np.minimum(rng.geometric(0.05, 300), n_items)
    return pd.DataFrame({"model": ["sasrec"] * 150 + ["popularity"] * 150, "rank": ranks})


def _guide_labels(fig) -> dict[str, object]:  # noqa: ANN001 - a plotly Figure
    return {a.text: a for a in fig.layout.annotations if str(a.text).startswith("top ")}


@pytest.mark.parametrize("n_items", [25, 800, 12_000, 10_000_000])
def test_guide_labels_point_away_from_each_other(n_items: int) -> None:
    fig = plot_rank_distribution(_ranks(n_items), n_items)
    labels = _guide_labels(fig)
    assert set(labels) == {"top 10", "top 20"}
    ten, twenty = labels["top 10"], labels["top 20"]
    assert ten.x == pytest.approx(1.0) and twenty.x == pytest.approx(math.log10(20))  # log axis: log10 units
    # "top 10" ends at its line (text to the left), "top 20" starts at its line (text to the right): the texts
    # lie on opposite sides of the gap between the lines, so they cannot overlap however narrow the gap is.
    assert (ten.xanchor, twenty.xanchor) == ("right", "left")
    assert ten.xshift < 0 < twenty.xshift
    assert {s.x0 for s in fig.layout.shapes} >= {10, 20}


def test_a_single_guide_sits_right_of_its_line() -> None:
    labels = _guide_labels(plot_rank_distribution(_ranks(15), 15))
    assert set(labels) == {"top 10"} and labels["top 10"].xanchor == "left"


def test_the_legend_sits_under_the_plot_not_over_the_curves() -> None:
    """Inside the plot it covered a curve in either corner (top-left: a good model; bottom-right: the baselines)."""
    fig = plot_rank_distribution(_ranks(800), 800)
    assert fig.layout.legend.yanchor is None and fig.layout.legend.x is None  # not placed inside the plot
    house = fig.layout.template.layout.legend  # the house legend: a row at the bottom of the figure
    assert house.orientation == "h" and house.yref == "container" and house.y == 0
