"""Plain-language sentences from stored numbers: why one recommendation, where the real next item landed, how the
run compares with the baselines.

Why sentences at all: a reviewer reading a report offline has no hover and no sliders; one sentence that names the
item, the event behind it, how far back that event was and how concentrated the attribution is carries the
finding of a figure. Every word comes from the data (titles, lags, seconds, shares), never from a template that
could say something the numbers do not. The text is plain (not HTML): the renderer escapes it.
"""
from __future__ import annotations

import math

import numpy as np

from seqrec_core.viz.plot_explain import method_short

TOP_EVENTS = 3  # "IG puts 41% of the positive attribution on the top 3 events"


def _plural(n: float, unit: str) -> str:
    return f"{n:,.0f} {unit}" + ("" if round(n) == 1 else "s")


def fmt_ago(seconds: float | None) -> str | None:
    """'12 days', '3 weeks', '5 hours': how long before the prediction; None without a (finite) time."""
    if seconds is None or not math.isfinite(float(seconds)) or seconds < 0:
        return None
    s = float(seconds)
    days = s / 86400
    if s < 90:
        return _plural(s, "second")
    if s < 90 * 60:
        return _plural(s / 60, "minute")
    if s < 36 * 3600:
        return _plural(s / 3600, "hour")
    if days < 14:
        return _plural(days, "day")
    if days < 61:
        return _plural(days / 7, "week")
    if days < 730:
        return _plural(days / 30.44, "month")
    return _plural(days / 365.25, "year")


def item_text(title: object, item_id: object) -> str:
    """How a person names an item: its title, else 'item <id>'."""
    if isinstance(title, str) and title.strip():
        return title.strip()
    return f"item {item_id}"


def when_text(lag: int, seconds: float | None) -> str:
    """'38 events (12 days) earlier', or 'the latest event (2 hours earlier)'; events only for logs without time."""
    ago = fmt_ago(seconds)
    if lag <= 1:
        return "the latest event" + (f" ({ago} before the prediction)" if ago else "")
    return f"{lag:,} events" + (f" ({ago})" if ago else "") + " earlier"


def top_event(scores: np.ndarray, lags: np.ndarray) -> int:
    """Index of the most supportive event (highest signed attribution; ties: the more recent)."""
    return int(np.lexsort((lags, -scores))[0])


def positive_share(scores: np.ndarray, k: int = TOP_EVENTS) -> float | None:
    """Share of the positive attribution on the ``k`` most supportive events (None when nothing is positive)."""
    positive = np.sort(np.asarray(scores, dtype=float)[np.asarray(scores, dtype=float) > 0])[::-1]
    total = positive.sum()
    return None if total <= 0 else float(positive[:k].sum() / total)


def rank_in(scores: np.ndarray, index: int) -> int:
    """1 + how many events a method puts strictly above event ``index``."""
    return 1 + int((np.asarray(scores, dtype=float) > float(scores[index])).sum())


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def why_sentence(attr, others: dict | None = None) -> str:  # noqa: ANN001 - Attribution
    """'The model ranks X first (score 4.26) mostly because of Y, 38 events (12 days) earlier; IG puts 41% of the
    positive attribution on the top 3 events.' plus, with ``others`` (method -> Attribution of the same target),
    whether the other methods agree on that event."""
    target = item_text(attr.target_title, attr.target_item)
    place = "first" if attr.target_rank in (None, 1) else f"#{attr.target_rank:,}"
    text = f"The model ranks {target} {place} (score {attr.target_score:.2f})"
    scores = np.asarray(attr.scores, dtype=float)
    if scores.size == 0:
        return text + " from an empty history."
    lags = np.asarray(attr.lags, dtype=np.int64)
    i = top_event(scores, lags)
    short = method_short(attr.method)
    if scores[i] <= 0:
        return text + f"; {short} finds no event of the history that pushes it up."
    seconds = None if attr.seconds_before is None else float(attr.seconds_before[i])
    event = item_text(attr.titles[i], attr.item_ids[i])
    text += f" mostly because of {event}, {when_text(int(lags[i]), seconds)}"
    share = positive_share(scores)
    if share is not None and scores.size > TOP_EVENTS:
        text += f"; {short} puts {share:.0%} of the positive attribution on the top {TOP_EVENTS} events"
    text += "."
    return text + _agreement(attr, i, others or {})


def _agreement(attr, index: int, others: dict) -> str:  # noqa: ANN001 - Attribution
    """' Occlusion and GradSHAP also rank that event first; attention ranks it 4th.'"""
    same, elsewhere = [], []
    for method, other in others.items():
        if method == attr.method or len(other.scores) != len(attr.scores) or other.target_item != attr.target_item:
            continue
        r = rank_in(np.asarray(other.scores, dtype=float), index)
        (same if r == 1 else elsewhere).append((method_short(method), r))
    parts = []
    if same:
        names = [n for n, _ in same]
        joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"{joined} also rank{'s' if len(names) == 1 else ''} that event first")
    parts += [f"{name} ranks it {_ordinal(r)}" for name, r in elsewhere]
    if not parts:
        return ""
    joined = "; ".join(parts)
    return " " + joined[0].upper() + joined[1:] + "."


def heldout_sentence(held: dict | None, n_items: int, k: int = 10) -> str | None:
    """Where the user's real next item landed in the model's ranking (seen items excluded, as in the top-K)."""
    if not held or not held.get("item_id"):
        return None
    item = item_text(held.get("title"), held.get("item_id"))
    rank = held.get("rank")
    if rank is None:
        return (f"The user's real next event was {item}, an item they already had, which this top-K leaves out "
                "(seen items are excluded).")
    where = f"in the top {k}" if rank <= k else f"outside the top {k}"
    return f"The user's real next event was {item}; the model ranks it #{rank:,} of {n_items:,} items ({where})."


def metrics_sentence(table, run_name: str, metric: str = "NDCG@10") -> str | None:  # noqa: ANN001 - DataFrame
    """'The run reaches NDCG@10 0.231 (95% CI 0.214–0.249); the best baseline, markov, 0.120 (…): the intervals
    do not overlap.'"""
    if table is None or not len(table) or metric not in table or run_name not in set(table["model"]):
        return None
    rows = table.set_index("model")
    run = rows.loc[run_name]
    base = rows.drop(index=run_name)
    lo, hi = f"{metric} lo", f"{metric} hi"

    def value(row) -> str:  # noqa: ANN001
        ci = f" (95% CI {row[lo]:.3f}–{row[hi]:.3f})" if lo in row and hi in row else ""
        return f"{row[metric]:.3f}{ci}"

    text = f"The run reaches {metric} {value(run)}"
    if not len(base):
        return text + "."
    best_name = str(base[metric].astype(float).idxmax())
    best = base.loc[best_name]
    text += f"; the best baseline, {best_name}, {value(best)}"
    if lo in rows and hi in rows:
        overlap = not (run[lo] > best[hi] or best[lo] > run[hi])
        better = "above" if run[metric] > best[metric] else "below"
        text += (": the intervals overlap, so the difference may be chance" if overlap else
                 f": the run is {better} it beyond chance (the intervals do not overlap)")
    return text + "."
