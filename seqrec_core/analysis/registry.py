"""The kinds of stored analysis, each declared once: its defaults, when it applies, how it is computed and read.

Why a registry: the ``analyze`` command, the dashboard's "Compute now" buttons, the pages that read stored results
and the review report all need the same facts about an analysis (its default parameters above all: a page looks
up exactly the settings it shows, so the defaults it offers and the ones ``analyze`` computes must be one
constant). A kind's module registers itself with :func:`register`; ``PARTS`` groups kinds into the part names
the CLI takes (``--parts longrange,embeddings``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from seqrec_core.errors import InputError

Progress = Callable[[int, int], None]
# (tables, info): what a kind computes; tables are stored as Parquet, info as JSON scalars in meta.json.
Computed = tuple[dict[str, pd.DataFrame], dict[str, Any]]


@dataclass
class AnalysisContext:
    """What every computation gets: the run (model on the analysis device), the dataset it was trained on, and
    the identity stored with each result (data fingerprint, weights hash)."""

    run: Any  # seqrec_core.runs.Run
    dataset: Any  # seqrec_core.data.dataset.Dataset
    weights: str
    device: str
    users: tuple[str, ...] = ()  # the users per-user kinds explain (default sample + asked for)
    cache: dict = field(default_factory=dict)  # results one kind computes and another reuses (evaluation ranks)

    @property
    def data(self):  # noqa: ANN201 - SequenceData
        return self.dataset.sequences

    @property
    def fingerprint(self) -> str:
        return self.dataset.fingerprint


@dataclass(frozen=True)
class Kind:
    """One kind of stored analysis.

    ``variants(ctx)`` lists the parameter sets ``analyze`` computes by default (usually one; evaluation computes
    both "exclude seen" settings so the page's toggle never waits). ``skip(ctx)`` says why the kind does not apply
    to this run or log (None = it applies). ``compute(ctx, params, progress)`` returns (tables, info).
    ``per_user`` kinds store a set of users that grows: computing more users merges into what is stored.
    ``version`` is bumped whenever what is stored changes meaning; stored results of another version are stale.
    """

    name: str
    version: int
    defaults: Mapping[str, object]
    compute: Callable[[AnalysisContext, dict, Progress | None], Computed]
    label: str
    variants: Callable[[AnalysisContext], list[dict]] | None = None
    skip: Callable[[AnalysisContext], str | None] | None = None
    per_user: bool = False
    allowed: Mapping[str, tuple] = field(default_factory=dict)  # param -> allowed values or (lo, hi) for numbers

    def params(self, overrides: Mapping[str, object] | None = None) -> dict:
        """The defaults with ``overrides`` applied; unknown names and values out of range are bad input."""
        values = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in values:
                raise InputError(f"analysis '{self.name}' has no parameter '{str(key)[:40]}'; it takes "
                                 f"{', '.join(sorted(values)) or 'none'}")
            values[key] = self._check(key, value)
        return values

    def _check(self, key: str, value: object) -> object:
        rule = self.allowed.get(key)
        default = self.defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise InputError(f"analysis '{self.name}' parameter '{key}' must be true or false")
            return value
        if isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"analysis '{self.name}' parameter '{key}' must be a whole number")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"analysis '{self.name}' parameter '{key}' must be a number")
            value = float(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise InputError(f"analysis '{self.name}' parameter '{key}' must be text")
        if rule and isinstance(value, (int, float)) and not isinstance(value, bool) and len(rule) == 2 and all(
                isinstance(r, (int, float)) for r in rule):
            if not rule[0] <= value <= rule[1]:
                raise InputError(f"analysis '{self.name}' parameter '{key}' = {value} is outside {rule[0]}..{rule[1]}")
        elif rule and value not in rule:
            raise InputError(f"analysis '{self.name}' parameter '{key}' = {str(value)[:40]!r} is not one of "
                             f"{', '.join(map(str, rule))}")
        return value

    def default_variants(self, ctx: AnalysisContext) -> list[dict]:
        return self.variants(ctx) if self.variants is not None else [dict(self.defaults)]


def log_default_exclude_seen(ctx: AnalysisContext) -> list[dict]:
    """One variant: the "exclude seen" setting every page and command uses on this log when nobody chose
    (:func:`seqrec_core.evaluation.default_exclude_seen`), so a page's first view finds it stored."""
    from seqrec_core.evaluation import default_exclude_seen

    return [{"exclude_seen": default_exclude_seen(ctx.data)}]


KINDS: dict[str, Kind] = {}

# The CLI's part names (DESIGN.md, `analyze --parts`) and the kinds each stands for, in the order they run:
# evaluation first (its ranks choose the users the per-user parts explain).
PARTS: dict[str, tuple[str, ...]] = {
    "evaluation": ("evaluation", "histories"),
    "longrange": ("longrange", "truncation"),
    "faithfulness": ("faithfulness",),
    "attention": ("attention",),
    "embeddings": ("embedding", "item_space"),
    "explanations": ("explanations", "recommendations"),
    "patterns_model": ("patterns", "model_ties", "time_mass"),
    "planted": ("planted",),
}


# The columns each stored table must have for the pages and the report to read it. A stored unit that lacks one
# (written by another version, or damaged on its way: runs travel as zips) reads as stale, never as a crash.
TABLE_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "evaluation": {"ranks": ("model", "user", "rank", "history_len"), "metrics": ("model", "NDCG@10", "HR@10"),
                   "by_history": ("model", "bucket", "users", "value", "lo", "hi", "metric")},
    "longrange": {"by_lag": ("bucket", "share_of_abs_attribution", "events", "share_of_events"),
                  "by_time_gap": ("bucket", "share_of_abs_attribution", "events", "share_of_events"),
                  "attention_distance": ("layer", "head", "mean_distance")},
    "truncation": {"ablation": ("k", "NDCG@10", "HR@10", "users", "mean_events_seen")},
    "faithfulness": {"curves": ("method", "kind", "k", "score", "prob"), "aopc": ("method", "kind", "aopc")},
    "planted": {"cases": ("user", "response", "trigger", "trigger_attr_rank", "hit")},
    "explanations": {"events": ("user", "target_kind", "method", "item_index", "lag", "timestamp", "seconds_before",
                                "attribution"),
                     "targets": ("user", "target_kind", "method", "target_index", "target_score", "error")},
    "attention": {"weights": ("user", "layer", "head", "row", "weights"),
                  "items": ("user", "position", "item_index", "appended")},
    "recommendations": {"top": ("user", "exclude_seen", "rank", "item_id", "score"),
                        "heldout": ("user", "exclude_seen", "item_id", "rank")},
    "embedding": {"points": ("id", "x", "y", "title", "category", "popularity", "cluster")},
    "item_space": {"vectors": ("item_id", "vector")},
    "model_ties": {"by_segment": ("model", "segment", "users"), "by_burst": ("model", "where", "users")},
    "time_mass": {"mass": ("aspect", "share_of_abs_attribution", "share_of_events", "predictions")},
    "top_all": {"top": ("user_id", "rank", "item_id", "score")},
    "patterns": {"periods": ("period_hours", "strength", "significant", "false_alarm"),
                 "per_user": ("user", "events", "segment"), "item_bursts": ("item", "start", "end", "level"),
                 "hour_weekday": ("weekday",), "daily": ("date", "events"), "segments": ("segment", "users")},
}


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def kind(name: str) -> Kind:
    from seqrec_core import analysis  # noqa: F401 - importing the package registers every kind

    try:
        return KINDS[name]
    except KeyError:
        raise InputError(f"analysis kind '{name[:40]}' is unknown; known: {', '.join(sorted(KINDS))}") from None


def resolve_parts(parts: tuple[str, ...] | list[str]) -> list[str]:
    """Part names (or "all") as the kinds to compute, in :data:`PARTS` order, each once."""
    names = [p.strip() for p in parts if p.strip()]
    if not names or "all" in names:
        names = list(PARTS)
    unknown = [p for p in names if p not in PARTS]
    if unknown:
        raise InputError(f"unknown analysis part(s) {', '.join(u[:40] for u in unknown)}; use all or some of "
                         f"{', '.join(PARTS)}")
    wanted = set(names)
    return [k for part, kinds in PARTS.items() if part in wanted for k in kinds]
