"""get_paired_difference on planted data: a scorer that knows the planted rule against one that guesses, and a
scorer against itself. The verdict must follow the interval, and the interval must be exact when nothing differs."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from seqrec_core import compare
from seqrec_core.data.sequences import build_sequences
from seqrec_core.errors import InputError

N_ITEMS = 40


class NextItem:
    """Knows the planted rule: the next item is the last one plus one (cyclic)."""

    name = "next-item"

    def score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        scores = np.zeros((len(histories), N_ITEMS + 1), dtype=np.float32)  # (B, N + 1)
        for row, hist in enumerate(histories):
            scores[row, int(hist[-1]) % N_ITEMS + 1] = 1.0
        scores[:, 0] = -np.inf
        return scores


class Guess:
    """Seeded random scores: knows nothing, ranks the true item ~uniformly."""

    name = "guess"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        scores = self.rng.random((len(histories), N_ITEMS + 1)).astype(np.float32)  # (B, N + 1)
        scores[:, 0] = -np.inf
        return scores


@pytest.fixture(scope="module")
def data():
    """300 users, each walking 6 to 14 steps along the item cycle from a random start."""
    rng = np.random.default_rng(7)
    rows = []
    for u in range(300):
        start, n = int(rng.integers(0, N_ITEMS)), int(rng.integers(6, 15))
        rows += [(f"u{u:03d}", f"i{(start + t) % N_ITEMS:02d}", t) for t in range(n)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    seqs = build_sequences(events)
    assert seqs.vocab.n_items == N_ITEMS
    return seqs


@pytest.fixture(scope="module")
def results(data):
    scorers = {"oracle": NextItem(), "guess": Guess(0), "guess-again": Guess(0)}
    return compare.evaluate_scorers(scorers, data, exclude_seen=False)


def test_a_strictly_better_scorer_wins_with_an_interval_above_zero(results):
    oracle, guess = results["oracle"], results["guess"]
    assert oracle.metrics["HR@10"] == 1.0 and oracle.metrics["NDCG@10"] == 1.0  # item ids follow the cycle's order
    table = compare.get_paired_difference(oracle, guess, labels=("A", "B")).set_index("metric")
    assert list(table.index) == ["NDCG@10", "HR@10"]
    for metric in ("NDCG@10", "HR@10"):
        row = table.loc[metric]
        assert row["difference"] == pytest.approx(oracle.metrics[metric] - guess.metrics[metric])
        assert row["A"] == pytest.approx(oracle.metrics[metric]) and row["B"] == pytest.approx(guess.metrics[metric])
        assert 0 < row["lo"] <= row["difference"] <= row["hi"]
        assert row["verdict"] == "A beats B"
    assert (table["users"] == len(oracle.users)).all()
    flipped = compare.get_paired_difference(guess, oracle, labels=("A", "B")).set_index("metric")
    assert (flipped["hi"] < 0).all() and set(flipped["verdict"]) == {"B beats A"}
    np.testing.assert_allclose(flipped["difference"], -table["difference"])
    said = compare.describe_paired_difference(table.reset_index())
    assert said.startswith("NDCG@10: A beats B by ") and "HR@10: A beats B" in said
    shown = compare.paired_difference_for_display(table.reset_index())
    assert list(shown.columns) == ["metric", "A", "B", "A − B", "95% interval", "verdict"]
    assert shown["A − B"].str.match(r"^\+0\.\d{4}$").all() and shown["95% interval"].str.contains(" to ").all()


def test_identical_scorers_give_exactly_zero_and_no_clear_difference(results):
    first, again = results["guess"], results["guess-again"]
    np.testing.assert_array_equal(first.ranks, again.ranks)  # same seed: the same scores, the same ranks
    table = compare.get_paired_difference(first, again)
    assert (table[["difference", "lo", "hi"]].to_numpy() == 0.0).all()
    assert set(table["verdict"]) == {"no clear difference"}
    assert "no clear difference (A − B = +0.0000" in compare.describe_paired_difference(table)


def test_paired_interval_is_narrower_than_the_unpaired_one(results):
    """Two scorers that differ on a tenth of the users: the paired interval of the difference is far narrower
    than what the two separate intervals suggest, because the per-user spread they share cancels."""
    from seqrec_core.evaluation import bootstrap_intervals

    guess = results["guess"]
    ranks = guess.ranks.copy()
    ranks[::10] = 1  # a tenth of the users get their item ranked first
    better = replace(guess, name="better", ranks=ranks, metrics={})
    row = compare.get_paired_difference(better, guess).set_index("metric").loc["HR@10"]
    width_paired = row["hi"] - row["lo"]
    lo_b, hi_b = bootstrap_intervals(better, ["HR@10"])["HR@10"]
    lo_g, hi_g = bootstrap_intervals(guess, ["HR@10"])["HR@10"]
    assert row["lo"] > 0 and row["verdict"] == "better beats guess"
    assert width_paired < 0.6 * ((hi_b - lo_b) + (hi_g - lo_g)) / 2


def test_refuses_results_from_different_protocols(results):
    guess = results["guess"]
    with pytest.raises(InputError, match="different users"):
        compare.get_paired_difference(guess, replace(guess, users=guess.users[::-1].copy()))
    with pytest.raises(InputError, match="exclude-seen"):
        compare.get_paired_difference(guess, replace(guess, exclude_seen=True))
    with pytest.raises(InputError, match="between 0 and 1"):
        compare.get_paired_difference(guess, guess, level=95)
    empty = replace(guess, users=guess.users[:0], ranks=guess.ranks[:0], history_len=guess.history_len[:0])
    table = compare.get_paired_difference(empty, empty)
    assert table["difference"].isna().all() and set(table["verdict"]) == {"no test users"}


def test_paired_figure_colours_the_winner_and_says_when_empty(results):
    from seqrec_core.viz.plot_compare import plot_paired_difference

    table = compare.get_paired_difference(results["oracle"], results["guess"], labels=("A", "B"))
    fig = plot_paired_difference(table, colors={"A": "#111111", "B": "#222222"}, names={"A": "oracle", "B": "guess"})
    (dots,) = fig.data
    assert fig.layout.title.text and fig.layout.title.subtitle.text == "A = oracle · B = guess"
    assert isinstance(dots.customdata[0][0], float)  # the hover formats the interval as numbers
    assert list(dots.y) == ["NDCG@10", "HR@10"] and list(dots.marker.color) == ["#111111", "#111111"]
    lo, hi = fig.layout.xaxis.range
    assert lo < 0 < hi and hi >= table["hi"].max()  # zero and the whole interval in view
    same = plot_paired_difference(compare.get_paired_difference(results["guess"], results["guess-again"]))
    assert same.data[0].marker.color[0] not in ("#4E79A7", "#F28E2B")  # no winner: neither run's colour
    assert "no data" in plot_paired_difference(table.iloc[:0]).layout.annotations[0].text
