"""The report's run-level sections: the header, the data and its time patterns, the model card and the metrics
against the baselines. Each builds its figures with the dashboard's own ``viz.plot_*`` builders, so the report
and the pages draw the same charts from the same numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from seqrec_core.evaluation import ALL_METRICS, AUC_HELP
from seqrec_core.report.content import Part, ReviewContent
from seqrec_core.report.render import Canvas, Section, facts, note, para, table, text
from seqrec_core.report.sentences import metrics_sentence
from seqrec_core.training.verdict import stop_reason_words

SHOWN_METRICS = ("HR@10", "HR@20", "NDCG@10", "NDCG@20", "MRR", "AUC", "GAUC")  # the table's columns (figures: @10)


def provenance(part: Part, settings: str = "") -> str:
    """'Stored analysis, computed 2026-12-07 00:13 UTC in 11.9 s on cpu · parameters …': where numbers come from."""
    unit = part.unit
    if unit is None:
        return ""
    params = ", ".join(f"{k}={v}" for k, v in unit.params.items()) or "none"
    extra = f" · {settings}" if settings else ""
    return para(f"Stored analysis “{part.kind}”, {unit.describe()} · parameters: {params}{extra} · analysis "
                f"version {unit.meta.get('version')}, seqrec_core {unit.meta.get('library_version', '?')}.",
                "provenance")


def gap(part: Part, content: ReviewContent) -> str:
    """The note for a part that is not shown (missing, stale, or not applicable); empty when it is shown."""
    message = part.missing_text(content.run_dir)
    return note(message, skip=bool(part.skipped)) if message else ""


def header(content: ReviewContent) -> str:
    cfg = content.files.config
    versions = cfg.get("versions") or {}
    pairs = [("Run", content.run_name), ("Model family", content.files.family),
             ("Data", f"{content.dataset.name} · fingerprint {content.dataset.fingerprint}"),
             ("Trained", f"{cfg.get('created', '?')} on {cfg.get('device', '?')}"),
             ("Report generated", content.generated),
             ("Library versions", " · ".join(f"{k} {v}" for k, v in versions.items()) or cfg.get("library_version")),
             ("Users explained", ", ".join(content.user_ids) or "none")]
    return f"<h1>{text('Review: ' + content.run_name)}</h1>" + facts(pairs)


def data_section(content: ReviewContent, canvas: Canvas) -> Section:
    from seqrec_core.data.summary import get_data_summary
    from seqrec_core.viz.plot_data import plot_events_over_time, plot_item_popularity, plot_sequence_lengths

    ds = content.dataset
    s = get_data_summary(ds.events)
    section = Section("data", "Data", "Who did what, and when: the log the model was trained and evaluated on.")
    span = (f"{s.time_span[0]:%Y-%m-%d} to {s.time_span[1]:%Y-%m-%d} (UTC)" if s.time_span is not None
            else "no timestamps (event order only)")
    section.add(facts([("Name", ds.name), ("Fingerprint", ds.fingerprint), ("Users", f"{s.users:,}"),
                       ("Items", f"{s.items:,}"), ("Events", f"{s.events:,}"), ("Density", f"{s.density:.3%}"),
                       ("Median events per user", f"{np.median(s.seq_lengths):,.0f}" if s.users else "0"),
                       ("Time span", span), ("Repeat share", f"{s.repeat_share:.1%} of events repeat an item the "
                                                             "user already had"),
                       ("Titles / categories", f"{'yes' if s.has_titles else 'no'} / "
                                               f"{'yes' if s.has_categories else 'no'}")]))
    counts = np.bincount(np.concatenate(ds.sequences.sequences) if ds.sequences.sequences else np.zeros(0, int),
                         minlength=ds.sequences.vocab.n_items + 1)[1:]
    figs = [canvas.figure(plot_sequence_lengths(s.seq_lengths), "How many events each user has; the dashed line "
                          "is the median."),
            canvas.figure(plot_item_popularity(counts), "Events per item by popularity rank (log-log): a steep line "
                          "means a few hits dominate, which makes popularity a strong baseline.")]
    if s.events_per_day is not None:
        figs.append(canvas.figure(plot_events_over_time(s.events_per_day), "Events per calendar day (UTC)."))
    section.add(f'<div class="grid">{"".join(figs)}</div>')
    return section


def patterns_section(content: ReviewContent, canvas: Canvas) -> Section:
    from seqrec_core.viz.plot_patterns import (
        fmt_hours,
        plot_hour_weekday,
        plot_iet_histogram,
        plot_periodogram,
        plot_segments,
    )

    section = Section("patterns", "Time patterns", "Periodic and bursty rhythms of the log (UTC), computed from "
                                                   "the data when the report was generated.")
    rep = content.patterns
    if rep is None:
        return section.add(note(content.patterns_note or "No time patterns.", skip=True))
    significant = [fmt_hours(p.period_hours) for p in rep.periods if p.significant]
    section.add(para(f"{rep.events:,} events by {rep.users:,} users. Significant periods: "
                     f"{', '.join(significant) or 'none'}. Burstiness B = {rep.burstiness:+.2f} (−1 clockwork, 0 "
                     f"random, +1 bursty); memory M = {rep.memory:+.2f}. {len(rep.item_bursts):,} item bursts; "
                     f"{rep.repeats.repeat_share:.1%} of events repeat an item.", "finding"))
    figs = [canvas.figure(plot_periodogram(rep.periods_frame()), "Tested periods; red = significant (noise would "
                          "rarely reach that strength)."),
            canvas.figure(plot_hour_weekday(rep.hour_weekday, rep.timezone), "Events per hour of day and weekday; "
                          "darker = busier."),
            canvas.figure(plot_iet_histogram(rep.iet_hist, rep.burstiness, rep.memory), "Gaps between a user's "
                          "consecutive events (log-log) against random (Poisson) timing, dashed."),
            canvas.figure(plot_segments(rep.segments), "Users per temporal segment.")]
    section.add(f'<div class="grid">{"".join(figs)}</div>')
    section.add("<h3>Periods</h3>", table(rep.periods_frame(), {"period_hours": ".2f", "strength": ".3f",
                                                                "false_alarm": ".2g"}, max_rows=10))
    summary = rep.segment_summary()
    section.add("<h3>Segments</h3>", table(summary, {"share": ".1%", "median_burstiness": "+.2f",
                                                    "median_memory": "+.2f", "median_events": ".0f"}))
    return section


def _options(mapping: dict, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = [(str(k), v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
            for k, v in mapping.items() if k not in skip]
    return pd.DataFrame([{"option": k, "value": "" if v is None else str(v)} for k, v in rows])


def model_section(content: ReviewContent, canvas: Canvas) -> Section:
    from seqrec_core.viz.plot_training import plot_training_curves

    cfg, files = content.files.config, content.files
    data = cfg.get("data") or {}
    section = Section("model", "Model card", "What was trained, on which data, with which code.")
    section.add(facts([("Family", files.family), ("Run folder", content.run_name),
                       ("Data", f"{data.get('name', '?')} · fingerprint {data.get('fingerprint', '?')} · "
                                f"{_count(data.get('users'))} users, {_count(data.get('items'))} items, "
                                f"{_count(data.get('events'))} events" if data else None),
                       ("Library versions", " · ".join(f"{k} {v}" for k, v in (cfg.get("versions") or {}).items())),
                       ("Trained", f"{cfg.get('created', '?')} on {cfg.get('device', '?')}, "
                                   f"{float(cfg.get('train_seconds') or 0):,.0f} s"),
                       ("Epochs", f"{cfg.get('epochs_trained', '?')} trained, best {cfg.get('best_epoch', '?')}, "
                                  f"stopped: {stop_reason_words(cfg.get('stopped_reason', '?'))}"),
                       ("Seen items at evaluation", "excluded" if cfg.get("exclude_seen") else "included")]))
    section.add(canvas.figure(plot_training_curves(files.history), "Training loss and validation NDCG@10 per "
                              "epoch; the star marks the epoch that was kept."))
    model_opts = _options(cfg.get("model") or {}, skip=("family",))
    train_opts = _options(cfg.get("train") or {})
    section.add('<div class="grid"><div><h3>Model options</h3>' + table(model_opts, max_rows=80) +
                '</div><div><h3>Training options</h3>' + table(train_opts, max_rows=80) + "</div></div>")
    recorded = _recorded_metrics(files.metrics)
    if recorded is not None:
        section.add("<h3>Metrics recorded at training time</h3>", table(recorded))
    return section


def _recorded_metrics(metrics: dict) -> pd.DataFrame | None:
    rows = []
    for part in ("val", "test"):
        values = metrics.get(part) if isinstance(metrics, dict) else None
        if isinstance(values, dict) and values:
            rows.append({"split": part, **{k: _fmt(v) for k, v in values.items() if k in ALL_METRICS}})
    return pd.DataFrame(rows) if rows else None


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _fmt(value: object) -> str:
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)


def metrics_table(frame: pd.DataFrame, metrics: tuple[str, ...] = SHOWN_METRICS) -> pd.DataFrame:
    """Model, users and each metric as 'value [lo, hi]' (95% bootstrap interval); "—" where a metric is unknown
    (AUC in an evaluation stored before AUC existed)."""
    rows = []
    for _, r in frame.iterrows():
        row = {"model": str(r["model"]), "users": int(r["users"]) if "users" in r else None}
        for m in metrics:
            if m not in r or not np.isfinite(float(r[m])):
                row[m] = "—"
            else:
                lo, hi = r.get(f"{m} lo"), r.get(f"{m} hi")
                ci = f" [{lo:.4f}, {hi:.4f}]" if lo is not None and hi is not None and np.isfinite(lo) else ""
                row[m] = f"{float(r[m]):.4f}{ci}"
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_section(content: ReviewContent, canvas: Canvas) -> Section:
    from seqrec_core.evaluation import get_rank_distribution
    from seqrec_core.viz.plot_evaluation import (
        plot_metric_by_history_length,
        plot_metric_comparison,
        plot_rank_distribution,
    )

    part = content.parts["evaluation"]
    section = Section("metrics", "Metrics against the baselines",
                      "Leave-one-out in time: each user's last event is predicted from everything before it, every "
                      "item in the catalogue ranked (no sampled negatives), next to popularity, first-order Markov "
                      "and item-kNN under the same protocol. Brackets are bootstrap 95% intervals over users. "
                      + AUC_HELP)
    ev = content.evaluation
    if ev is None:
        return section.add(gap(part, content))
    ordered = list(ev.results.values())
    n_items = content.dataset.sequences.vocab.n_items
    section.add(para(f"Test split, {len(ordered[0].users):,} users, full ranking over {n_items:,} items, seen items "
                     f"{'excluded' if content.exclude_seen else 'included'} (the data's default).", "lead"))
    finding = metrics_sentence(ev.metrics, content.run_name)
    if finding:
        section.add(para(finding, "finding"))
    section.add(table(metrics_table(ev.metrics)))
    by_len = ev.by_history[ev.by_history["metric"] == "NDCG@10"].drop(columns="metric")
    figs = [canvas.figure(plot_metric_comparison(ev.metrics, "NDCG@10"), "NDCG@10 per model with 95% intervals; "
                          "bars whose intervals do not overlap differ beyond chance."),
            canvas.figure(plot_metric_comparison(ev.metrics, "HR@10"), "HR@10 (share of users whose next item is in "
                          "the top 10) per model."),
            canvas.figure(plot_rank_distribution(get_rank_distribution(ordered), n_items), "Share of users whose "
                          "held-out item ranks at or above each position (log scale)."),
            canvas.figure(plot_metric_by_history_length(by_len, "NDCG@10"), "NDCG@10 by how many events the user had "
                          "before the test event.")]
    seen = "excluded" if content.exclude_seen else "included"
    section.add(f'<div class="grid">{"".join(figs)}</div>', provenance(part, f"seen items {seen}"))
    return section
