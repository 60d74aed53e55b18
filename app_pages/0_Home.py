"""Home: what the dashboard answers, the demo button, and the workflow with the state of each step."""
import streamlit as st

from seqrec_core.viz.plot_data import plot_events_over_time, plot_sequence_lengths
from ui import state, uploads
from ui.demo import ensure_demo_run

st.title("SeqRec Lens")
st.markdown("Bring a behaviour log (**who** did **what**, **when**), train a Transformer sequence recommender on it, "
            "measure it against honest baselines, and see what it recommends to whom.")

ds = state.get_dataset()
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("What you can answer here")
    st.markdown(
        "- **What is in my log?** users, items, sequence lengths, activity over time, and what cleaning dropped.\n"
        "- **How good is a sequence model on it?** full-ranking HR, NDCG and MRR with 95% intervals, next to "
        "popularity, Markov and item-kNN baselines under the same protocol.\n"
        "- **Why does it recommend that?** attention maps and Captum attributions per past event, how far back the "
        "model looks, whether the explanation is faithful, and what-if edits of a history.\n"
        "- **What has it learned?** UMAP / PCA maps of the item and user spaces, nearest neighbours of any item.\n"
        "- **What does it recommend to whom?** any user's history as a timeline, their top-K, and where the item "
        "they really chose next ranks.\n"
        "- **Headless too:** everything here is `python -m seqrec_core ...` for GPU servers and scripts.")
with right:
    st.subheader("Start")
    if st.button("Load demo data", type="primary", help="A synthetic shop log (2,000 users, ~100,000 events) with "
                 "planted daily/weekly rhythms, item bursts and long-range trigger→response pairs."):
        ds = state.load_demo()
        ensure_demo_run()
        st.success(f"Demo data loaded: {ds.sequences.n_users:,} users, {ds.sequences.n_events:,} events"
                   + (", with two pre-trained SASRecs and their stored analyses: every page opens at once."
                      if state.get_run() is not None else "."))
    st.page_link("app_pages/1_Data.py", label="…or bring your own log")
    st.caption("CSV/TSV, Parquet, JSON Lines, MovieLens or sequence text; columns are detected and can be changed.")
    if ds is not None:  # the log at a glance (and the browser loads its chart library here, not on the next page)
        summary = uploads.summary(ds)
        figure = (plot_events_over_time(summary.events_per_day) if summary.events_per_day is not None
                  else plot_sequence_lengths(summary.seq_lengths))
        figure.update_layout(height=260, title_subtitle_text="")  # the narrow column would cut the subtitle
        st.plotly_chart(figure, width="stretch", theme=None)
        st.caption("Your log at a glance; **Data** and **Patterns** show it in full.")

st.subheader("Your workflow")
run = state.get_run()
steps = [
    ("app_pages/1_Data.py", "1 · Data", ds is not None,
     f"{ds.name}: {ds.sequences.n_users:,} users, {ds.sequences.n_events:,} events" if ds else "no log loaded"),
    ("app_pages/2_Patterns.py", "2 · Patterns", False,
     "ready: daily/weekly rhythms, bursts, repeat consumption" if ds else "needs a log"),
    ("app_pages/3_Train.py", "3 · Train", run is not None,
     f"run {run.path.name} ({run.config.get('family')})" if run else "no model in use"),
    ("app_pages/4_Evaluate.py", "4 · Evaluate", False,
     "ready: model vs baselines with 95% intervals" if run else "needs a model"),
    ("app_pages/5_Explain.py", "5 · Explain", False,
     "ready: which past events drive a recommendation, how far back, can we trust it" if run else "needs a model"),
    ("app_pages/6_Embeddings.py", "6 · Embeddings", False,
     "ready: maps of the learned item and user spaces" if run else "needs a model"),
    ("app_pages/7_Recommendations.py", "7 · Recommendations", False,
     "ready: per-user top-K and held-out rank" if run else "needs a model"),
    ("app_pages/8_Compare.py", "8 · Compare", False,
     "ready: every run on this data side by side, with paired differences" if run else "needs two or more runs"),
]
for page, label, done, detail in steps:
    c1, c2 = st.columns([1, 3])
    with c1:
        st.page_link(page, label=f"{label}  ✓" if done else label)
    with c2:
        st.caption(detail)
