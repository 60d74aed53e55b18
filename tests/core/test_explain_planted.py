"""The truth check: when a model has learned a long-range trigger -> response pair (20-40 events apart), IG
puts the planted trigger among the 3 most-attributed events (the issue's bar: hit share >= 0.8).

The log is a small, clean version of the demo's planted pairs (random fillers, 10 pairs, each user with up to
three plantings, the last one ending at the held-out event for half of the users), so that a few seconds of
training learn the pairs; the check itself is the same function the Explain page runs on the demo.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec_core.data.sequences import build_sequences
from seqrec_core.data.synthetic import DemoTruth
from seqrec_core.explain import get_planted_pair_check
from seqrec_core.explain.planted import COLUMNS, planted_cases
from seqrec_core.models import build_model
from seqrec_core.models.batches import batch_order, iterate_batches, training_windows

N_USERS, LENGTH, N_FILL, N_PAIRS, LAGS = 1000, 50, 180, 10, (20, 40)


def planted_log(seed: int = 0) -> tuple[pd.DataFrame, DemoTruth]:
    rng = np.random.default_rng(seed)
    trig = [f"t{p}" for p in range(N_PAIRS)]
    resp = [f"r{p}" for p in range(N_PAIRS)]
    rows, responders = [], []
    for u in range(N_USERS):
        seq = [f"f{k:03d}" for k in rng.integers(0, N_FILL, LENGTH)]
        for _ in range(2):
            lag, p = int(rng.integers(LAGS[0], LAGS[1] + 1)), int(rng.integers(N_PAIRS))
            at = int(rng.integers(lag, LENGTH - 2))
            seq[at - lag], seq[at] = trig[p], resp[p]
        if u % 2:
            lag, p = int(rng.integers(LAGS[0], LAGS[1] + 1)), int(rng.integers(N_PAIRS))
            seq[LENGTH - 1 - lag], seq[LENGTH - 1] = trig[p], resp[p]
            responders.append(f"u{u:04d}")
        rows += [(f"u{u:04d}", item, 1_700_000_000 + 3600 * k) for k, item in enumerate(seq)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    events["timestamp"] = pd.to_datetime(events["timestamp"], unit="s", utc=True)
    truth = DemoTruth(seed=seed, trigger_response=list(zip(trig, resp, strict=True)), response_users=responders)
    return events, truth


@pytest.fixture(scope="module")
def learned():
    events, truth = planted_log()
    data = build_sequences(events)
    torch.manual_seed(0)
    model = build_model("sasrec", data.vocab.n_items, hidden_size=64, num_layers=2, num_heads=2, dropout=0.1,
                        max_len=50, positions="rotary")
    windows, lengths, masked = training_windows([data.train_sequence(u) for u in range(data.n_users)], 50)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a busy 2-core machine wait on each other
    try:
        model.train()
        for _epoch in range(20):  # IG hit share (60 cases) by epoch: 0.72 @ 10, 0.78 @ 14, 0.90 @ 16 and 20
            for x, y in iterate_batches(windows, lengths, batch_order(lengths, 64, rng), masked):
                loss = model(x, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
        model.eval()
    run = SimpleNamespace(model=model, vocab=data.vocab, max_len=50)
    return run, data, truth


@pytest.mark.slow
def test_ig_finds_the_planted_trigger_in_its_top_3(learned) -> None:
    run, data, truth = learned
    cases = planted_cases(run, data, truth, top_k=10)
    assert len(cases) >= 100  # the model did learn the pairs: many held-out responses ranked in its top 10
    assert cases["trigger_lag"].between(*LAGS).all()
    check = get_planted_pair_check(run, data, truth, steps=20, max_cases=60)
    assert list(check.columns) == COLUMNS and len(check) == 60
    assert check["hit"].mean() >= 0.8, check.describe()
    assert (check["hit"] == (check["trigger_attr_rank"] <= 3)).all()


@pytest.mark.slow
def test_occlusion_finds_it_too_and_no_case_gives_an_empty_table(learned) -> None:
    run, data, truth = learned
    occ = get_planted_pair_check(run, data, truth, method="occlusion", max_cases=40)
    # The 0.8 bar is IG's. Occlusion measured 0.77 on this model; top 3 of ~49 events by chance is ~0.06.
    assert occ["hit"].mean() >= 0.6
    none = get_planted_pair_check(run, data, truth, top_k=0)
    assert none.empty and list(none.columns) == COLUMNS
