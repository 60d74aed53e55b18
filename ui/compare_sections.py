"""The Compare page's tabs: every run next to the baselines, two runs head to head, for whom each run is better,
and one user's recommendations and explanations from two runs. Each tab draws only when it is open, from the runs'
stored evaluations and explanations (ui.compare_jobs); per-user work outside the stored samples is live."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from seqrec_core import compare
from seqrec_core.data.dataset import Dataset
from seqrec_core.errors import InputError
from seqrec_core.evaluation import AUC_HELP
from seqrec_core.viz.plot_compare import (
    plot_attribution_side_by_side,
    plot_paired_difference,
    plot_runs_metrics,
    plot_topk_overlap,
)
from seqrec_core.viz.plot_evaluation import plot_metric_by_history_length
from seqrec_core.viz.plot_patterns_model import plot_metrics_by_segment
from ui import compare_cache as cache
from ui import compare_jobs, compute, explain_cache, links, stored
from ui.widgets import download_table

TARGETS = {"heldout": "The user's real next item (same target for both runs)",
           "top": "Each run's own top recommendation"}


@dataclass
class CompareView:
    """What every tab reads: the data, the runs with their stored evaluations, and the two runs picked."""

    ds: Dataset
    metas: list
    runs: dict  # name -> LazyRun
    results: dict  # name -> EvalResult of each run
    evaluations: dict  # name -> StoredEvaluation
    newest: str  # the run whose stored baselines are shown (the same in every run's evaluation)
    baselines: dict
    metrics: object  # pandas DataFrame: metrics with 95% intervals of runs and baselines
    colors: dict
    setups: dict
    exclude_seen: bool
    run_a: str | None
    run_b: str | None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(compute.run_key(self.runs[m.name]) for m in self.metas)

    @property
    def all_results(self) -> list:
        return [*self.results.values(), *self.baselines.values()]


def all_runs_tab(v: CompareView) -> None:
    table = compare.get_runs_table(v.metas, v.metrics)
    st.dataframe(compare.runs_table_for_display(table), width="stretch", hide_index=True)
    st.caption("One row per run, newest first. Setup = the family and the model options that differ from its "
               "defaults; metrics on test users with their 95% bootstrap interval in brackets.")
    download_table(table, "runs_compared.csv", label="Download runs table (CSV)")
    with st.expander("Every option of every run"):
        options = compare.get_options_table(v.metas)
        differing = compare.differing_options(options)
        show_all = st.toggle("Also show the options every run shares", value=not differing,
                             help="Off: only the options whose value differs between runs, so what tells them apart "
                                  "stands out. Training options start with 'train:'.")
        st.dataframe(compare.options_for_display(options, show_all, keep=("run", "family")), width="stretch",
                     hide_index=True)
        st.caption(f"{len(differing)} of {options.shape[1] - 1} options differ between these runs"
                   + ("" if show_all else " (the others are hidden)") + "; blank = the run's family has no such "
                   "option, 'none' = left unset.")
        download_table(options, "run_options.csv", label="Download every option (CSV)")
    st.plotly_chart(plot_runs_metrics(v.metrics, compare.COMPARE_METRICS, runs=[m.name for m in v.metas],
                                      colors=v.colors), width="stretch", theme=None)
    st.caption("Each panel is one metric: longer bars are better; when two runs' whiskers overlap, the difference "
               "may be chance. Grey bars are the baselines, the dotted line the best of them. " + AUC_HELP)
    download_table(v.metrics, "metrics_with_ci.csv", label="Download all metrics with intervals (CSV)")
    ranked = v.metrics[v.metrics["kind"] == "run"].sort_values("NDCG@10", ascending=False, kind="stable")
    best = str(ranked["model"].iloc[0])
    diffs = cache.paired(v.keys, v.ds.fingerprint, v.exclude_seen, best, v.all_results)
    with st.expander(f"Every run and baseline against the best run by NDCG@10 ({best})", expanded=len(v.runs) < 2):
        st.dataframe(compare.paired_differences_for_display(diffs), width="stretch", hide_index=True)
        st.caption("Difference to the best run on the same test users, with a paired bootstrap 95% interval. "
                   "'worse' or 'better' = the interval excludes 0; 'within chance' = the data cannot tell them "
                   "apart.")
        download_table(diffs, "paired_differences.csv", label="Download paired differences (CSV)")


def head_to_head_tab(v: CompareView) -> None:
    if v.run_a is None or v.run_b is None:
        st.info("Train a second run to compare two runs user by user here and for one user.")
        return
    a, b = v.run_a, v.run_b
    pair_table = cache.head_to_head(compute.run_key(v.runs[a]), compute.run_key(v.runs[b]), v.ds.fingerprint,
                                    v.exclude_seen, v.results[a], v.results[b])
    ndcg = pair_table.set_index("metric").loc["NDCG@10"]
    st.markdown(f"**A** = `{a}` ({v.setups[a]}) · **B** = `{b}` ({v.setups[b]}) · verdict on NDCG@10: "
                f"**{ndcg['verdict']}**")
    p1, p2 = st.columns(2)
    with p1:
        st.plotly_chart(plot_paired_difference(pair_table, colors={"A": v.colors[a], "B": v.colors[b]},
                                               names={"A": a, "B": b}), width="stretch", theme=None)
        st.caption("Each dot is A's mean minus B's over the same test users, the whisker its paired 95% interval "
                   "(users resampled together, so the easy-vs-hard spread both share cancels). Right of the line: A "
                   "better; a whisker crossing the line: the data cannot tell them apart.")
    with p2:
        st.dataframe(compare.paired_difference_for_display(pair_table), width="stretch", hide_index=True)
        st.caption(compare.describe_paired_difference(pair_table) + f" · {int(pair_table['users'].iloc[0]):,} "
                   "test users.")
        download_table(pair_table, f"head_to_head_{a}_vs_{b}.csv", label="Download head to head (CSV)")
    compare_jobs.planted_head_to_head({"A": v.runs[a], "B": v.runs[b]}, v.ds)


def for_whom_tab(v: CompareView) -> None:
    b1, b2 = st.columns([1, 3])
    metric = b1.selectbox("Metric", compare.metrics_known(v.all_results), index=1,
                          help="HR@10: share of users whose real next item is in the top 10. NDCG@10 also rewards "
                               "placing it higher. MRR: mean of 1/rank. " + AUC_HELP)
    with_base = b2.toggle("Show the baselines in these charts", value=False,
                          help="Off keeps the charts to the trained runs; the baselines are on the All runs tab.")
    chosen = v.all_results if with_base else list(v.results.values())
    g1, g2 = st.columns(2)
    with g1:
        by_len = cache.history_table(v.evaluations, v.newest, metric, with_base)
        st.plotly_chart(plot_metric_by_history_length(by_len, metric), width="stretch", theme=None)
        st.caption(f"{metric} by how many events the user had before the test event; sequence models should gain "
                   "most on long histories. Small buckets have wide whiskers.")
        download_table(by_len, "compare_by_history_length.csv", label="Download by history length (CSV)")
    with g2:
        if not v.ds.sequences.has_time:
            st.info("The log has no timestamps (only an event order), so users cannot be split into temporal "
                    "segments (periodic, bursty, …).")
            return
        by_seg = compare_jobs.segments(v.runs, v.evaluations, v.newest, v.ds, v.exclude_seen, with_base)
        if by_seg is None:
            by_seg = cache.segment_metrics(tuple(r.name for r in chosen) + v.keys, v.ds.fingerprint, v.exclude_seen,
                                           chosen, v.ds)
        st.plotly_chart(plot_metrics_by_segment(by_seg, metric), width="stretch", theme=None)
        st.caption(f"{metric} by the user's temporal segment from **Patterns** (periodic rhythm, bursty sessions, "
                   "regular gaps, Poisson-like); does one run suit some kinds of users better?")
        download_table(by_seg, "compare_by_segment.csv", label="Download by segment (CSV)")


def one_user_tab(v: CompareView) -> None:
    if v.run_a is None or v.run_b is None:
        st.info("Train a second run to see two runs' recommendations and explanations for one user.")
        return
    a, b, ds = v.run_a, v.run_b, v.ds
    vocab = ds.sequences.vocab
    s3, s4 = st.columns([3, 1])
    links.seed("user", st.session_state.get("rec_user") or stored.example_user(v.runs[a], ds))
    user = s3.text_input("User id", key="user", bind="query-params",
                         help=f"As in the log, e.g. {', '.join(vocab.user_ids[:3])}. Shared with Recommendations and "
                              "Explain.")
    k = s4.slider("Top K", 5, 30, 10)
    if not vocab.has_user(user):
        st.error(f"User '{user}' is not in {ds.name}. Try one of: {', '.join(vocab.user_ids[:5])}.")
        return
    st.session_state["rec_user"] = user
    pair = {a: v.runs[a], b: v.runs[b]}
    labels = {a: "A", b: "B"}
    try:
        recs = compare_jobs.stored_topk(pair, ds, user, k, v.exclude_seen)
        if recs is None:  # a user outside the stored samples: both runs rank now
            recs = cache.topk((compute.run_key(v.runs[a]), compute.run_key(v.runs[b])), ds.fingerprint, user, k,
                              v.exclude_seen, pair, ds)
    except InputError as err:
        st.error(str(err))
        return
    timed = any(bool(v.runs[n].config["model"].get("time_features")) for n in (a, b))
    st.markdown(f"**A** = `{a}` ({v.setups[a]}) · **B** = `{b}` ({v.setups[b]}) · both rank from the user's history "
                "before their held-out last event" + (" (time-aware runs at that event's time)" if timed else "")
                + ".")
    colors_ab = {a: v.colors[a], b: v.colors[b]}
    t1, t2 = st.columns(2)
    with t1:
        side = compare.topk_side_by_side(recs, [a, b], labels)
        st.dataframe(side.drop(columns=["A: id", "B: id"]), width="stretch", hide_index=True,
                     column_config={"A: score": st.column_config.NumberColumn(format="%.3f"),
                                    "B: score": st.column_config.NumberColumn(format="%.3f")})
        st.caption("The two top-K lists row by row; ✓ = the other run lists it too, ★ = the user's real next item. "
                   "Scores are each model's own units (compare ranks, not scores, across runs).")
        download_table(side, f"topk_{user}_A_vs_B.csv", label="Download both lists (CSV)")
    with t2:
        st.plotly_chart(plot_topk_overlap(recs, [a, b], colors=colors_ab, names={a: "run A", b: "run B"}),
                        width="stretch", theme=None)
        st.caption("Lines join an item both runs recommend; a crossing line means they order it differently.")
    _attributions(v, user, pair, labels, colors_ab)
    links.link_box("Compare", {"user": user, "compare_tab": "One user, two runs"})


def _attributions(v: CompareView, user: str, pair: dict, labels: dict, colors_ab: dict) -> None:
    target_kind = st.radio("Explain which item?", list(TARGETS), format_func=TARGETS.get, horizontal=True,
                           help="The real next item gives both runs the same target, so their columns compare "
                                "directly.")
    target = "heldout" if target_kind == "heldout" else None
    attrs, skipped = {}, []
    for name, run in pair.items():
        try:
            found = compare_jobs.stored_ig(run, v.ds, user, target_kind)
            if found is None and not explain_cache.supports_explain(run):
                skipped.append(f"{labels[name]} ({run.family}) has no item-embedding layer to attribute to")
                continue
            attrs[name] = found if found is not None else explain_cache.attribution(
                compute.run_key(run), v.ds.fingerprint, user, target, "ig", 50, run, v.ds)
        except InputError as err:
            skipped.append(f"{labels[name]}: {err}")
    if skipped:
        st.info("Left out — " + "; ".join(skipped))
    if not attrs:
        return
    aligned = compare.align_attributions(attrs)
    targets = compare.get_attribution_targets(attrs)
    said = []
    for row in targets.itertuples(index=False):
        rank = f"ranks it {int(row.target_rank):,}" if row.target_rank else "rank n/a"
        gap = abs(row.target_score - row.baseline_score) if row.baseline_score is not None else 0.0
        share = abs(row.convergence_delta or 0.0) / gap if gap > 0 else float("nan")
        fit = (f"IG adds up to the score gap within {share:.0%}" + (" (approximate: read the bars roughly)"
                                                                     if share > 0.05 else "")
               if share == share else "IG completeness n/a")
        said.append(f"**{labels[row.run]}** {rank} · {fit}")
    first = targets.iloc[0]
    st.markdown(f"Explaining **{first.target_title or 'id ' + first.target_item}** · " + " · ".join(said)
                if target == "heldout" else " · ".join(said))
    shown = list(attrs)
    names_ab = {n: f"{labels[n]}: {n}" for n in pair}
    st.plotly_chart(plot_attribution_side_by_side(aligned, shown, targets, colors=colors_ab, names=names_ab),
                    width="stretch", theme=None)
    st.caption("Integrated gradients over the same history, one row per run (latest event on the right): a tall "
               "bar is an event that raised the explained item's score, a grey one lowered it. Hover for the title "
               "and how long ago.")
    events = aligned.drop(columns=["timestamp", "seconds_before"]).rename(columns=labels)
    st.dataframe(events.sort_values("lag"), width="stretch", hide_index=True, height=320,
                 column_config={labels[n]: st.column_config.NumberColumn(f"{labels[n]}: IG", format="%.3g")
                                for n in shown})
    st.caption("Each history event (latest first) with both runs' attributions; blank = outside that run's window.")
    download_table(aligned, f"attributions_{user}_A_vs_B.csv", label="Download attributions (CSV)")
    download_table(targets, f"attribution_targets_{user}.csv", label="Download explained targets (CSV)")
