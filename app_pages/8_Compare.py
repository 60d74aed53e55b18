"""Compare: every run trained on this dataset side by side, under one evaluation protocol, next to the baselines."""
import streamlit as st

from seqrec_core import compare
from seqrec_core.analysis.job import default_user
from seqrec_core.errors import InputError
from seqrec_core.viz.plot_compare import (
    plot_attribution_side_by_side,
    plot_paired_difference,
    plot_runs_metrics,
    plot_topk_overlap,
)
from seqrec_core.viz.plot_evaluation import plot_metric_by_history_length
from seqrec_core.viz.plot_patterns_model import plot_metrics_by_segment
from seqrec_core.viz.theme import model_colors
from ui import compare_cache as cache
from ui import compare_jobs, compute, explain_cache, links, state, stored
from ui.widgets import download_table

TARGETS = {"heldout": "The user's real next item (same target for both runs)",
           "top": "Each run's own top recommendation"}

st.title("Compare")
st.caption("Which model should you use? Every run trained on this dataset, evaluated the same way (test split, "
           "full ranking, same users), with 95% intervals, broken down by user, and two runs' recommendations "
           "and explanations for one user side by side.")
ds = state.require_dataset()
fp = ds.fingerprint
metas = cache.list_metas(state.runs_root(), fp)
if not metas:
    st.info(f"No model has been trained on **{ds.name}** yet. Train at least two (e.g. two families) on **Train**, "
            "then compare them here.")
    st.page_link("app_pages/3_Train.py", label="Go to Train")
    st.stop()
if len(metas) < 2:
    st.info("Only one run is trained on this data, so there is nothing to compare it with yet: train another "
            "(another family or other settings) on **Train**. Its numbers next to the baselines are below.")
    st.page_link("app_pages/3_Train.py", label="Go to Train")

c1, c2 = st.columns([1, 3])
exclude_seen = c1.toggle("Exclude seen items", value=compute.exclude_seen_default(fp, ds),
                         help="On: items the user already had are removed from the ranking (the default for logs "
                              "without repeats). Applies to every run and baseline alike.")
runs, evaluations, failed, missing = {}, {}, [], []
for meta in metas:
    try:
        run = state.lazy_run(meta.path)
    except (InputError, OSError) as err:
        failed.append(f"{meta.name}: {err}")
        continue
    runs[meta.name] = run
    found = stored.lookup(run, ds, "evaluation", exclude_seen=bool(exclude_seen))
    if found.fresh:
        evaluations[meta.name] = compute.stored_evaluation(found.unit, meta.name)
    else:
        missing.append((run, found))
if failed:
    st.warning("Left out (cannot be loaded) — " + "; ".join(failed))
if missing:
    compare_jobs.offer_missing(missing, ds)
metas = [m for m in metas if m.name in evaluations]
if not metas:
    st.stop()
results = {name: ev.results[name] for name, ev in evaluations.items()}
newest = metas[0].name  # the baselines' numbers are the same in every run's evaluation: take the newest run's
baselines = {b: evaluations[newest].results[b] for b in compare.BASELINE_NAMES if b in evaluations[newest].results}
keys = tuple(compute.run_key(runs[m.name]) for m in metas)
all_results = [*results.values(), *baselines.values()]
metrics = cache.metrics_table(evaluations, newest)
n_users = len(next(iter(results.values())).users)
c2.markdown(f"**Protocol:** test split (each user's last event), {n_users:,} users, every one of "
            f"{ds.sequences.vocab.n_items:,} items ranked, "
            f"seen items **{'excluded' if exclude_seen else 'included'}**, "
            f"{len(results)} run{'s' if len(results) != 1 else ''} and {len(baselines)} baselines, from each run's "
            "stored evaluation.")

st.subheader("Runs on this dataset")
table = compare.get_runs_table(metas, metrics)
st.dataframe(compare.runs_table_for_display(table), width="stretch", hide_index=True)
st.caption("One row per run, newest first. Setup = the family and the model options that differ from its defaults; "
           "metrics on test users with their 95% bootstrap interval in brackets.")
download_table(table, "runs_compared.csv", label="Download runs table (CSV)")
with st.expander("Every option of every run"):
    options = compare.get_options_table(metas)
    differing = compare.differing_options(options)
    show_all = st.toggle("Also show the options every run shares", value=not differing,
                         help="Off: only the options whose value differs between runs, so what tells them apart "
                              "stands out. Training options start with 'train:'.")
    st.dataframe(compare.options_for_display(options, show_all, keep=("run", "family")), width="stretch",
                 hide_index=True)
    st.caption(f"{len(differing)} of {options.shape[1] - 1} options differ between these runs"
               + ("" if show_all else " (the others are hidden)") + "; blank = the run's family has no such option, "
               "'none' = left unset.")
    download_table(options, "run_options.csv", label="Download every option (CSV)")

colors = model_colors([m.name for m in metas])  # one colour per run on every chart of the page
st.plotly_chart(plot_runs_metrics(metrics, compare.COMPARE_METRICS, runs=[m.name for m in metas], colors=colors),
                width="stretch", theme=None)
st.caption("Each panel is one metric: longer bars are better; when two runs' whiskers overlap, the difference "
           "may be chance. Grey bars are the baselines, the dotted line the best of them.")
download_table(metrics, "metrics_with_ci.csv", label="Download all metrics with intervals (CSV)")

# -------------------------------------------------------------------------------------------- head to head
names = [m.name for m in metas]
setups = {m.name: m.setup for m in metas}
st.subheader("Two runs head to head")
if len(names) >= 2:
    in_use = st.session_state.get(state.RUN_KEY)
    first = next((i for i, m in enumerate(metas) if str(m.path) == in_use), 0)
    h1, h2 = st.columns(2)
    run_a = h1.selectbox("Run A", names, index=first, format_func=lambda n: f"{n} ({setups[n]})",
                         help="Defaults to the run in use. Also used for the one-user comparison below.")
    run_b = h2.selectbox("Run B", [n for n in names if n != run_a], format_func=lambda n: f"{n} ({setups[n]})",
                         help="Any other run on this dataset.")
    pair_table = cache.head_to_head(compute.run_key(runs[run_a]), compute.run_key(runs[run_b]), fp, exclude_seen,
                                    results[run_a], results[run_b])
    ndcg = pair_table.set_index("metric").loc["NDCG@10"]
    st.markdown(f"**A** = `{run_a}` ({setups[run_a]}) · **B** = `{run_b}` ({setups[run_b]}) · verdict on NDCG@10: "
                f"**{ndcg['verdict']}**")
    p1, p2 = st.columns(2)
    with p1:
        st.plotly_chart(plot_paired_difference(pair_table, colors={"A": colors[run_a], "B": colors[run_b]},
                                               names={"A": run_a, "B": run_b}), width="stretch", theme=None)
        st.caption("Each dot is A's mean minus B's over the same test users, the whisker its paired 95% interval "
                   "(users resampled together, so the easy-vs-hard spread both share cancels). Right of the line: A "
                   "better; a whisker crossing the line: the data cannot tell them apart.")
    with p2:
        st.dataframe(compare.paired_difference_for_display(pair_table), width="stretch", hide_index=True)
        st.caption(compare.describe_paired_difference(pair_table) + f" · {int(pair_table['users'].iloc[0]):,} "
                   "test users.")
        download_table(pair_table, f"head_to_head_{run_a}_vs_{run_b}.csv", label="Download head to head (CSV)")
    compare_jobs.planted_head_to_head({"A": runs[run_a], "B": runs[run_b]}, ds)
else:
    run_a = run_b = None
    st.info("Train a second run to compare two runs user by user here and for one user below.")

ranked = metrics[metrics["kind"] == "run"].sort_values("NDCG@10", ascending=False, kind="stable")
best = str(ranked["model"].iloc[0])
diffs = cache.paired(keys, fp, exclude_seen, best, all_results)
with st.expander(f"Every run and baseline against the best run by NDCG@10 ({best})", expanded=len(names) < 2):
    st.dataframe(compare.paired_differences_for_display(diffs), width="stretch", hide_index=True)
    st.caption("Difference to the best run on the same test users, with a paired bootstrap 95% interval. 'worse' "
               "or 'better' = the interval excludes 0; 'within chance' = the data cannot tell them apart.")
    download_table(diffs, "paired_differences.csv", label="Download paired differences (CSV)")

# ------------------------------------------------------------------------------------------------ breakdowns
st.subheader("For whom is each run better?")
b1, b2 = st.columns([1, 3])
metric = b1.selectbox("Metric", compare.COMPARE_METRICS, index=1, help="HR@10: share of users whose real next item "
                      "is in the top 10. NDCG@10 also rewards placing it higher. MRR: mean of 1/rank.")
with_base = b2.toggle("Show the baselines in these charts", value=False,
                      help="Off keeps the charts to the trained runs; the baselines are always in the chart above.")
chosen = all_results if with_base else list(results.values())
g1, g2 = st.columns(2)
with g1:
    by_len = cache.history_table(evaluations, newest, metric, with_base)
    st.plotly_chart(plot_metric_by_history_length(by_len, metric), width="stretch", theme=None)
    st.caption(f"{metric} by how many events the user had before the test event; sequence models should gain "
               "most on long histories. Small buckets have wide whiskers.")
    download_table(by_len, "compare_by_history_length.csv", label="Download by history length (CSV)")
with g2:
    if not ds.sequences.has_time:
        st.info("The log has no timestamps (only an event order), so users cannot be split into temporal "
                "segments (periodic, bursty, …).")
    else:
        by_seg = compare_jobs.segments(runs, evaluations, newest, ds, bool(exclude_seen), with_base)
        if by_seg is None:
            by_seg = cache.segment_metrics(tuple(r.name for r in chosen) + keys, fp, exclude_seen, chosen, ds)
        st.plotly_chart(plot_metrics_by_segment(by_seg, metric), width="stretch", theme=None)
        st.caption(f"{metric} by the user's temporal segment from **Patterns** (periodic rhythm, bursty sessions, "
                   "regular gaps, Poisson-like); does one run suit some kinds of users better?")
        download_table(by_seg, "compare_by_segment.csv", label="Download by segment (CSV)")

# -------------------------------------------------------------------------------------- one user, two runs
if run_a is None or run_b is None:
    st.stop()  # the head-to-head section already asked for a second run
st.subheader("One user, two runs")
vocab = ds.sequences.vocab
s3, s4 = st.columns([3, 1])
links.seed("user", st.session_state.get("rec_user") or default_user(ds))
user = s3.text_input("User id", key="user", bind="query-params",
                     help=f"As in the log, e.g. {', '.join(vocab.user_ids[:3])}. Shared with Recommendations and "
                          "Explain.")
k = s4.slider("Top K", 5, 30, 10)
if not vocab.has_user(user):
    st.error(f"User '{user}' is not in {ds.name}. Try one of: {', '.join(vocab.user_ids[:5])}.")
    st.stop()
st.session_state["rec_user"] = user
pair = {run_a: runs[run_a], run_b: runs[run_b]}
labels = {run_a: "A", run_b: "B"}
try:
    recs = compare_jobs.stored_topk(pair, ds, user, k, bool(exclude_seen))
    if recs is None:  # a user outside the stored samples: both runs rank now
        recs = cache.topk((compute.run_key(runs[run_a]), compute.run_key(runs[run_b])), fp, user, k, exclude_seen,
                          pair, ds)
except InputError as err:
    st.error(str(err))
    st.stop()
timed = any(bool(runs[n].config["model"].get("time_features")) for n in (run_a, run_b))
st.markdown(f"**A** = `{run_a}` ({setups[run_a]}) · **B** = `{run_b}` ({setups[run_b]}) · both rank from the "
            "user's history before their held-out last event" + (" (time-aware runs at that event's time)" if timed
                                                                  else "") + ".")
names_ab = {run_a: f"A: {run_a}", run_b: f"B: {run_b}"}
colors_ab = {run_a: colors[run_a], run_b: colors[run_b]}
t1, t2 = st.columns(2)
with t1:
    side = compare.topk_side_by_side(recs, [run_a, run_b], labels)
    st.dataframe(side.drop(columns=["A: id", "B: id"]), width="stretch", hide_index=True,
                 column_config={"A: score": st.column_config.NumberColumn(format="%.3f"),
                                "B: score": st.column_config.NumberColumn(format="%.3f")})
    st.caption("The two top-K lists row by row; ✓ = the other run lists it too, ★ = the user's real next item. "
               "Scores are each model's own units (compare ranks, not scores, across runs).")
    download_table(side, f"topk_{user}_A_vs_B.csv", label="Download both lists (CSV)")
with t2:
    st.plotly_chart(plot_topk_overlap(recs, [run_a, run_b], colors=colors_ab,
                                      names={run_a: "run A", run_b: "run B"}), width="stretch",
                    theme=None)
    st.caption("Lines join an item both runs recommend; a crossing line means they order it differently.")

target_kind = st.radio("Explain which item?", list(TARGETS), format_func=TARGETS.get, horizontal=True,
                       help="The real next item gives both runs the same target, so their columns compare directly.")
target = "heldout" if target_kind == "heldout" else None
attrs, skipped = {}, []
for name in (run_a, run_b):
    run = runs[name]
    try:
        attrs[name] = compare_jobs.stored_ig(run, ds, user, target_kind)
        if attrs[name] is None:
            if not explain_cache.supports_explain(run):
                skipped.append(f"{labels[name]} ({run.family}) has no item-embedding layer to attribute to")
                attrs.pop(name)
                continue
            attrs[name] = explain_cache.attribution(compute.run_key(run), fp, user, target, "ig", 50, run, ds)
    except InputError as err:
        attrs.pop(name, None)
        skipped.append(f"{labels[name]}: {err}")
if skipped:
    st.info("Left out — " + "; ".join(skipped))
if attrs:
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
