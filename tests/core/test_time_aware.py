"""Time-aware SASRec: times reach the scores, no later item leaks, order-only logs are refused, runs round-trip,
and evaluate / recommend / explain / counterfactuals work with a time-aware run (IG completeness with times fixed)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from timed_log import T0, hourly_events, train_timed_run

from seqrec_core.data.sequences import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.models import NeuralScorer, build_model, model_from_config, pad_left
from seqrec_core.models.batches import iterate_batches, training_time_windows, training_windows
from seqrec_core.models.time_features import (
    GAP_EDGES_SECONDS,
    day_of_week,
    default_query_time,
    gap_bucket,
    hour_of_day,
    pad_times_left,
    split_times,
)

N_ITEMS = 30


def tiny(**kw):
    """A small time-aware model whose time tables are random (they start at zero, i.e. as plain SASRec)."""
    torch.manual_seed(0)
    opts = {"hidden_size": 16, "num_layers": 2, "num_heads": 2, "max_len": 12, "time_features": True, **kw}
    model = build_model("sasrec", N_ITEMS, **opts).eval()
    if model.time_emb is not None:
        for emb in model.time_emb.children():
            torch.nn.init.normal_(emb.weight, std=0.1)
    return model


@pytest.fixture(scope="module")
def data():
    return build_sequences(hourly_events())


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    return train_timed_run(data, tmp_path_factory.mktemp("runs") / "timed", epochs=3, max_len=12, num_heads=1)


# ------------------------------------------------------------------------------------------- the features
def test_calendar_and_gap_buckets() -> None:
    t = torch.tensor([0, 3600 * 5 + 59, T0])  # Thu 00:00, Thu 05:00, Tue 22:13
    assert hour_of_day(t).tolist() == [1, 6, 23]  # 1 + hour (0 = unknown)
    assert day_of_week(t).tolist() == [4, 4, 2]  # 1 = Monday
    gaps = torch.tensor([-5, 0, 59, 60, 299, 86_399, 86_400, 10**8])
    assert gap_bucket(gaps).tolist() == [1, 1, 1, 2, 2, 6, 7, len(GAP_EDGES_SECONDS) + 1]
    assert default_query_time(np.array([100, 160, 400])) == 400 + 150  # last + median gap
    assert default_query_time(np.array([100])) == 100


def test_only_times_change_the_scores() -> None:
    model = tiny()
    ids = pad_left([np.array([3, 7, 9, 11])], 12)  # (1, 4)
    base = np.array([T0, T0 + 60, T0 + 3600, T0 + 7200, T0 + 7300])
    with torch.no_grad():
        a = model.score(ids, times=pad_times_left([base], 12))
        later_query = base.copy()
        later_query[-1] += 9 * 3600  # only the request time moves (another hour of day)
        b = model.score(ids, times=pad_times_left([later_query], 12))
        shifted = base + 3 * 86_400 + 5 * 3600  # the whole history on another day and hour, same gaps
        c = model.score(ids, times=pad_times_left([shifted], 12))
    assert not torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-4)
    plain = build_model("sasrec", N_ITEMS, hidden_size=16, num_layers=2, num_heads=2, max_len=12)
    assert not plain.uses_time and model.uses_time


def test_no_later_item_leaks_and_query_time_is_the_next_events() -> None:
    model = tiny()
    x = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5]])
    t = torch.tensor([[0, 0] + [T0 + 1000 * k for k in range(7)]])  # (1, 9): events, then the query time
    y = x.clone()
    y[0, 5:] = torch.tensor([30, 29, 28])  # later items change
    with torch.no_grad():
        hx, hy = model.forward_hidden(x, times=t).hidden, model.forward_hidden(y, times=t).hidden
        assert torch.allclose(hx[:, :5], hy[:, :5], atol=1e-6)  # positions 0..4 never see items 5..7
        # Moving event 5's time changes position 4 (event 5 is its query) and later, never positions before 4.
        t2 = t.clone()
        t2[0, 5] += 5 * 3600
        h2 = model.forward_hidden(x, times=t2).hidden
    assert torch.allclose(hx[:, :4], h2[:, :4], atol=1e-6)
    assert not torch.allclose(hx[:, 4], h2[:, 4], atol=1e-4)


def test_more_left_padding_gives_the_same_scores() -> None:
    model = tiny()
    hists = [np.array([4, 8, 15]), np.array([16])]
    times = [np.array([T0, T0 + 50, T0 + 4000, T0 + 9000]), np.array([T0, T0 + 86_400])]
    with torch.no_grad():
        a = model.score(pad_left(hists, 12), times=pad_times_left(times, 12))
        b = model.score(pad_left(hists, 12, width=9), times=pad_times_left(times, 12, width=9))
    assert torch.allclose(a[:, 1:], b[:, 1:], atol=1e-5)


def test_training_time_windows_follow_the_item_windows() -> None:
    seqs = [np.arange(1, 31), np.array([5, 6, 7])]
    times = [T0 + 100 * np.arange(30), np.array([T0, T0 + 1, T0 + 2])]
    windows, lengths, masked = training_windows(seqs, 8)
    tw = training_time_windows(times, 8)
    assert tw.shape == windows.shape
    np.testing.assert_array_equal(tw != 0, windows != 0)
    for w_row, t_row in zip(windows, tw, strict=True):  # item k sits at time T0 + 100 * (k - 1) in sequence 0
        if w_row[-1] > 7:
            np.testing.assert_array_equal(t_row[w_row != 0], T0 + 100 * (w_row[w_row != 0] - 1))
    inputs, targets, tb = next(iterate_batches(windows, lengths, [np.array([0])], masked, tw))
    assert tb.shape == (1, inputs.shape[1] + 1)  # inputs' times, then the last target's
    assert tb[0, -1] == T0 + 100 * (int(targets[0, -1]) - 1)


# --------------------------------------------------------------------------------------------- refusals
def test_order_only_logs_are_refused() -> None:
    from seqrec_core.evaluation import evaluate
    from seqrec_core.training import TrainConfig, train_model

    plain = build_sequences(hourly_events(20, with_time=False))
    assert not plain.has_time
    with pytest.raises(InputError, match="time-features") as err:
        train_model(tiny(), plain, TrainConfig(epochs=1, max_len=12))
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="timestamps"):
        evaluate(NeuralScorer(tiny(), 12), plain, "test")


def test_a_time_aware_scorer_wants_times() -> None:
    scorer = NeuralScorer(tiny(), 12)
    assert scorer.uses_time
    with pytest.raises(InputError, match="times"):
        scorer.score_histories([np.array([1, 2, 3])])
    with pytest.raises(InputError, match="needs 4 times"):
        scorer.score_histories([np.array([1, 2, 3])], times=[np.array([T0, T0 + 1, T0 + 2])])
    out = scorer.score_histories([np.array([1, 2, 3])], times=[np.array([T0, T0 + 1, T0 + 2, T0 + 3])])
    assert out.shape == (1, N_ITEMS + 1)
    assert not NeuralScorer(tiny(time_features=False), 12).uses_time


# ------------------------------------------------------------------------------------- a time-aware run
def test_run_round_trip_and_evaluation(run, data) -> None:
    from seqrec_core.evaluation import evaluate

    assert run.config["model"]["time_features"] is True
    rebuilt = model_from_config(run.config["model"])
    assert rebuilt.uses_time
    rebuilt.load_state_dict(run.model.state_dict())
    split = data.split("test")
    hists, times = split.histories[:5], split_times(data, split)[:5]
    np.testing.assert_array_equal(run.scorer().score_histories(hists, times=times),
                                  NeuralScorer(rebuilt.eval(), 12).score_histories(hists, times=times))
    res = evaluate(run.scorer(), data, "test")
    assert res.metrics["NDCG@10"] == pytest.approx(run.metrics["test"]["NDCG@10"], abs=1e-6)


def test_recommendations_use_the_request_time(run, data) -> None:
    from seqrec_core.evaluation import evaluate
    from seqrec_core.recommend import get_all_recommendations, get_heldout_rank, get_recommendations

    user = data.vocab.user_ids[0]
    scorer = run.scorer()
    morning = int(data.times[0][-1]) // 86_400 * 86_400 + 8 * 3600 + 86_400
    evening = morning + 12 * 3600
    a = get_recommendations(scorer, data, user, k=5, holdout=False, query_time=morning)
    b = get_recommendations(scorer, data, user, k=5, holdout=False, query_time=evening)
    assert len(a) == 5 and not np.allclose(a["score"].to_numpy(), b["score"].to_numpy())
    held = get_heldout_rank(scorer, data, user, exclude_seen=False)
    res = evaluate(scorer, data, "test")
    assert held["rank"] == int(res.ranks[list(res.users).index(0)])  # the same query time as evaluation
    every = get_all_recommendations(scorer, data, k=3)
    assert len(every) == 3 * data.n_users


def test_explain_holds_times_fixed_and_ig_is_complete(run, data) -> None:
    from seqrec_core.explain import attribute, attribute_batch_full

    user = data.vocab.user_ids[1]
    res = attribute(run, data, user, "heldout", "ig", steps=64, refine=False)
    assert res.note and "time features held fixed" in res.note
    assert res.to_json()["note"] == res.note and res.to_json()["query_time"].endswith("Z")
    assert res.scores.sum() == pytest.approx(res.target_score - res.baseline_score, abs=2e-2 + 0.02 * abs(
        res.target_score - res.baseline_score))
    split = data.split("test")
    hists, times = split.histories[:4], split_times(data, split)[:4]
    full = attribute_batch_full(run.model, hists, split.targets[:4], "ig", steps=64, times=times)
    gap = full.target_scores - full.baseline_scores
    sums = np.array([s.sum() for s in full.scores])
    np.testing.assert_allclose(sums, gap, atol=2e-2 + 0.02 * np.abs(gap).max())
    with pytest.raises(InputError, match="times"):
        attribute_batch_full(run.model, hists, split.targets[:4], "ig", steps=4)
    for method in ("occlusion", "gradshap", "attention"):
        out = attribute(run, data, user, "heldout", method, steps=8)
        assert np.isfinite(out.scores).all() and len(out.scores) == len(out.item_ids)
    # Occlusion blanks an item in place: its attribution is the score drop with that item's vector zeroed.
    occ = attribute(run, data, user, "heldout", "occlusion")
    assert occ.note and np.abs(occ.scores).max() > 0


def test_counterfactual_times_follow_the_edit(run, data) -> None:
    from seqrec_core.explain import rescore_edited
    from seqrec_core.explain.counterfactual import edited_times

    items, times = np.array([5, 6, 7, 8]), np.array([10, 20, 30, 40])
    np.testing.assert_array_equal(edited_times(items, times, np.array([5, 7, 8])), [10, 30, 40])  # delete
    np.testing.assert_array_equal(edited_times(items, times, np.array([5, 6, 9, 7, 8])), [10, 20, 20, 30, 40])
    np.testing.assert_array_equal(edited_times(items, times, np.array([9, 5, 6, 7, 8])), [10, 10, 20, 30, 40])
    np.testing.assert_array_equal(edited_times(items, times, np.array([8, 7, 6, 5])), times)  # reorder: slots
    user = data.vocab.user_ids[2]
    hist = [data.vocab.item_id(i) for i in data.sequences[2][:-1]]
    same = rescore_edited(run, data, user, hist, "heldout", k=5)
    assert same["target_rank_before"] == same["target_rank_after"]
    assert same["target_score_after"] == pytest.approx(same["target_score_before"], abs=1e-5)
    cut = rescore_edited(run, data, user, hist[:-1], "heldout", k=5)
    assert cut["target_score_after"] != pytest.approx(cut["target_score_before"], abs=1e-6)


def test_cli_and_form_offer_the_options() -> None:
    from seqrec_core.cli import build_parser

    args = build_parser().parse_args(["train", "--data", "demo", "--model", "sasrec", "--out", "x",
                                      "--time-features", "--loss", "gbce", "--gbce-t", "0.5"])
    assert args.time_features is True and args.loss == "gbce" and args.gbce_t == 0.5
    plain = build_parser().parse_args(["train", "--data", "demo", "--model", "sasrec", "--out", "x"])
    assert plain.time_features is None  # unset flags are not passed: the config's default applies
    from ui.family_form import family_fields

    basic, advanced = family_fields("sasrec")
    specs = {s.name: s for s in basic + advanced}
    assert specs["time_features"].kind is bool and "query" in specs["time_features"].help
    assert {"bce", "gbce"} <= set(specs["loss"].choices) and "gSASRec" in specs["loss"].help
    assert specs["gbce_t"].kind is float
