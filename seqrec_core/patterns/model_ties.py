"""Does the model see the log's temporal structure? Metrics per user segment, inside vs outside bursts, and
where the attribution mass sits in time.

Three questions a reviewer asks once the patterns are known:
- Is the model better for some kinds of users (periodic, bursty, regular, Poisson-like)? Metrics of the same
  evaluation, split by the user's segment, with bootstrap intervals (small segments have wide ones).
- Is a held-out event easier to predict while its item is bursting? Predictions whose target happened inside
  a burst of that item, outside its bursts, or for an item that never bursts.
- Does the explanation lean on timely events? The share of |attribution| on history events inside a burst of
  their own item, at the same hour of day, or on the same weekday as the prediction, next to those events'
  share of the history (what equal attribution per event would give: the chance level).

Attribution shares are normalised per prediction first and then averaged (as in explain.longrange), so one
user with large scores does not outweigh the others.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from seqrec_core.data.sequences import SequenceData
from seqrec_core.errors import InputError
from seqrec_core.evaluation import AUC_METRICS, EvalResult, bootstrap_intervals
from seqrec_core.explain_methods import method_keys

log = logging.getLogger(__name__)

# AUC / GAUC need the candidate counts every evaluation since 2026-12 carries (a result without them: NaN)
TIE_METRICS = ("NDCG@10", "HR@10", "MRR", *AUC_METRICS)
UNSEGMENTED = "too few events"  # users missing from the segment table had too few events to be scored
INSIDE, OUTSIDE, NEVER = "inside its burst", "outside its bursts", "item never bursts"
WHERE_ORDER = (INSIDE, OUTSIDE, NEVER)
ASPECTS = ("inside a burst of their item", "at the same hour of day", "on the same weekday")
Progress = Callable[[int, int], None]


def _group_rows(result: EvalResult, labels: np.ndarray, order: Sequence[str], column: str,
                metrics: Sequence[str], n_boot: int) -> pd.DataFrame:
    """One row per label: users, metric means and their 95% bootstrap bounds (the Evaluate page's method)."""
    rows = []
    for label in order:
        mask = labels == label
        if not mask.any():
            continue
        sub = result.subset(mask)  # carries the AUC counts along with the ranks
        ci = bootstrap_intervals(sub, metrics=metrics, n_boot=n_boot)
        row = {"model": result.name, column: label, "users": int(mask.sum())}
        for m in metrics:
            row[m] = sub.mean(m) if sub.has_auc or m not in AUC_METRICS else float("nan")
            row[f"{m} lo"], row[f"{m} hi"] = ci[m]
        rows.append(row)
    cols = ["model", column, "users"] + [c for m in metrics for c in (m, f"{m} lo", f"{m} hi")]
    return pd.DataFrame(rows, columns=cols)


def get_metrics_by_segment(result: EvalResult, data: SequenceData, segments: pd.DataFrame, *,
                           metrics: Sequence[str] = TIE_METRICS, n_boot: int = 1000) -> pd.DataFrame:
    """Metrics of ``result`` per temporal user segment (``segments``: columns user, segment).

    Columns: model, segment, users, then each metric with "<m> lo" / "<m> hi" (95% bootstrap bounds). Users
    the segment table does not list count as "too few events".
    """
    if not {"user", "segment"} <= set(segments.columns):
        raise InputError("the segment table needs columns 'user' and 'segment' (from patterns.get_user_segments)")
    seg_of = dict(zip(segments["user"].astype(str), segments["segment"].astype(str), strict=True))
    ids = data.vocab.user_ids
    labels = np.array([seg_of.get(ids[int(u)], UNSEGMENTED) for u in result.users], dtype=object)
    from seqrec_core.patterns.segments import SEGMENTS

    order = list(SEGMENTS) + sorted(set(labels) - set(SEGMENTS))
    return _group_rows(result, labels, order, "segment", metrics, n_boot)


def _to_seconds(values: pd.Series) -> np.ndarray:
    """UTC timestamps (any unit) as int64 unix seconds."""
    idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return idx.as_unit("s").asi8.astype(np.int64)


def _burst_intervals(item_bursts: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """item id -> (starts, ends) in unix seconds."""
    if item_bursts is None or len(item_bursts) == 0:
        return {}
    missing = {"item", "start", "end"} - set(item_bursts.columns)
    if missing:
        raise InputError(f"the burst table lacks column(s) {sorted(missing)}; use patterns.get_item_bursts")
    starts, ends = _to_seconds(item_bursts["start"]), _to_seconds(item_bursts["end"])
    items = item_bursts["item"].astype(str).to_numpy()
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for item in np.unique(items):
        m = items == item
        out[str(item)] = (starts[m], ends[m])
    return out


def _inside(times: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(N,) bool: each time lies in at least one [start, end] interval."""
    return ((times[:, None] >= starts[None, :]) & (times[:, None] <= ends[None, :])).any(axis=1)


def get_burst_split_metrics(result: EvalResult, data: SequenceData, item_bursts: pd.DataFrame, *,
                            metrics: Sequence[str] = TIE_METRICS, n_boot: int = 1000) -> pd.DataFrame:
    """Metrics for held-out events that happened inside a burst of the held-out item, outside its bursts, or
    whose item never bursts. Columns: model, where, users, each metric with 95% bootstrap bounds.

    Why three groups rather than two: an item that bursts is a different kind of item (a fad) even outside its
    bursts; lumping it with never-bursting items would mix the item effect with the timing effect.
    """
    if not data.has_time:
        raise InputError("the log has no timestamps (only an event order), so bursts cannot be matched to "
                         "prediction times; load a file with a time column")
    split = data.split(result.part)  # type: ignore[arg-type]
    pos = {int(u): i for i, u in enumerate(split.users)}
    try:
        idx = np.array([pos[int(u)] for u in result.users], dtype=np.int64)
    except KeyError:
        raise InputError("the evaluation result does not match this data's split; evaluate the run on this "
                         "data first") from None
    item_ids = np.asarray(data.vocab.item_ids, dtype=object)
    targets = item_ids[split.targets[idx] - 1] if len(idx) else np.zeros(0, dtype=object)
    times = split.target_times[idx]
    labels = np.full(len(idx), NEVER, dtype=object)
    for item, (starts, ends) in _burst_intervals(item_bursts).items():
        sel = np.flatnonzero(targets == item)
        if len(sel):
            labels[sel] = np.where(_inside(times[sel], starts, ends), INSIDE, OUTSIDE)
    return _group_rows(result, labels, WHERE_ORDER, "where", metrics, n_boot)


def _local_hour_weekday(seconds: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        local = pd.DatetimeIndex(pd.to_datetime(seconds, unit="s", utc=True)).tz_convert(tz)
    except Exception as err:  # zoneinfo/pytz raise several types for unknown names
        raise InputError(f"unknown timezone '{tz}'; use an IANA name such as 'UTC' or 'Europe/Berlin' "
                         f"({type(err).__name__})") from None
    return np.asarray(local.hour, dtype=np.int64), np.asarray(local.day_of_week, dtype=np.int64)


def get_attribution_time_mass(attributions: Sequence[np.ndarray], histories_times: Sequence[np.ndarray],
                              prediction_times: np.ndarray, item_bursts: pd.DataFrame, *,
                              history_items: Sequence[np.ndarray], tz: str = "UTC") -> pd.DataFrame:
    """Share of |attribution| on history events inside a burst of their item / at the same hour of day / on the
    same weekday as the prediction time, next to those events' share of the history (the chance level).

    ``attributions[i]``, ``histories_times[i]`` (unix s) and ``history_items[i]`` (original item ids) describe
    the events of prediction i, aligned and oldest first; ``prediction_times[i]`` is when the prediction was
    made (the held-out event's time). Hours and weekdays are read in ``tz``. Columns: aspect,
    share_of_abs_attribution, share_of_events, ratio (share / chance), events (with the property), predictions.
    """
    n = len(attributions)
    if not (len(histories_times) == len(history_items) == len(prediction_times) == n):
        raise InputError("attributions, history times, history items and prediction times must have one entry "
                         "per prediction")
    lens = np.array([len(a) for a in attributions], dtype=np.int64)
    for a, t, it in zip(attributions, histories_times, history_items, strict=True):
        if not len(a) == len(t) == len(it):
            raise InputError("each prediction's attributions, times and items must be aligned (same length)")
    if n == 0 or lens.sum() == 0:
        return pd.DataFrame({"aspect": list(ASPECTS), "share_of_abs_attribution": np.nan, "share_of_events": np.nan,
                             "ratio": np.nan, "events": 0, "predictions": 0})
    owner = np.repeat(np.arange(n), lens)  # (E,) prediction of each event
    attr = np.abs(np.concatenate([np.asarray(a, dtype=np.float64) for a in attributions]))
    ev_t = np.concatenate([np.asarray(t, dtype=np.int64) for t in histories_times])
    ev_item = np.concatenate([np.asarray(i, dtype=object).astype(str) for i in history_items])
    in_burst = np.zeros(len(ev_t), dtype=bool)
    for item, (starts, ends) in _burst_intervals(item_bursts).items():
        sel = np.flatnonzero(ev_item == item)
        if len(sel):
            in_burst[sel] = _inside(ev_t[sel], starts, ends)
    ev_h, ev_d = _local_hour_weekday(ev_t, tz)
    p_h, p_d = _local_hour_weekday(np.asarray(prediction_times, dtype=np.int64), tz)
    masks = (in_burst, ev_h == p_h[owner], ev_d == p_d[owner])
    totals = np.bincount(owner, weights=attr, minlength=n)
    used = np.isfinite(totals) & (totals > 0)  # an all-zero explanation carries no evidence
    rows = []
    for aspect, mask in zip(ASPECTS, masks, strict=True):
        mass = np.bincount(owner, weights=attr * mask, minlength=n)
        count = np.bincount(owner, weights=mask.astype(np.float64), minlength=n)
        share = float(np.mean(mass[used] / totals[used])) if used.any() else np.nan
        chance = float(np.mean(count[used] / lens[used])) if used.any() else np.nan
        rows.append({"aspect": aspect, "share_of_abs_attribution": share, "share_of_events": chance,
                     "ratio": share / chance if chance and np.isfinite(chance) and chance > 0 else np.nan,
                     "events": int(mask.sum()), "predictions": int(used.sum())})
    return pd.DataFrame(rows)


def compute_attribution_time_mass(run, data: SequenceData, item_bursts: pd.DataFrame, *,  # noqa: ANN001 - Run
                                  n_users: int = 200, method: str = "ig", steps: int = 20, target: str = "top",
                                  tz: str = "UTC", seed: int = 0, batch_size: int = 64,
                                  progress: Progress | None = None) -> pd.DataFrame:
    """Explain ``n_users`` sampled test predictions (holdout histories, ``attribute_batch``) and measure
    :func:`get_attribution_time_mass` on them. ``target`` "top" explains the model's top unseen
    recommendation, "heldout" the true test item; the prediction time is the held-out event's time.
    ``progress(done, total)`` counts explained predictions."""
    from seqrec_core.explain import attribution
    from seqrec_core.explain.longrange import heldout_split, heldout_times, prediction_targets, sample_rows

    if not data.has_time:
        raise InputError("the log has no timestamps (only an event order), so attribution cannot be placed in "
                         "time; load a file with a time column")
    if method not in method_keys():
        raise InputError(f"method '{method}' is not one of {list(method_keys())}")
    started = time.perf_counter()
    split = heldout_split(data)
    rows = sample_rows(len(split.users), n_users, seed)
    histories = [split.histories[i] for i in rows]
    query_times = heldout_times(run, data, split, rows)  # time-aware models only: query = held-out event's time
    targets = prediction_targets(run, split, rows, target, query_times)
    attrs = attribution.attribute_batch(run.model, histories, targets, method, steps=steps, batch_size=batch_size,
                                        progress=progress, **({} if query_times is None else {"times": query_times}))
    item_ids = np.asarray(data.vocab.item_ids, dtype=object)
    times, items = [], []
    for a, i in zip(attrs, rows, strict=True):
        u, hist = split.users[i], split.histories[i]
        window = slice(len(hist) - len(a), len(hist))  # attribute_batch keeps the last max_len events
        times.append(data.times[u][:-1][window])
        items.append(item_ids[hist[window] - 1])
    frame = get_attribution_time_mass(attrs, times, split.target_times[rows], item_bursts, history_items=items,
                                      tz=tz)
    log.info("attribution time mass (%s, %d steps) over %d predictions in %.1f s", method, steps, len(rows),
             time.perf_counter() - started)
    return frame
