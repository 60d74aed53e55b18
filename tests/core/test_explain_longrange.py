"""Long-range statistics and the history-truncation ablation: exact buckets, shares that add up, and a planted
log where the evidence sits 3-6 events back, so cutting the history to one event must hurt."""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec_core.data.sequences import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.explain import longrange
from seqrec_core.explain.longrange import (
    LAG_BUCKETS,
    TIME_BUCKETS,
    bucket_shares,
    get_longrange_stats,
    get_truncation_ablation,
    lag_bucket,
    share_top_far,
    time_gap_bucket,
)

MAX_LEN = 16


def planted_events(n_users: int = 500, length: int = 24, n_noise: int = 30, n_pairs: int = 4,
                   lag: tuple[int, int] = (3, 6), seed: int = 0) -> pd.DataFrame:
    """Uniform noise items, plus trigger -> response pairs 3-6 events apart; every held-out item is a response."""
    rng = np.random.default_rng(seed)
    seqs = rng.integers(0, n_noise, (n_users, length))
    for u in range(n_users):
        end = length - 1
        for _ in range(3):  # the held-out event, then two pairs inside the training part
            p, gap = int(rng.integers(0, n_pairs)), int(rng.integers(lag[0], lag[1] + 1))
            if end - gap < 0:
                break
            seqs[u, end], seqs[u, end - gap] = n_noise + n_pairs + p, n_noise + p
            end = end - gap - 1 - (2 if end == length - 1 else 0)
    users = np.repeat([f"u{u:04d}" for u in range(n_users)], length)
    hours = np.tile(np.arange(length), n_users) * 3600 * 5  # one event every 5 hours
    return pd.DataFrame({"user_id": pd.array(users, dtype="str"),
                         "item_id": pd.array([f"i{i:03d}" for i in seqs.ravel()], dtype="str"),
                         "timestamp": pd.to_datetime(1_700_000_000 + hours, unit="s", utc=True)})


@functools.cache
def _planted_run():
    """Trained once per test process (the faithfulness tests share it): a one-layer SASRec, ~3 s of training
    on the planted log, test HR@1 about 0.65 with the whole window and 0 with the last event only."""
    from seqrec_core.models import build_model
    from seqrec_core.runs import Run
    from seqrec_core.training import TrainConfig, train_model

    data = build_sequences(planted_events())
    torch.manual_seed(0)
    model = build_model("sasrec", data.vocab.n_items, hidden_size=32, num_layers=1, num_heads=1, max_len=MAX_LEN,
                        dropout=0.1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is as fast, and far faster when the cores are shared
    try:
        train_model(model, data, TrainConfig(epochs=15, batch_size=64, lr=5e-3, max_len=MAX_LEN, device="cpu",
                                             seed=0, patience=30, eval_every=5))
    finally:
        torch.set_num_threads(threads)
    model.eval()
    run = Run(path=Path("planted"), config={"family": "sasrec", "model": model.config.to_dict()},
              vocab=data.vocab, model=model, metrics={}, history=[])
    return run, data


@pytest.fixture(scope="module")
def planted():
    return _planted_run()


# ------------------------------------------------------------------------------------------ buckets
def test_lag_buckets_have_exact_boundaries():
    lags = np.array([1, 2, 5, 6, 20, 21, 50, 51, 500])
    labels = [LAG_BUCKETS[b] for b in lag_bucket(lags)]
    assert labels == ["1", "2-5", "2-5", "6-20", "6-20", "21-50", "21-50", ">50", ">50"]
    with pytest.raises(ValueError):
        lag_bucket(np.array([0]))


def test_time_gap_buckets_have_exact_boundaries():
    h, d = 3600, 86400
    gaps = np.array([-5, 0, h - 1, h, d - 1, d, 7 * d - 1, 7 * d, 30 * d - 1, 30 * d, 400 * d])
    labels = [TIME_BUCKETS[b] for b in time_gap_bucket(gaps)]
    assert labels == ["<1 h", "<1 h", "<1 h", "1 h-1 d", "1 h-1 d", "1-7 d", "1-7 d", "7-30 d", "7-30 d",
                      ">30 d", ">30 d"]


def test_bucket_shares_sum_to_one_and_weigh_each_prediction_equally():
    rng = np.random.default_rng(0)
    attrs = [rng.normal(size=n) * scale for n, scale in ((3, 1.0), (60, 100.0), (25, 0.01))]
    table = bucket_shares(attrs, [lag_bucket(longrange.lags_of(len(a))) for a in attrs], LAG_BUCKETS)
    assert list(table["bucket"]) == list(LAG_BUCKETS)
    assert table["share_of_abs_attribution"].sum() == pytest.approx(1.0)
    assert table["share_of_events"].sum() == pytest.approx(1.0)
    assert table["events"].sum() == 88
    # By hand: |1| at lag 3 and |-3| at lag 1 -> 0.75 in "1"; a second user all at lag 1; a zero user is skipped.
    hand = [np.array([1.0, 0.0, -3.0]), np.array([0.0, 2.0]), np.zeros(4)]
    table = bucket_shares(hand, [lag_bucket(longrange.lags_of(len(a))) for a in hand], LAG_BUCKETS)
    shares = dict(zip(table["bucket"], table["share_of_abs_attribution"], strict=True))
    assert shares["1"] == pytest.approx((0.75 + 1.0) / 2)
    assert shares["2-5"] == pytest.approx(0.25 / 2)
    assert shares[">50"] == 0.0


def test_share_top_far_uses_the_largest_signed_value():
    far = np.zeros(30)
    far[5] = 2.0  # lag 25
    near = np.zeros(30)
    near[-1], near[0] = 1.0, -5.0  # the big negative one far back does not count as "most attributed"
    assert share_top_far([far, near]) == pytest.approx(0.5)
    assert share_top_far([near]) == 0.0


# -------------------------------------------------------------------------------------- statistics
def test_longrange_stats_plumbing_with_a_fake_attribution(planted, monkeypatch):
    """All attribution on the oldest event the model sees: shares, far share and time gaps follow exactly."""
    from seqrec_core.explain import attribution

    run, data = planted
    seen = []

    def fake(model, histories, targets, method="ig", *, steps=20, batch_size=64, progress=None):
        seen.append((len(histories), method, steps))
        out = []
        for h in histories:
            a = np.zeros(min(len(h), MAX_LEN))
            a[0] = 1.0
            out.append(a)
            if progress is not None and (len(out) % batch_size == 0 or len(out) == len(histories)):
                progress(len(out), len(histories))  # like the real engine: after each batch
        return out

    monkeypatch.setattr(attribution, "attribute_batch", fake)
    calls = []
    stats = get_longrange_stats(run, data, n_users=40, method="occlusion", steps=7, batch_size=16,
                                progress=lambda d, t: calls.append((d, t)))
    assert stats.users == 40 and stats.method == "occlusion"
    assert sum(n for n, _, _ in seen) == 40 and all(m == "occlusion" and s == 7 for _, m, s in seen)
    shares = dict(zip(stats.by_lag["bucket"], stats.by_lag["share_of_abs_attribution"], strict=True))
    assert shares["6-20"] == pytest.approx(1.0)  # every window is 16 events: oldest lag 16
    assert stats.share_top_ge20 == 0.0
    # events 16 steps back at 5 h per step: 80 h = 3.3 days before the held-out event
    gaps = dict(zip(stats.by_time_gap["bucket"], stats.by_time_gap["share_of_abs_attribution"], strict=True))
    assert gaps["1-7 d"] == pytest.approx(1.0)
    assert calls[-1][0] == calls[-1][1] and all(b[0] >= a[0] for a, b in zip(calls, calls[1:], strict=False))
    assert len(stats.attention_distance) == 1  # one layer x one head
    no_time = dataclasses.replace(data, has_time=False)
    assert get_longrange_stats(run, no_time, n_users=5, method="ig").by_time_gap.empty


def test_longrange_stats_with_ig_on_the_planted_log(planted):
    run, data = planted
    stats = get_longrange_stats(run, data, n_users=60, method="ig", steps=8, target="heldout")
    assert stats.by_lag["share_of_abs_attribution"].sum() == pytest.approx(1.0)
    assert stats.by_time_gap["share_of_abs_attribution"].sum() == pytest.approx(1.0)
    shares = dict(zip(stats.by_lag["bucket"], stats.by_lag["share_of_abs_attribution"], strict=True))
    assert shares["2-5"] + shares["6-20"] > 0.5  # the triggers sit 3-6 events back
    dist = stats.attention_distance
    assert list(dist.columns) == ["layer", "head", "mean_distance"]
    assert ((dist["mean_distance"] >= 0) & (dist["mean_distance"] < MAX_LEN)).all()
    with pytest.raises(InputError):
        get_longrange_stats(run, data, n_users=5, method="nonsense")


# -------------------------------------------------------------------------------------- truncation
def test_truncation_to_all_equals_the_plain_evaluation(planted):
    from seqrec_core.evaluation import evaluate

    run, data = planted
    table = get_truncation_ablation(run, data, ks=(None, 10_000), max_users=300)
    plain = evaluate(run.scorer(), data, "test", max_users=300).metrics
    assert list(table["k"]) == ["all", "10000"]
    for _, row in table.iterrows():
        assert row["NDCG@10"] == pytest.approx(plain["NDCG@10"], abs=1e-12)
        assert row["HR@10"] == pytest.approx(plain["HR@10"], abs=1e-12)
        assert row["users"] == 300


def test_truncation_to_one_event_hurts_on_a_long_range_log(planted):
    run, data = planted
    calls = []
    table = get_truncation_ablation(run, data, ks=(1, 2, 8, None), progress=lambda d, t: calls.append((d, t)))
    ndcg = dict(zip(table["k"], table["NDCG@10"], strict=True))
    assert ndcg["all"] > 0.4
    assert ndcg["1"] < ndcg["all"] - 0.3
    assert ndcg["2"] < ndcg["all"]  # the triggers sit at least 3 back
    assert table["mean_events_seen"].tolist() == pytest.approx([1, 2, 8, MAX_LEN])
    assert calls[-1][0] == calls[-1][1]
    with pytest.raises(InputError):
        get_truncation_ablation(run, data, ks=(0,))
