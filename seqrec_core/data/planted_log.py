"""A log with long-range trigger -> response pairs and nothing else to find: the test bed for "does training with
the defaults learn dependencies that lie far back?" (issue 15).

Unlike the demo (:mod:`seqrec_core.data.synthetic`, which plants many kinds of structure for the pages to show),
this generator is for controlled experiments: every knob that decides how hard the pairs are to learn is a
parameter (number of pairs, the lag range, how many fillers, history lengths, how often a pair is planted).

- Fillers: ``n_fillers`` ordinary items in ``n_categories`` categories; a user's events are half from a favourite
  category, half from global (Zipf) popularity, so there is ordinary taste to lean on; with ``successor_share``
  that share of events is the fixed successor of the event before (short-range structure that pulls a model
  towards the last event).
- Pairs: after a trigger item, its response item follows ``lag`` events later, where each pair has its own lag
  inside ``lag_range`` (+-``jitter``): a consumable that runs out after about the same use. A response never
  occurs otherwise, and a user gets each pair at most once (a response is never "used up" in between).
- Held-out responses: for ``response_share`` of the users (with histories long enough), the last event (the
  test event of leave-one-out) is a planted response and its trigger sits ``lag`` events before it. Every user
  also has ``plantings`` pairs (on average) planted in the training part, which is what a model learns from.

Returns the canonical event table (user_id, item_id, timestamp) and a :class:`PlantedTruth`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from seqrec_core.errors import InputError

START = pd.Timestamp("2024-01-01", tz="UTC")


@dataclass(frozen=True)
class PlantedLogConfig:
    """Everything that decides how a planted log looks. The defaults are issue 15's bar log: 4,000 users, 12 pairs
    20-40 events apart, histories of 60-160 events (trained with --max-len 128)."""

    n_users: int = 4000
    n_fillers: int = 1000
    n_categories: int = 20
    n_pairs: int = 12
    lag_range: tuple[int, int] = (20, 40)
    jitter: int = 2
    history_range: tuple[int, int] = (60, 160)  # events per user, drawn uniformly
    plantings: float = 3.0  # mean planted pairs per user in the training part
    response_share: float = 0.25  # users whose held-out (last) event is a planted response
    favourite_share: float = 0.5
    # Share of filler events that are the fixed successor of the event before (item A -> its B): strong short-range
    # structure, so that leaning on the last event alone already predicts well (as in many real logs) and the
    # pairs must be learned against that pull.
    successor_share: float = 0.3
    pop_exponent: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("lag_range", "history_range"):  # JSON (a bench's --log) gives lists: keep the config hashable
            object.__setattr__(self, name, tuple(getattr(self, name)))
        lo, hi = self.lag_range
        if not 1 <= lo <= hi:
            raise InputError(f"lag_range {self.lag_range} must be 1 <= low <= high")
        if self.jitter < 0 or self.jitter * 2 > hi - lo + 2 * self.jitter or lo - self.jitter < 1:
            raise InputError(f"jitter {self.jitter} does not fit the lag range {self.lag_range}")
        if not 3 <= self.history_range[0] <= self.history_range[1]:
            raise InputError(f"history_range {self.history_range} must be 3 <= low <= high")
        if self.n_pairs < 1 or self.n_fillers < self.n_categories or self.n_categories < 1 or self.n_users < 1:
            raise InputError("a planted log needs n_pairs >= 1, n_users >= 1 and n_fillers >= n_categories >= 1")
        if not 0 <= self.response_share <= 1 or self.plantings < 0 or not 0 <= self.successor_share <= 1:
            raise InputError("response_share and successor_share must be in [0, 1] and plantings >= 0")


@dataclass
class PlantedTruth:
    """What was planted; ``trigger_response`` is what :mod:`seqrec_core.explain.planted` checks."""

    config: PlantedLogConfig
    trigger_response: list[tuple[str, str]] = field(default_factory=list)
    pair_lag: dict[str, int] = field(default_factory=dict)  # response id -> its pair's central lag
    response_users: list[str] = field(default_factory=list)  # users whose last event is a planted response


def make_planted_events(config: PlantedLogConfig | None = None) -> tuple[pd.DataFrame, PlantedTruth]:
    """The planted log as an event table and what was planted in it (deterministic for a config)."""
    cfg = config or PlantedLogConfig()
    rng = np.random.default_rng(cfg.seed)
    n_items = cfg.n_fillers + 2 * cfg.n_pairs
    triggers = np.arange(cfg.n_fillers, cfg.n_fillers + cfg.n_pairs)  # item numbers after the fillers
    responses = triggers + cfg.n_pairs
    category = rng.integers(0, cfg.n_categories, cfg.n_fillers)  # (F,)
    pop = 1.0 / (1 + rng.permutation(cfg.n_fillers)) ** cfg.pop_exponent  # (F,)
    glob_cdf = np.cumsum(pop) / pop.sum()
    cat_cdfs = []
    for c in range(cfg.n_categories):
        members = np.flatnonzero(category == c)
        weights = pop[members] if len(members) else np.ones(0)
        cat_cdfs.append((members, np.cumsum(weights) / max(weights.sum(), 1e-12)))
    successor = rng.permutation(cfg.n_fillers)  # (F,) each filler's fixed follower
    lo, hi = cfg.lag_range
    pair_lag = rng.integers(lo + cfg.jitter, hi - cfg.jitter + 1, cfg.n_pairs) if hi - lo >= 2 * cfg.jitter else \
        np.full(cfg.n_pairs, (lo + hi) // 2)

    users, items_out, times_out, response_users = [], [], [], []
    t0 = int(START.timestamp())
    for u in range(cfg.n_users):
        n = int(rng.integers(cfg.history_range[0], cfg.history_range[1] + 1))
        favourite = cat_cdfs[int(rng.integers(cfg.n_categories))]
        draw = rng.random(n)
        from_fav = (rng.random(n) < cfg.favourite_share) & (len(favourite[0]) > 0)
        seq = np.where(from_fav, favourite[0][np.minimum(np.searchsorted(favourite[1], draw), len(favourite[0]) - 1)]
                       if len(favourite[0]) else 0, np.minimum(np.searchsorted(glob_cdf, draw), cfg.n_fillers - 1))
        follows = np.flatnonzero(rng.random(n) < cfg.successor_share)
        follows = follows[follows > 0]
        for j in follows:  # in order: a chain A -> B -> C follows itself
            seq[j] = successor[seq[j - 1]]
        taken = np.zeros(n, dtype=bool)
        pairs = rng.permutation(cfg.n_pairs)  # each pair at most once per user
        used = 0

        def lag_of(p: int) -> int:
            return int(pair_lag[p] + rng.integers(-cfg.jitter, cfg.jitter + 1))

        if rng.random() < cfg.response_share and n - 1 - (hi + cfg.jitter) >= 0:
            p = int(pairs[used])
            used += 1
            lag = lag_of(p)
            seq[n - 1 - lag], seq[n - 1] = triggers[p], responses[p]
            taken[[n - 1 - lag, n - 1]] = True
            response_users.append(u)
        # Earlier plantings end before the test event (a response may be the validation event).
        for _ in range(int(rng.poisson(cfg.plantings))):
            if used >= cfg.n_pairs:
                break
            p = int(pairs[used])
            lag = lag_of(p)
            last_response = n - 2
            if last_response - lag < 0:
                continue
            r = int(rng.integers(lag, last_response + 1))
            if taken[r] or taken[r - lag]:
                continue
            # A response must not land between an earlier planted trigger of the same pair and its response:
            # pairs are distinct per user, so only the slots matter.
            seq[r - lag], seq[r] = triggers[p], responses[p]
            taken[[r - lag, r]] = True
            used += 1
        gaps = rng.exponential(3600.0, n).astype(np.int64) + 1
        users.append(np.full(n, u))
        items_out.append(seq)
        times_out.append(t0 + u * 7 + np.cumsum(gaps))
    user_of = np.concatenate(users)
    items = np.concatenate(items_out)
    width = len(str(n_items))
    item_ids = np.array([f"i{k:0{width}d}" for k in rng.permutation(n_items) + 1], dtype=object)
    user_ids = np.array([f"u{k:0{max(4, len(str(cfg.n_users)))}d}" for k in range(1, cfg.n_users + 1)],
                        dtype=object)
    events = pd.DataFrame({
        "user_id": pd.array(user_ids[user_of], dtype="str"),
        "item_id": pd.array(item_ids[items], dtype="str"),
        "timestamp": pd.to_datetime(np.concatenate(times_out), unit="s", utc=True).astype("datetime64[ns, UTC]"),
    })
    truth = PlantedTruth(
        config=cfg,
        trigger_response=[(str(item_ids[t]), str(item_ids[r])) for t, r in zip(triggers, responses, strict=True)],
        pair_lag={str(item_ids[r]): int(lag) for r, lag in zip(responses, pair_lag, strict=True)},
        response_users=[str(user_ids[u]) for u in response_users],
    )
    return events, truth
