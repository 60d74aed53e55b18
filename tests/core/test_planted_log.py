"""The planted long-range log (issue 15's test bed): every response sits exactly its pair's lag (+- jitter) after
its trigger, never anywhere else, and the response users' held-out event is one; and the reach verdict that
reads the stored analyses says what the numbers say."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqrec_core.analysis.reach import FAR, describe_reach, long_history_share
from seqrec_core.data.planted_log import PlantedLogConfig, make_planted_events
from seqrec_core.data.sequences import build_sequences
from seqrec_core.errors import InputError

SMALL = PlantedLogConfig(n_users=300, n_fillers=200, n_categories=5, n_pairs=6, lag_range=(20, 40),
                         history_range=(50, 80), plantings=2.0, response_share=0.4, seed=3)


@pytest.fixture(scope="module")
def planted():
    return make_planted_events(SMALL)


def test_each_response_follows_its_trigger_at_the_pair_lag(planted) -> None:
    events, truth = planted
    trigger_of = {r: t for t, r in truth.trigger_response}
    checked = 0
    for _user, group in events.groupby("user_id", sort=False):
        items = group["item_id"].to_numpy()
        for pos in np.flatnonzero(np.isin(items, list(trigger_of))):
            response = items[pos]
            lag = truth.pair_lag[response]
            before = np.flatnonzero(items[:pos] == trigger_of[response])
            assert len(before) == 1, "each pair is planted at most once per user"
            assert abs((pos - before[0]) - lag) <= SMALL.jitter
            assert SMALL.lag_range[0] <= pos - before[0] <= SMALL.lag_range[1]
            checked += 1
    assert checked >= SMALL.n_users * 1.5  # about plantings + response_share per user


def test_the_response_users_end_on_a_response_and_no_one_else_does(planted) -> None:
    events, truth = planted
    responses = {r for _t, r in truth.trigger_response}
    last = events.groupby("user_id", sort=False)["item_id"].last()
    ends_on_response = set(last.index[last.isin(responses)])
    assert ends_on_response == set(truth.response_users)
    assert 0.3 <= len(truth.response_users) / SMALL.n_users <= 0.5  # response_share 0.4


def test_the_log_is_deterministic_and_seeded(planted) -> None:
    again, _ = make_planted_events(SMALL)
    pd.testing.assert_frame_equal(planted[0], again)
    other, _ = make_planted_events(PlantedLogConfig(**{**SMALL.__dict__, "seed": 4}))
    assert not planted[0]["item_id"].equals(other["item_id"])
    assert planted[0].groupby("user_id").size().between(*SMALL.history_range).all()
    assert planted[0].groupby("user_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()


@pytest.mark.parametrize("bad", [{"lag_range": (0, 5)}, {"history_range": (2, 10)}, {"n_pairs": 0},
                                 {"response_share": 1.5}])
def test_impossible_logs_are_refused(bad) -> None:
    with pytest.raises(InputError):
        PlantedLogConfig(**bad)


def ablation(all_: float, recent: float) -> pd.DataFrame:
    return pd.DataFrame({"k": ["1", "5", str(FAR), "all"], "NDCG@10": [recent / 2, recent * 0.9, recent, all_]})


def test_reach_says_the_model_looks_far_back_when_old_events_lift_the_ranking() -> None:
    reach = describe_reach(ablation(0.27, 0.18), 0.43, 0.9, 50)
    assert reach.verdict == "uses_far" and reach.advice is None
    assert reach.relative_gain == pytest.approx(0.5)
    assert "0.180" in reach.message and "0.270" in reach.message and "43%" in reach.message


def test_reach_warns_when_long_histories_go_unused_and_says_what_to_try() -> None:
    learned = {"positions": "learned", "dropout": 0.2, "item_dropout": 0.0}
    reach = describe_reach(ablation(0.207, 0.2005), 0.53, 0.9, 50, learned)
    assert reach.verdict == "recent_only"
    assert "90% of the users" in reach.message and "53%" in reach.message
    assert "--time-budget" in reach.advice and "--positions rotary" in reach.advice
    assert "--dropout 0.1" in reach.advice  # this run's 0.2 is more than learned the planted pairs
    rotary = describe_reach(ablation(0.207, 0.2005), 0.53, 0.9, 50, {"positions": "rotary", "dropout": 0.1})
    assert "--positions" not in rotary.advice and "--dropout" not in rotary.advice


def test_reach_on_short_histories_or_a_short_window_gives_no_false_alarm() -> None:
    assert describe_reach(ablation(0.05, 0.05), 0.01, 0.05, 50).verdict == "short_histories"
    short_window = describe_reach(None, None, 0.9, 10)
    assert short_window.verdict == "short_histories" and "--max-len" in short_window.advice
    assert describe_reach(None, None, 0.9, 50).verdict == "not_measured"


def test_long_history_share_counts_windows_longer_than_far(planted) -> None:
    data = build_sequences(planted[0])
    assert long_history_share(data, max_len=50) == 1.0  # every history has >= 48 events before the test one
    assert long_history_share(data, max_len=FAR) == 0.0  # a window of 20 never holds more than 20


# ------------------------------------------------------------------------------------ defaults from the log
def test_regularisation_follows_the_logs_density() -> None:
    from seqrec_core.training.from_log import DENSE, SPARSE, regularisation_for

    assert regularisation_for(16.4) == SPARSE  # Amazon Beauty keeps the settings measured best on it
    assert regularisation_for(5) == SPARSE
    assert regularisation_for(250) == DENSE == regularisation_for(600)  # the planted logs (220-430 events per item)
    # The demo (120): no item dropout yet, but dropout 0.2, with which it finds its pairs (0.1 does not; issue 15).
    assert regularisation_for(120) == {"dropout": 0.2, "item_dropout": 0.0}
    middle = regularisation_for(45)
    assert DENSE["dropout"] < middle["dropout"] < SPARSE["dropout"]
    assert all(round(v / 0.05) * 0.05 == pytest.approx(v) for v in middle.values())
    dropouts = [regularisation_for(d)["dropout"] for d in (16, 30, 60, 120, 180, 250)]
    assert dropouts == sorted(dropouts, reverse=True)  # less dropout the more evidence per item


def test_only_options_left_unset_are_derived(planted) -> None:
    from seqrec_core.training.from_log import events_per_item, model_options_from_log, regularisation_for

    data = build_sequences(planted[0])
    density = events_per_item(data)
    assert density == pytest.approx(sum(len(data.train_sequence(u)) for u in range(data.n_users)) / data.vocab.n_items)
    derived = regularisation_for(density)  # ~90 events per item: between the sparse and the dense settings
    assert derived["dropout"] < 0.4 and derived["item_dropout"] < 0.2
    assert model_options_from_log("sasrec", data, {}) == derived
    assert model_options_from_log("sasrec", data, {"dropout": 0.3}) == {**derived, "dropout": 0.3}
    assert model_options_from_log("sasrec", data, {"item_dropout": None}) == derived  # None = unset
    assert model_options_from_log("gru4rec", data, {"hidden_size": 32}) == {"hidden_size": 32}


def test_auto_batch_keeps_about_a_thousand_targets_a_step() -> None:
    from seqrec_core.training.config import TrainConfig, auto_batch_size, resolve_batch_size

    assert auto_batch_size(6.9) == 128  # Beauty's windows: the batch measured best there
    assert auto_batch_size(40) == 32 == auto_batch_size(120)  # the demo's and long histories: more, smaller steps
    assert auto_batch_size(20) == 64
    assert resolve_batch_size(TrainConfig(), n_windows=1000, n_targets=40_000).batch_size == 32
    assert resolve_batch_size(TrainConfig(batch_size=256), 1000, 40_000).batch_size == 256  # set = kept
    assert TrainConfig.from_dict({"batch_size": None}).batch_size is None
    assert resolve_batch_size(TrainConfig(), 1000, 40_000, cap=8).batch_size == 8  # a dense log's cap
    assert resolve_batch_size(TrainConfig(), 1000, 5_000, cap=64).batch_size == 64
    assert resolve_batch_size(TrainConfig(batch_size=256), 1000, 40_000, cap=8).batch_size == 256  # set = kept


def test_dense_logs_cap_the_automatic_batch(planted) -> None:
    from seqrec_core.training.from_log import batch_cap_for, batch_cap_from_log, events_per_item

    assert batch_cap_for(12.7) == batch_cap_for(10.2) == 128  # Beauty, ml-latest-small: no cap below 128
    assert batch_cap_for(120) == batch_cap_for(430) == 8  # the demo, the planted logs: many small steps
    caps = [batch_cap_for(d) for d in (16, 25, 40, 60, 100)]
    assert caps == sorted(caps, reverse=True) and all(c & (c - 1) == 0 for c in caps)  # powers of two, falling
    data = build_sequences(planted[0])
    assert batch_cap_from_log("sasrec", data) == batch_cap_for(events_per_item(data))
    assert batch_cap_from_log("gru4rec", data) is None  # only families whose defaults follow the log


def test_dense_logs_wait_longer_before_stopping(planted) -> None:
    from seqrec_core.training.config import TrainConfig
    from seqrec_core.training.from_log import events_per_item, patience_for, patience_from_log

    assert patience_for(12.7) == patience_for(10.2) == 10  # Beauty, ml-latest-small: as measured on Beauty
    assert patience_for(120) == patience_for(430) == 40  # the demo, the planted logs: slow structure keeps coming
    steps = [patience_for(d) for d in (16, 25, 40, 60, 100)]
    assert steps == sorted(steps) and all(p % 5 == 0 for p in steps)
    data = build_sequences(planted[0])
    assert patience_from_log("sasrec", data) == patience_for(events_per_item(data))
    assert patience_from_log("gru4rec", data) == 10  # families whose defaults do not follow the log
    assert TrainConfig().patience is None and TrainConfig(patience=3).patience == 3
    with pytest.raises(InputError, match="patience"):
        TrainConfig(patience=0)
