"""What a review report shows, gathered from the run's stored analysis: one place that knows which stored units a
report reads, which users it explains, and (for the CLI) computes what is missing first.

Why apart from the HTML: the report is a function of the stored analysis, so the dashboard's button and the CLI
must read exactly the same units at exactly the settings the pages show (the kinds' defaults); the renderer then
only turns this content into HTML and never touches the store.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from seqrec_core.analysis.lookup import Found, find
from seqrec_core.errors import InputError
from seqrec_core.explain_methods import RECURRENT_FAMILIES

if TYPE_CHECKING:
    from seqrec_core.data.dataset import Dataset
    from seqrec_core.patterns.report import PatternReport

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]  # (what is happening, share done 0..1)
DEFAULT_USERS = 5  # the default user plus up to 4 the run ranks well
MAX_USERS = 50  # users one report may explain (each adds a handful of figures)
NO_ATTENTION_FAMILIES = RECURRENT_FAMILIES  # recurrent families: no attention maps (the methods registry's list)
# The stored kinds a report reads, in the order it shows them, with the CLI part that computes each.
GLOBAL_KINDS = ("evaluation", "truncation", "longrange", "faithfulness", "planted")
USER_KINDS = ("recommendations", "explanations", "attention")
PART_OF = {"evaluation": "evaluation", "truncation": "longrange", "longrange": "longrange",
           "faithfulness": "faithfulness", "planted": "planted", "recommendations": "explanations",
           "explanations": "explanations", "attention": "attention"}


@dataclass
class Part:
    """One stored analysis as the report uses it: found fresh, stale (and why), missing, or not applicable."""

    kind: str
    found: Found | None
    skipped: str | None = None  # why the kind does not apply to this run or log

    @property
    def unit(self):  # noqa: ANN201 - StoredUnit | None
        return self.found.unit if self.found is not None and self.found.fresh else None

    def how_to_compute(self, run_dir: Path, users: list[str] | None = None) -> str:
        """The command that stores this part (what a reader of a report with a gap runs)."""
        command = f"python -m seqrec_core analyze --run {run_dir} --parts {PART_OF.get(self.kind, self.kind)}"
        if users:
            command += f" --users {','.join(users)} --sample 0"
        return command

    def missing_text(self, run_dir: Path, users: list[str] | None = None) -> str | None:
        """None when the part is shown; else one sentence saying why not and, if it applies, how to compute it."""
        if self.skipped:
            return f"Not applicable: {self.skipped}."
        if self.unit is not None:
            return None
        why = (f"the stored result is out of date ({self.found.why})" if self.found is not None
               and self.found.status == "stale" else "it is not in the run's stored analysis")
        return (f"Not shown: {why}. Compute it with `{self.how_to_compute(run_dir, users)}` (or \"Compute now\" on "
                "the dashboard page) and generate the report again.")


@dataclass
class UserContent:
    """One explained user: the history (from the data), and what the store holds for them."""

    user: str
    timeline: pd.DataFrame
    recs: pd.DataFrame | None = None  # top-K (rank, item_id, title, category, score)
    held: dict | None = None  # the held-out item and its rank
    attributions: dict[str, Any] = field(default_factory=dict)  # method -> Attribution ("top" target)
    attention: Any = None  # AttentionMaps | None
    notes: list[str] = field(default_factory=list)  # what is missing for this user and how to get it


@dataclass
class ReviewContent:
    """Everything the report shows, read from the run, its data and its stored analysis."""

    run_dir: Path
    files: Any  # seqrec_core.runs.RunFiles
    dataset: Any  # seqrec_core.data.dataset.Dataset
    generated: str
    exclude_seen: bool
    parts: dict[str, Part]
    users: list[UserContent]
    patterns: Any = None  # PatternReport | None
    patterns_note: str | None = None
    evaluation: Any = None  # StoredEvaluation | None
    computed: list[dict] = field(default_factory=list)  # what run_analysis did before the report (CLI)

    @property
    def run_name(self) -> str:
        return self.run_dir.name

    @property
    def user_ids(self) -> list[str]:
        return [u.user for u in self.users]


def _static_skip(kind: str, family: str, dataset, methods: list[str] | None) -> str | None:  # noqa: ANN001
    """Why a kind does not apply, known without loading the model (the job's own skip rules need the model)."""
    from seqrec_core.data.dataset import DEMO

    if kind == "planted":
        source = getattr(dataset, "source", None)
        if source is None or source.path != DEMO:
            return "only the demo log has planted trigger → response pairs"
    no_maps = family in NO_ATTENTION_FAMILIES or (methods is not None and "attention" not in methods)
    if kind == "attention" and no_maps:
        return f"the run's family ({family}) has no attention maps"
    return None


def _lookup(run_dir: Path, kind: str, fingerprint: str, exclude_seen: bool) -> Found:
    overrides = {"exclude_seen": exclude_seen} if kind == "evaluation" else None
    return find(run_dir, kind, overrides, fingerprint)


def _stored_users(part: Part) -> list[str]:
    from seqrec_core.analysis.kinds_explain import stored_users

    return stored_users(part.unit) if part.unit is not None else []


def _run_ranks(evaluation, run_name: str, vocab) -> dict[str, int]:  # noqa: ANN001
    """User id -> the run's rank of their held-out item (from the stored evaluation)."""
    if evaluation is None or run_name not in evaluation.results:
        return {}
    result = evaluation.results[run_name]
    return {vocab.user_ids[int(u)]: int(r) for u, r in zip(result.users, result.ranks, strict=True)}


def choose_users(dataset, ranks: dict[str, int], stored: list[str], n: int = DEFAULT_USERS) -> list[str]:  # noqa: ANN001
    """The default user of the pages, then up to ``n - 1`` users the run ranks well, preferring users whose
    explanations are stored (so the dashboard's report needs no computation); with nothing stored, well-ranked
    users from the evaluation (the CLI computes their explanations)."""
    from seqrec_core.analysis.job import default_user

    first = default_user(dataset)
    pool = list(stored) if stored else [u for u, r in ranks.items() if r <= 10]
    pool.sort(key=lambda u: ranks.get(u, 10**9))  # stable: the stored order breaks ties
    chosen = [first] if (first in stored or not stored) else []
    for user in pool:
        if len(chosen) >= n:
            break
        if user not in chosen:
            chosen.append(user)
    return chosen or [first]


def check_users(dataset, users: list[str] | None) -> list[str] | None:  # noqa: ANN001
    """The users asked for, each once, known to the data, at most :data:`MAX_USERS`."""
    if users is None:
        return None
    asked = list(dict.fromkeys(str(u).strip() for u in users if str(u).strip()))
    if not asked:
        raise InputError("the report names no user; give user ids separated by commas")
    if len(asked) > MAX_USERS:
        raise InputError(f"{len(asked)} users asked for; a report explains at most {MAX_USERS}")
    for user in asked:
        dataset.sequences.vocab.user_index(user)  # an unknown id is bad input, said before any work
    return asked


def _compute(run_dir: Path, dataset, units: list[Part], users: list[str], device: str,  # noqa: ANN001
             progress: Progress | None, share: tuple[float, float]) -> dict:
    """Store the missing units with the analysis job (fresh ones are reused, per-user kinds add only new users)."""
    from seqrec_core.analysis.job import run_analysis
    from seqrec_core.jobs.spec import AnalysisRequest, AnalyzeSpec

    request = AnalysisRequest(units=tuple({"kind": p.found.kind, "params": p.found.params} for p in units),
                              users=tuple(users), sample=0)
    lo, hi = share

    def on_event(event: dict) -> None:
        if progress is not None and event.get("event") == "analysis_unit":
            frac = (int(event["index"]) - 1) / max(int(event["total"]), 1)
            progress(f"Computing {event.get('label', event.get('kind'))}…", lo + (hi - lo) * frac)

    spec = AnalyzeSpec(run=str(run_dir), request=request, device=device)
    return run_analysis(spec, dataset=dataset, on_event=on_event)


def _skips_from(report: dict, parts: dict[str, Part]) -> None:
    for entry in report.get("units", []):
        if entry.get("skipped") and entry["kind"] in parts:
            parts[entry["kind"]].skipped = str(entry["skipped"])


def gather_review(run_dir: str | Path, dataset: Dataset, users: list[str] | None = None, *,
                  compute_missing: bool = True, device: str = "auto", patterns: PatternReport | None = None,
                  progress: Progress | None = None) -> ReviewContent:
    """Read (and with ``compute_missing`` first compute) everything the report shows; see :func:`build_review`."""
    from seqrec_core.analysis.kinds_eval import load_evaluation
    from seqrec_core.evaluation import default_exclude_seen
    from seqrec_core.runs import check_run_data, read_run_files

    def say(text: str, share: float) -> None:
        log.info("report: %s", text)
        if progress is not None:
            progress(text, share)

    folder = Path(run_dir)
    if not folder.is_dir():
        raise InputError(f"run folder '{run_dir}' does not exist; pick a folder made by `train`")
    files = read_run_files(folder)
    check_run_data(files, dataset.sequences, dataset.name)  # a report on other data would mix two logs' numbers
    asked = check_users(dataset, users)
    fp, family = dataset.fingerprint, files.family
    exclude = default_exclude_seen(dataset.sequences)
    computed: list[dict] = []

    def lookup_all(kinds: tuple[str, ...]) -> dict[str, Part]:
        return {k: Part(k, _lookup(folder, k, fp, exclude), _static_skip(k, family, dataset, None)) for k in kinds}

    say("Reading the stored analysis…", 0.02)
    parts = lookup_all(GLOBAL_KINDS)
    todo = [p for p in parts.values() if p.unit is None and not p.skipped]
    if compute_missing and todo:
        say(f"Computing {len(todo)} missing analyses…", 0.05)
        report = _compute(folder, dataset, todo, [], device, progress, (0.05, 0.5))
        computed.append(report)
        parts = lookup_all(GLOBAL_KINDS)
        _skips_from(report, parts)
    evaluation = load_evaluation(parts["evaluation"].unit, folder.name) if parts["evaluation"].unit else None
    ranks = _run_ranks(evaluation, folder.name, dataset.sequences.vocab)
    per_user = lookup_all(USER_KINDS)
    chosen = asked if asked is not None else choose_users(dataset, ranks, _stored_users(per_user["explanations"]))
    missing = [p for p in per_user.values() if not p.skipped
               and (p.unit is None or set(chosen) - set(_stored_users(p)))]
    if compute_missing and missing:
        say(f"Explaining {len(chosen)} users…", 0.5)
        report = _compute(folder, dataset, missing, chosen, device, progress, (0.5, 0.8))
        computed.append(report)
        per_user = lookup_all(USER_KINDS)
        _skips_from(report, per_user)
    methods = per_user["explanations"].unit.info.get("methods") if per_user["explanations"].unit else None
    if methods is not None and not per_user["attention"].skipped:
        per_user["attention"].skipped = _static_skip("attention", family, dataset, list(methods))
    parts.update(per_user)
    say("Reading each user's explanations…", 0.82)
    users_content = [_user_content(folder, dataset, u, parts) for u in chosen]
    pattern_report, note = patterns, None
    if pattern_report is None:
        pattern_report, note = _patterns(dataset, say)
    return ReviewContent(run_dir=folder, files=files, dataset=dataset,
                         generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), exclude_seen=exclude,
                         parts=parts, users=users_content, patterns=pattern_report, patterns_note=note,
                         evaluation=evaluation, computed=computed)


def _patterns(dataset, say: Callable[[str, float], None]):  # noqa: ANN001, ANN202 - (PatternReport | None, str)
    from seqrec_core.patterns.common import has_timestamps
    from seqrec_core.patterns.report import get_pattern_report

    if not has_timestamps(dataset.events):
        return None, "The log has only an event order, no timestamps, so it has no time patterns to show."
    say("Computing the log's time patterns…", 0.88)
    try:
        return get_pattern_report(dataset.events, tz="UTC"), None
    except InputError as err:
        return None, f"Time patterns could not be computed: {err}"


def _user_content(run_dir: Path, dataset, user: str, parts: dict[str, Part]) -> UserContent:  # noqa: ANN001
    """One user's history and their stored top-K, attributions (every stored method) and attention."""
    from seqrec_core.analysis.kinds_explain import load_attention, load_attribution, load_recommendations
    from seqrec_core.explain_methods import method_keys
    from seqrec_core.recommend import get_user_timeline

    vocab = dataset.sequences.vocab
    content = UserContent(user=user, timeline=get_user_timeline(dataset.sequences, user))
    if len(content.timeline) < 2:
        content.notes.append("This user has a single event, so nothing can be held out or explained.")
        return content
    rec = parts["recommendations"]
    if rec.unit is not None and user in _stored_users(rec):
        found = load_recommendations(rec.unit, vocab, user, 10, exclude_seen=True)
        if found is not None:
            content.recs, content.held = found
    if content.recs is None and not rec.skipped:
        content.notes.append(_not_stored("Top-K", rec, run_dir, user))
    exp = parts["explanations"]
    if exp.unit is not None and user in _stored_users(exp):
        for method in exp.unit.info.get("methods") or method_keys():
            attr = load_attribution(exp.unit, vocab, user, "top", str(method))
            if attr is not None:
                content.attributions[str(method)] = attr
    if not content.attributions:
        content.notes.append(_not_stored("Attributions", exp, run_dir, user))
    att = parts["attention"]
    if att.unit is not None and user in _stored_users(att):
        content.attention = load_attention(att.unit, user)
    elif not att.skipped:
        content.notes.append(_not_stored("Attention", att, run_dir, user))
    return content


def _not_stored(what: str, part: Part, run_dir: Path, user: str) -> str:
    """'Attention: not stored for this user; compute it with `…`' (or why the whole part is missing)."""
    if part.unit is None:
        return f"{what}: " + (part.missing_text(run_dir, [user]) or "not stored.")
    return f"{what}: not stored for this user; compute it with `{part.how_to_compute(run_dir, [user])}`."

