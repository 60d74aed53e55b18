"""The truth check on the demo log: do attributions find the planted trigger of a long-range pair?

The demo plants trigger -> response pairs 20-40 events apart (``DemoTruth.trigger_response``). For every user
whose held-out item is a planted response that the model ranks in its top ``top_k``, the model must have used
the trigger; a trustworthy attribution method then puts the trigger among its ``top_attr`` highest events.
The issue's bar: a hit share >= 0.8 with IG.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from seqrec_core.data.planted_log import PlantedTruth
from seqrec_core.data.sequences import SequenceData, Split
from seqrec_core.data.synthetic import DemoTruth
from seqrec_core.errors import InputError
from seqrec_core.explain.attribution import attribute_batch, check_same_catalogue
from seqrec_core.explain.longrange import heldout_times
from seqrec_core.models.neural import NeuralScorer

log = logging.getLogger(__name__)

COLUMNS = ["user", "response", "trigger", "response_rank", "trigger_lag", "trigger_attr_rank", "hit"]


def planted_cases(run, data: SequenceData, truth: DemoTruth | PlantedTruth, top_k: int | None = 10) -> pd.DataFrame:
    """Users whose held-out item is a planted response ranked in the model's top_k (full catalogue, no
    exclusion: a response never occurs earlier in a history), with the trigger inside the model's window.
    ``top_k=None`` keeps every such user whatever the rank (what :func:`get_planted_recall` counts)."""
    check_same_catalogue(run.vocab, data)
    vocab = data.vocab
    pairs = {}
    for trig, resp in truth.trigger_response:
        try:
            pairs[vocab.item_index(resp)] = vocab.item_index(trig)
        except InputError:  # an item that prep removed from the log
            continue
    split = data.split("test")
    is_resp = np.isin(split.targets, np.fromiter(pairs, dtype=np.int64, count=len(pairs)))
    rows = np.flatnonzero(is_resp)
    if len(rows) == 0:
        return pd.DataFrame(columns=COLUMNS[:5] + ["history_row"])
    max_len = run.max_len
    hists = [split.histories[r] for r in rows]
    tgt = split.targets[rows]
    ranks = _ranks(run, data, split, rows, hists, tgt)  # (C,)
    out = []
    for j, r in enumerate(rows):
        if top_k is not None and ranks[j] > top_k:
            continue
        seen = hists[j][-max_len:]
        where = np.flatnonzero(seen == pairs[int(tgt[j])])
        if len(where) == 0:  # the trigger fell outside the window: the model could not have used it
            continue
        out.append({"user": vocab.user_ids[int(split.users[r])], "response": vocab.item_id(int(tgt[j])),
                    "trigger": vocab.item_id(pairs[int(tgt[j])]), "response_rank": int(ranks[j]),
                    "trigger_lag": int(len(seen) - where[-1]), "history_row": int(r)})
    return pd.DataFrame(out, columns=COLUMNS[:5] + ["history_row"])


def get_planted_pair_check(run, data: SequenceData, truth: DemoTruth | PlantedTruth, *, top_k: int = 10,
                           top_attr: int = 3,
                           method: str = "ig", steps: int = 50, max_cases: int | None = None,
                           progress: Callable[[int, int], None] | None = None, baseline: str = "mean",
                           samples: int | None = None) -> pd.DataFrame:
    """One row per case: user, response, trigger, response_rank, trigger_lag (of its latest occurrence in the
    window), trigger_attr_rank (best rank of any trigger occurrence by attribution, 1 = highest), hit."""
    cases = planted_cases(run, data, truth, top_k)
    if max_cases is not None:
        cases = cases.iloc[:max(0, int(max_cases))]
    return _attribute_cases(run, data, cases, top_attr=top_attr, method=method, steps=steps, progress=progress,
                            baseline=baseline, samples=samples)


def _attribute_cases(run, data: SequenceData, cases: pd.DataFrame, *, top_attr: int, method: str, steps: int,
                     progress: Callable[[int, int], None] | None = None, baseline: str = "mean",
                     samples: int | None = None) -> pd.DataFrame:
    """:func:`get_planted_pair_check`'s rows for ``cases`` (rows of :func:`planted_cases`): where each case's
    trigger ranks among the window's events by ``method``'s attribution, and whether that is in the top_attr."""
    if cases.empty:
        return pd.DataFrame(columns=COLUMNS)
    started = time.perf_counter()
    split = data.split("test")
    max_len = run.max_len
    hists = [split.histories[r][-max_len:] for r in cases["history_row"]]
    targets = np.array([data.vocab.item_index(i) for i in cases["response"]], dtype=np.int64)
    triggers = np.array([data.vocab.item_index(i) for i in cases["trigger"]], dtype=np.int64)
    times = heldout_times(run, data, split, cases["history_row"].to_numpy())
    if times is not None:  # the window's times and the held-out event's time
        times = [t[-(len(h) + 1):] for t, h in zip(times, hists, strict=True)]
    attrs = attribute_batch(run.model, hists, targets, method, steps=steps, batch_size=64, baseline=baseline,
                            progress=progress, samples=samples, **({} if times is None else {"times": times}))
    attr_rank = []
    for h, a, trig in zip(hists, attrs, triggers, strict=True):
        order = np.argsort(-a, kind="stable")  # (T,) most attributed first
        rank_of = np.empty(len(a), dtype=np.int64)
        rank_of[order] = np.arange(1, len(a) + 1)
        attr_rank.append(int(rank_of[h == trig].min()))
    out = cases.drop(columns="history_row").assign(trigger_attr_rank=attr_rank)
    out["hit"] = out["trigger_attr_rank"] <= int(top_attr)
    log.info("planted-pair check: %d cases, hit share %.3f (%s, %.1f s)", len(out), out["hit"].mean(), method,
             time.perf_counter() - started)
    return out.reset_index(drop=True)[COLUMNS]


def get_planted_recall(run, data: SequenceData, truth: DemoTruth | PlantedTruth, *, top_k: int = 10,
                       top_attr: int = 3, method: str = "ig", steps: int = 50) -> dict:
    """Issue 15's bar on one run: of the held-out planted responses whose trigger is in the model's window, the
    share ranked in the top ``top_k`` (``recall``), and of those, the share whose trigger is among the
    ``top_attr`` most attributed events (``trigger_found``). Counts and the median rank come along, and the
    median rank with the trigger taken out of each history (``median_rank_without_trigger``): a model that has not
    learned a pair ranks its response by popularity either way, which a median rank alone does not tell apart."""
    every = planted_cases(run, data, truth, top_k=None)
    if every.empty:
        return {"cases": 0, "in_top_k": 0, "recall": None, "trigger_found": None, "median_rank": None,
                "median_rank_without_trigger": None}
    in_top = int((every["response_rank"] <= top_k).sum())
    found = None
    if in_top:  # the ranked cases are already here: attribute those instead of scoring every history again
        check = _attribute_cases(run, data, every[every["response_rank"] <= top_k], top_attr=top_attr, method=method,
                                 steps=steps)
        found = round(float(check["hit"].mean()), 3)
    return {"cases": int(len(every)), "in_top_k": in_top, "recall": round(in_top / len(every), 3),
            "trigger_found": found, "median_rank": float(every["response_rank"].median()),
            "median_rank_without_trigger": float(np.median(ranks_without_trigger(run, data, every)))}


def ranks_without_trigger(run, data: SequenceData, cases: pd.DataFrame) -> np.ndarray:
    """(C,) the rank of each case's response when every occurrence of its trigger in the window is replaced by
    the event before it (the first event, when the trigger opens the window): the same history, minus the pair."""
    split = data.split("test")
    rows = cases["history_row"].to_numpy()
    targets = np.array([data.vocab.item_index(i) for i in cases["response"]], dtype=np.int64)  # (C,)
    hists = []
    for r, trig in zip(rows, cases["trigger"], strict=True):
        h = split.histories[r].copy()
        for j in np.flatnonzero(h == data.vocab.item_index(trig)):
            h[j] = h[j - 1] if j > 0 else h[min(1, len(h) - 1)]
        hists.append(h)
    return _ranks(run, data, split, rows, hists, targets)


def _ranks(run, data: SequenceData, split: Split, rows: np.ndarray, hists: list[np.ndarray],
           targets: np.ndarray) -> np.ndarray:
    """(C,) full-catalogue rank (1 = best) of ``targets`` after ``hists``, the histories of ``split``'s ``rows``
    (times from the held-out events, for a time-aware model)."""
    scorer = NeuralScorer(run.model, run.max_len, next(run.model.parameters()).device, batch_size=256)
    times = heldout_times(run, data, split, rows)  # None unless the model is time-aware
    scores = scorer.score_histories(hists, times=times)  # (C, V + 1)
    return 1 + (scores > scores[np.arange(len(rows)), targets][:, None]).sum(axis=1)
