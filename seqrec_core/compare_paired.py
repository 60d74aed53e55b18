"""Is run A really better than run B? Paired bootstrap differences on the same test users.

Why paired: all models are ranked for the same users, and most of the spread of a metric is between users (easy
vs hard users), which both models share. Resampling the per-user differences cancels it, so two runs whose
separate intervals overlap can still differ beyond chance, and the interval says so honestly. The draws come
from the evaluation's own resampler (``evaluation.bootstrap_means``): one seed gives the same draws everywhere.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from seqrec_core.errors import InputError
from seqrec_core.evaluation import EvalResult, bootstrap_weighted_means, metric_weights

HEAD_TO_HEAD = ("NDCG@10", "HR@10")
NO_DIFFERENCE = "no clear difference"


def _check_pair(a: EvalResult, b: EvalResult) -> None:
    if not np.array_equal(a.users, b.users):
        raise InputError(f"'{a.name}' and '{b.name}' were evaluated on different users; evaluate both on the same "
                         "split of the same data")
    if a.exclude_seen != b.exclude_seen:
        raise InputError(f"'{a.name}' and '{b.name}' were evaluated with different exclude-seen settings; evaluate "
                         "both the same way")


def _paired(a: EvalResult, b: EvalResult, metrics: Sequence[str], n_boot: int, seed: int,
            level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean difference, lower, upper) per metric of a minus b; NaN when there are no users."""
    _check_pair(a, b)
    if not 0 < level < 1:
        raise InputError(f"interval level {level!r} must be between 0 and 1, e.g. 0.95")
    diffs = np.stack([a.per_user(m) - b.per_user(m) for m in metrics], axis=1)  # (U, M)
    if len(diffs) == 0:
        nan = np.full(len(metrics), np.nan)
        return nan, nan.copy(), nan.copy()
    # GAUC is a weighted mean: same users, same weights, so its difference is the weighted mean of the differences
    weights = metric_weights(a, metrics)  # (U, M) or None
    means = bootstrap_weighted_means(diffs, weights, n_boot, seed)  # (n_boot, M)
    tail = (1 - level) / 2
    point = diffs.mean(axis=0) if weights is None else (diffs * weights).sum(axis=0) / weights.sum(axis=0)
    return point, np.quantile(means, tail, axis=0), np.quantile(means, 1 - tail, axis=0)


def _mean(result: EvalResult, metric: str) -> float:
    return result.mean(metric)


def verdict(lo: float, hi: float, a: str, b: str) -> str:
    """"<a> beats <b>" when the whole interval of a - b is above 0, the reverse below 0, else no clear
    difference (the data cannot tell them apart; it does not prove they are equal)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no test users"
    return f"{a} beats {b}" if lo > 0 else f"{b} beats {a}" if hi < 0 else NO_DIFFERENCE


def get_paired_difference(a: EvalResult, b: EvalResult, metrics: Sequence[str] = HEAD_TO_HEAD, *,
                          labels: tuple[str, str] | None = None, n_boot: int = 1000, seed: int = 0,
                          level: float = 0.95) -> pd.DataFrame:
    """Run ``a`` against run ``b`` on the same test users: one row per metric.

    Columns: metric, A, B (each run's mean), difference (A - B), lo, hi (paired bootstrap interval of the
    difference at ``level``), verdict ("<A> beats <B>", "<B> beats <A>" or "no clear difference"), users.
    ``labels`` name the runs in the verdict (default: their result names). Raises InputError when the two were
    not evaluated on the same users with the same exclude-seen rule.
    """
    la, lb = labels or (a.name, b.name)
    diff, lo, hi = _paired(a, b, metrics, n_boot, seed, level)
    rows = [{"metric": m, "A": _mean(a, m), "B": _mean(b, m), "difference": float(diff[i]), "lo": float(lo[i]),
             "hi": float(hi[i]), "verdict": verdict(float(lo[i]), float(hi[i]), la, lb), "users": len(a.users)}
            for i, m in enumerate(metrics)]
    return pd.DataFrame(rows, columns=["metric", "A", "B", "difference", "lo", "hi", "verdict", "users"])


def paired_difference_for_display(table: pd.DataFrame) -> pd.DataFrame:
    """The head-to-head table as people read it: metric, A, B, "A − B" and its interval as text, verdict."""
    fmt = [f"{lo:+.4f} to {hi:+.4f}" if np.isfinite(lo) and np.isfinite(hi) else "n/a"
           for lo, hi in zip(table["lo"], table["hi"], strict=True)]
    return pd.DataFrame({"metric": table["metric"], "A": [f"{v:.4f}" for v in table["A"]],
                         "B": [f"{v:.4f}" for v in table["B"]],
                         "A − B": [f"{v:+.4f}" if np.isfinite(v) else "n/a" for v in table["difference"]],
                         "95% interval": fmt, "verdict": table["verdict"]})


def describe_paired_difference(table: pd.DataFrame, level: float = 0.95) -> str:
    """The head-to-head table in one sentence per metric, e.g. "NDCG@10: A beats B by +0.0123 (95% interval
    +0.0040 to +0.0210)"."""
    parts = []
    for row in table.itertuples(index=False):
        if not np.isfinite(row.difference):
            parts.append(f"{row.metric}: no test users")
            continue
        ci = f"{level:.0%} interval {row.lo:+.4f} to {row.hi:+.4f}"
        if row.verdict == NO_DIFFERENCE:
            parts.append(f"{row.metric}: {NO_DIFFERENCE} (A − B = {row.difference:+.4f}, {ci})")
        else:
            parts.append(f"{row.metric}: {row.verdict} by {abs(row.difference):.4f} (A − B = {row.difference:+.4f}, "
                         f"{ci})")
    return "; ".join(parts)


def get_paired_differences(results: Sequence[EvalResult], reference: str,
                           metrics: Sequence[str] = ("HR@10", "NDCG@10", "MRR"), n_boot: int = 1000, seed: int = 0,
                           verdict_on: str = "NDCG@10") -> pd.DataFrame:
    """Every other model minus ``reference`` on the same test users, with a paired bootstrap 95% interval.

    Columns: model, reference, then per metric "<m> diff", "<m> diff lo", "<m> diff hi", and ``verdict`` on
    ``verdict_on`` (one of ``metrics``): "better" / "worse" (the interval excludes 0) or "within chance".
    """
    if verdict_on not in metrics:
        raise InputError(f"verdict metric {verdict_on} is not among {list(metrics)}")
    by_name = {r.name: r for r in results}
    if reference not in by_name:
        raise InputError(f"no evaluated model named '{reference}'; pick one of {sorted(by_name)}")
    ref = by_name[reference]
    rows = []
    for res in results:
        if res.name == reference:
            continue
        diff, lo, hi = _paired(res, ref, metrics, n_boot, seed, 0.95)
        row: dict = {"model": res.name, "reference": reference}
        for i, m in enumerate(metrics):
            row[f"{m} diff"], row[f"{m} diff lo"], row[f"{m} diff hi"] = float(diff[i]), float(lo[i]), float(hi[i])
        low, high = row[f"{verdict_on} diff lo"], row[f"{verdict_on} diff hi"]
        row["verdict"] = "better" if low > 0 else "worse" if high < 0 else "within chance"
        rows.append(row)
    cols = ["model", "reference", *[f"{m} diff{s}" for m in metrics for s in ("", " lo", " hi")], "verdict"]
    return pd.DataFrame(rows, columns=cols)


def paired_differences_for_display(table: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """"+0.0123 (+0.0040 to +0.0210)" per metric: the difference to the reference and its paired 95% interval
    (``metrics``: default every metric the table holds)."""
    if metrics is None:
        metrics = [c[:-len(" diff")] for c in table.columns if c.endswith(" diff")]
    out = pd.DataFrame({"model": table["model"]})
    ref = table["reference"].iloc[0] if len(table) else "reference"
    for m in metrics:
        out[f"{m} vs {ref}"] = [f"{v:+.4f} ({lo:+.4f} to {hi:+.4f})" if np.isfinite(v) else "n/a"
                                for v, lo, hi in zip(table[f"{m} diff"], table[f"{m} diff lo"], table[f"{m} diff hi"],
                                                     strict=True)]
    out["verdict (NDCG@10)"] = table["verdict"]
    return out
