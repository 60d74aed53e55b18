"""Evaluate: the model against honest baselines, full ranking, with 95% intervals."""
import streamlit as st

from seqrec_core.evaluation import ALL_METRICS, AUC_HELP, AUC_METRICS, METRICS, get_rank_distribution
from seqrec_core.training.verdict import METRIC as VERDICT_METRIC
from seqrec_core.training.verdict import verdict_from_run
from seqrec_core.viz.plot_evaluation import (
    plot_metric_by_history_length,
    plot_metric_comparison,
    plot_rank_distribution,
)
from ui import compute, state, stored
from ui.review import download_review
from ui.widgets import download_table, verdict_box

st.title("Evaluate")
st.caption("How well does the model predict each user's last event? Leave-one-out in time, every item in the "
           "catalogue ranked, next to popularity, first-order Markov and item-kNN under the same protocol.")
ds = state.require_dataset()
run = state.require_run(ds)

c1, c2 = st.columns([1, 3])
exclude_seen = c1.toggle("Exclude seen items", value=compute.exclude_seen_default(ds.fingerprint, ds),
                         help="On: items the user already had are removed from the ranking (right for logs without "
                              "repeats, where a seen item can never be the next one; the default there). Off: every "
                              "item can be recommended (repeat purchases count; the default for logs with repeats).")
metric = c2.selectbox("Metric for the charts", ALL_METRICS, index=ALL_METRICS.index("NDCG@10"),
                      help="HR@K: share of users whose held-out item is in the top K. NDCG@K also rewards placing it "
                           "higher. MRR: mean of 1/rank. " + AUC_HELP)

found = stored.lookup(run, ds, "evaluation", exclude_seen=bool(exclude_seen))
if not found.fresh:
    stored.offer(run, ds, found, "the evaluation of the model and the baselines", key="evaluate",
                 cost="seconds on the demo, about a minute for 20,000 users")
    st.stop()
evaluation = compute.stored_evaluation(found.unit, run.path.name)
ordered = list(evaluation.results.values())
st.markdown(f"**Protocol:** test split, {len(ordered[0].users):,} users, full ranking over "
            f"{ds.sequences.vocab.n_items:,} items, seen items **{'excluded' if exclude_seen else 'included'}**.")

model_result = evaluation.results.get(run.path.name)
if model_result is not None:  # how training went, judged on this page's numbers (this seen-items setting)
    baselines = {name: r.metrics[VERDICT_METRIC] for name, r in evaluation.results.items() if name != run.path.name}
    verdict_box(verdict_from_run(run.config, model_result.metrics[VERDICT_METRIC], baselines))

table = evaluation.metrics
st.plotly_chart(plot_metric_comparison(table, metric), width="stretch", theme=None)
st.caption(f"{metric} per model with bootstrap 95% intervals (1,000 resamples of users). "
           "Bars whose intervals do not overlap differ beyond chance.")
auc_columns = [c for m in AUC_METRICS for c in (m, f"{m} lo", f"{m} hi")]
shown = table.reindex(columns=["model", "users", *METRICS, *auc_columns])  # an old stored table lacks AUC: NaN
st.dataframe(shown.style.format({c: "{:.4f}" for c in shown.columns[2:]}, na_rep="—"), width="stretch",
             hide_index=True)
st.caption("**AUC** is the share of the catalogue the model ranks below the item the user really took next "
           "(0.5 = random, 1 = always first), averaged over users; **GAUC** weights each user by the events before "
           "the held-out one. *lo*/*hi*: bootstrap 95% interval. Ties count half, as in scikit-learn."
           + ("" if shown["AUC"].notna().all() else " — = not known: this evaluation was stored before AUC "
              "existed; compute it again."))
download_table(table, "metrics.csv")

c1, c2 = st.columns(2)
with c1:
    st.plotly_chart(plot_rank_distribution(get_rank_distribution(ordered), ds.sequences.vocab.n_items),
                    width="stretch", theme=None)
    st.caption("Share of users whose held-out item ranks at or above each position (log scale). "
               "Higher and further left is better; the guides mark the top 10 and 20.")
with c2:
    by_len = evaluation.by_history[evaluation.by_history["metric"] == metric].drop(columns="metric")
    st.plotly_chart(plot_metric_by_history_length(by_len, metric), width="stretch", theme=None)
    st.caption(f"{metric} by how many events the user had before the test event. Sequence models should gain "
               "most on longer histories.")
download_table(by_len, "metrics_by_history_length.csv")
stored.caption(found, f"seen items {'excluded' if exclude_seen else 'included'}")
st.divider()
download_review(run, ds, key="evaluate")
st.caption("The review puts these numbers, the model card, how far back the model looks, how faithful its "
           "explanations are and a few users' explanations in one HTML file to keep or share.")
