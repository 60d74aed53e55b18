"""The analysis job: compute a run's analyses and store them in the run folder (``analyze``, and after training).

Each unit (one kind at one set of parameters) is computed and written on its own, so a cancel or a crash keeps
every unit finished before it; fresh stored units are reused (``force`` recomputes them). Per-user kinds compute
only the users not stored yet and merge them into the stored unit under a lock, so two jobs adding users at once
lose neither's. Progress goes to the job's progress file as ``analysis_*`` events; its return value is the CLI's
``analyze`` JSON document.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec_core.analysis import registry
from seqrec_core.analysis.registry import AnalysisContext, Kind
from seqrec_core.analysis.store import ANALYSIS_DIR, clean_stale_units, read_unit, weights_id, write_unit
from seqrec_core.cpu_threads import ThreadGovernor
from seqrec_core.errors import InputError
from seqrec_core.jobs.progress import ProgressFile

log = logging.getLogger(__name__)
DEFAULT_SAMPLE = 24  # users a per-user kind explains by default (plus any asked for)
EVENT_SECONDS = 0.5


class AnalysisCancelled(Exception):
    """A cancel arrived; the units finished before it are stored."""


EXAMPLE_CANDIDATES = 300  # off the demo: the most active users, among whom the example user is chosen
GOOD_RANK = 3  # a held-out item ranked this high makes a user a good example (the what-if chart shows it)


def default_user(dataset, ranks: dict[str, int] | None = None) -> str:  # noqa: ANN001 - Dataset
    """The user a page opens on, chosen by the data, not by id order. Candidates: on the demo log the users whose
    held-out item is a planted response (a long-range case worth explaining), elsewhere the
    ``EXAMPLE_CANDIDATES`` most active users. With ``ranks`` (user -> the run's test rank of their held-out
    item, seen items as the log's default), the first candidate ranked in the top ``GOOD_RANK``, else the best
    ranked; without, the first candidate. The analysis job and the pages pass the same ranks (the run's
    evaluation), so the user the pages open on is one the job explained."""
    from seqrec_core.data.dataset import DEMO

    data = dataset.sequences
    vocab = data.vocab
    source = getattr(dataset, "source", None)
    candidates: list[str] = []
    if source is not None and source.path == DEMO:
        from seqrec_core.data.synthetic import make_demo_events

        candidates = [u for u in make_demo_events(seed=source.demo_seed)[1].response_users if vocab.has_user(u)]
    if not candidates:
        active = np.argsort(-data.lengths(), kind="stable")[:EXAMPLE_CANDIDATES]  # longest histories first
        candidates = [vocab.user_ids[int(u)] for u in active]
    if not ranks:
        return candidates[0] if candidates else vocab.user_ids[0]
    ranked = [(ranks[u], i, u) for i, u in enumerate(candidates) if u in ranks]
    good = [u for rank, _, u in ranked if rank <= GOOD_RANK]
    if good:
        return good[0]
    return min(ranked)[2] if ranked else candidates[0]


def heldout_ranks(result, vocab) -> dict[str, int]:  # noqa: ANN001 - EvalResult, Vocab
    """user id -> the held-out item's rank, from an evaluation result (for :func:`default_user`)."""
    return {vocab.user_ids[int(u)]: int(r) for u, r in zip(result.users, result.ranks, strict=True)}


def sample_users(ctx: AnalysisContext, n: int, asked: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The users per-user kinds explain: those asked for, the pages' default user, up to half the rest among users
    whose held-out item the run ranks in its top 3 (good examples), the others drawn at random (seed 0)."""
    from seqrec_core.analysis.kinds_eval import RUN
    from seqrec_core.evaluation import default_exclude_seen

    vocab = ctx.data.vocab  # the users asked for were checked by run_analysis before anything ran
    results = ctx.cache.get(("evaluation", default_exclude_seen(ctx.data)))
    ranks = heldout_ranks(results[RUN], vocab) if results is not None and RUN in results else None
    chosen = list(dict.fromkeys([*asked, default_user(ctx.dataset, ranks)]))
    if n <= 0:
        return tuple(chosen)
    target = len(chosen) + n
    if results is not None and RUN in results:
        run_result = results[RUN]
        hits = run_result.users[np.argsort(run_result.ranks, kind="stable")]
        good = [vocab.user_ids[int(u)] for u, r in zip(hits, np.sort(run_result.ranks), strict=True) if r <= 3]
        for user in good[: n // 2]:
            if user not in chosen:
                chosen.append(user)
    rng = np.random.default_rng(0)
    split = ctx.data.split("test")
    for u in rng.permutation(split.users):
        if len(chosen) >= target:
            break
        user = vocab.user_ids[int(u)]
        if user not in chosen:
            chosen.append(user)
    return tuple(chosen[:target])


@contextlib.contextmanager
def _analysis_lock(run_dir: Path) -> Iterator[None]:
    """One writer at a time merges per-user units (another job waits, then merges on top)."""
    base = run_dir / ANALYSIS_DIR
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _units(request, ctx: AnalysisContext) -> list[tuple[Kind, dict]]:  # noqa: ANN001 - AnalysisRequest
    """(kind, params) to compute, in order: the request's explicit units, else its parts' default variants."""
    if request.units:
        return [(k, k.params(u.get("params"))) for u in request.units for k in [registry.kind(str(u["kind"]))]]
    out = []
    for name in registry.resolve_parts(request.parts):
        k = registry.kind(name)
        overrides = request.params.get(name)
        variants = [k.params(overrides)] if overrides else [k.params(v) for v in k.default_variants(ctx)]
        out += [(k, v) for v in variants]
    unknown = set(request.params) - {k.name for k, _ in out}
    if unknown:
        raise InputError(f"params given for {', '.join(sorted(unknown))}, which this request does not compute")
    return out


def _merge_users(old, new: dict[str, pd.DataFrame], users: tuple[str, ...]) -> dict[str, pd.DataFrame]:  # noqa: ANN001
    """The stored tables of a per-user kind with ``users`` replaced by the new rows."""
    if old is None:
        return new
    merged = {}
    for name, frame in new.items():
        kept = old.table(name) if name in old.table_names else frame.iloc[0:0]
        kept = kept[~kept["user"].astype(str).isin(users)]
        merged[name] = pd.concat([kept, frame], ignore_index=True) if len(kept) else frame
    return merged


def run_analysis(spec, dataset=None, progress_path: str | Path | None = None,  # noqa: ANN001 - AnalyzeSpec, Dataset
                 should_stop: Callable[[], bool] | None = None, on_event: Callable[[dict], None] | None = None,
                 final_events: bool = True, on_ready: Callable[[], None] | None = None) -> dict:
    """Compute and store ``spec``'s analyses of the run ``spec.run``; returns the CLI's ``analyze`` JSON.

    ``dataset``: the run's data when the caller has it open (the train job), else opened from ``spec.data`` or
    the run's recorded source and checked against the run's fingerprint. ``final_events``: end the progress file
    with ``done``/``cancelled``/``error`` (a standalone job); a train job already ended its own with ``done``.
    ``on_ready`` is called once the run, the data, the units and the users asked for are accepted."""
    from seqrec_core.runs import check_run_data, load_run
    from seqrec_core.training.config import resolve_device

    started = time.perf_counter()
    run_dir = Path(spec.run)
    device = resolve_device(spec.device)
    run = load_run(run_dir, device=device)
    ds = dataset if dataset is not None else _open_data(spec, run.config)
    check_run_data(run, ds.sequences, ds.name)
    ctx = AnalysisContext(run=run, dataset=ds, weights=weights_id(run_dir), device=str(device))
    units = _units(spec.request, ctx)
    for user in spec.request.users:
        ds.sequences.vocab.user_index(user)  # an unknown id is bad input, said before anything runs
    if on_ready is not None:
        on_ready()
    progress = ProgressFile(Path(progress_path) if progress_path is not None else None)
    last = {"t": 0.0}

    def emit(event: dict) -> None:
        progress(event)
        if on_event is not None:
            on_event(event)

    governor = ThreadGovernor()  # a training job or the dashboard may share the cores: use the ones left free
    governor.start()
    clean_stale_units(run_dir)
    report: dict = {"run_dir": str(run_dir), "analysis_dir": str(run_dir / ANALYSIS_DIR), "parts": {}, "units": []}
    emit({"event": "analysis_start", "run_dir": str(run_dir), "units": [k.label for k, _ in units],
          "device": str(device)})
    try:
        if any(k.per_user for k, _ in units):
            if any(k.name == "evaluation" for k, _ in units) or spec.request.sample != 0:
                _compute_default_evaluation(ctx, units)
            ctx.users = sample_users(ctx, DEFAULT_SAMPLE if spec.request.sample is None else spec.request.sample,
                                     tuple(spec.request.users))
        for index, (k, params) in enumerate(units, start=1):
            entry = {"kind": k.name, "params": params, "label": k.label}
            report["units"].append(entry)
            reason = k.skip(ctx) if k.skip is not None else None
            if reason is not None:
                entry["skipped"] = reason
                emit({"event": "analysis_unit_skipped", "kind": k.name, "reason": reason})
                continue
            emit({"event": "analysis_unit", "kind": k.name, "label": k.label, "index": index, "total": len(units),
                  "params": params})
            log.info("analysis %d/%d: %s%s", index, len(units), k.label,
                     f" ({', '.join(f'{key} {value}' for key, value in params.items())})" if params else "")

            def tick(done: int, total: int, k: Kind = k, index: int = index) -> None:
                governor.tick()
                if should_stop is not None and should_stop():
                    raise AnalysisCancelled(f"cancelled during {k.label}")
                now = time.perf_counter()
                if now - last["t"] >= EVENT_SECONDS or done >= total:
                    last["t"] = now
                    emit({"event": "analysis_progress", "kind": k.name, "index": index, "total_units": len(units),
                          "done": int(done), "total": int(total), "elapsed": round(now - started, 1)})

            if should_stop is not None and should_stop():
                raise AnalysisCancelled(f"cancelled before {k.label}")
            t0 = time.perf_counter()
            rows, status = _compute_unit(ctx, k, params, tick, spec.request.force)
            seconds = time.perf_counter() - t0
            entry.update(status=status, seconds=round(seconds, 3), rows=rows)
            part = next((p for p, kinds in registry.PARTS.items() if k.name in kinds), k.name)
            agg = report["parts"].setdefault(part, {"seconds": 0.0, "rows": 0})
            agg["seconds"] = round(agg["seconds"] + seconds, 3)
            agg["rows"] += rows
            emit({"event": "analysis_unit_done", "kind": k.name, "status": status, "seconds": round(seconds, 3),
                  "rows": rows})
            log.info("analysis %d/%d %s in %.1f s (%s rows)", index, len(units), status, seconds, f"{rows:,}")
        report["seconds"] = round(time.perf_counter() - started, 3)
        report["users"] = list(ctx.users)
        reach = _context_reach(ctx, run_dir)
        report["context_reach"] = reach
        emit({"event": "analysis_done", "seconds": report["seconds"], "parts": report["parts"],
              "context_reach": reach})
        if final_events:
            emit({"event": "done", **{k: report[k] for k in ("run_dir", "seconds", "parts")}})
        return report
    except AnalysisCancelled as err:
        report["cancelled"] = str(err)
        emit({"event": "analysis_cancelled", "message": str(err)})
        if final_events:
            emit({"event": "cancelled", "message": f"{err}; the analyses finished before it are stored"})
        return report
    except BaseException as err:
        emit({"event": "analysis_error", "message": str(err) or type(err).__name__})
        if final_events:
            emit({"event": "error", "message": str(err) or type(err).__name__})
        raise
    finally:
        progress.close()


def _context_reach(ctx: AnalysisContext, run_dir: Path) -> dict | None:
    """How far back the model looks (:mod:`seqrec_core.analysis.reach`), said on stderr too; None for a model
    that cannot be explained (baselines) or when the truncation analysis is not stored."""
    from seqrec_core.analysis.kinds_explain import not_explainable
    from seqrec_core.analysis.reach import get_context_reach

    if not_explainable(ctx) is not None:
        return None
    reach = get_context_reach(run_dir, ctx.data, ctx.fingerprint, ctx.run.max_len, ctx.run.config.get("model"))
    if reach.verdict == "not_measured":
        return None
    log.info("how far back: %s%s", reach.message, f" {reach.advice}" if reach.advice else "")
    return reach.to_dict()


def _open_data(spec, run_config: dict):  # noqa: ANN001, ANN202 - AnalyzeSpec -> Dataset
    from seqrec_core.data.dataset import DataSource, open_dataset

    if spec.data is not None:
        ds = spec.data.open()
    else:
        source = (run_config.get("data") or {}).get("source")
        if not source:
            raise InputError("this run does not record where its data came from; pass the log with --data")
        ds = open_dataset(DataSource.from_json(source))
    return ds


def _compute_default_evaluation(ctx: AnalysisContext, units: list[tuple[Kind, dict]]) -> None:
    """Put the evaluation at the data's default setting in the context (from the store when fresh), so the user
    sample can pick well-ranked examples; computed anyway when the request includes the evaluation."""
    from seqrec_core.analysis.kinds_eval import EVALUATION, RUN, evaluation_results, load_evaluation
    from seqrec_core.evaluation import default_exclude_seen

    exclude = default_exclude_seen(ctx.data)
    unit = read_unit(ctx.run.path, "evaluation", EVALUATION.params({"exclude_seen": exclude}))
    if unit is not None and unit.is_fresh(ctx.fingerprint, ctx.weights, EVALUATION.version):
        stored = load_evaluation(unit, RUN)
        ctx.cache[("evaluation", exclude)] = stored.results
    elif any(k.name == "evaluation" for k, _ in units):
        evaluation_results(ctx, exclude)


def _compute_unit(ctx: AnalysisContext, k: Kind, params: dict, tick, force: bool) -> tuple[int, str]:  # noqa: ANN001
    """Compute and store one unit; (rows written, "computed" | "reused")."""
    run_dir = Path(ctx.run.path)
    stored = read_unit(run_dir, k.name, params)
    fresh = stored is not None and stored.is_fresh(ctx.fingerprint, ctx.weights, k.version)
    if not k.per_user:
        if fresh and not force:
            return sum(int(v) for v in stored.meta.get("tables", {}).values()), "reused"
        t0 = time.perf_counter()
        tables, info = k.compute(ctx, params, tick)
        write_unit(run_dir, k.name, params, tables, info=info, fingerprint=ctx.fingerprint, weights=ctx.weights,
                   version=k.version, seconds=time.perf_counter() - t0, device=ctx.device)
        return sum(len(t) for t in tables.values()), "computed"
    from seqrec_core.analysis.kinds_explain import stored_users

    have = set(stored_users(stored)) if fresh and not force else set()
    todo = tuple(u for u in ctx.users if u not in have)
    if not todo:
        return 0, "reused"
    asked = ctx.users
    ctx.users = todo
    try:
        t0 = time.perf_counter()
        tables, info = k.compute(ctx, params, tick)
    finally:
        ctx.users = asked
    with _analysis_lock(run_dir):
        current = read_unit(run_dir, k.name, params)  # another job may have added users meanwhile
        if current is not None and not current.is_fresh(ctx.fingerprint, ctx.weights, k.version):
            current = None
        merged = _merge_users(current, tables, todo)
        write_unit(run_dir, k.name, params, merged, info=info, fingerprint=ctx.fingerprint, weights=ctx.weights,
                   version=k.version, seconds=time.perf_counter() - t0, device=ctx.device)
    return sum(len(t) for t in tables.values()), "computed"
