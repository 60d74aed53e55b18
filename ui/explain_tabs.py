"""The Explain page's many-user tabs: how far back the model looks, whether its explanations can be trusted, and
the demo's planted truth. Each shows the stored analysis for the settings on screen at once and offers to compute
other settings as a background job (ui.stored); nothing here computes over many users inside a page run."""
from __future__ import annotations

import streamlit as st

from seqrec_core.analysis.kinds_explain import FAITHFULNESS, LONGRANGE, load_faithfulness, load_longrange
from seqrec_core.analysis.reach import get_context_reach
from seqrec_core.demo_run import DEMO_TRAINING_NOTE, INSTALLED_NAMES
from seqrec_core.explain_methods import describe
from seqrec_core.viz.plot_explain import method_name
from seqrec_core.viz.plot_explain_stats import (
    plot_attention_distance,
    plot_attribution_mass,
    plot_faithfulness,
    plot_planted_check,
    plot_truncation_ablation,
)
from ui import compute, stored
from ui.widgets import context_reach_box, download_table


@st.cache_data(show_spinner=False, max_entries=16)
def _longrange(folder: str, created: str, _unit):  # noqa: ANN001, ANN202 - LongRangeStats
    return load_longrange(_unit)


@st.cache_data(show_spinner=False, max_entries=16)
def _faithfulness(folder: str, created: str, _unit):  # noqa: ANN001, ANN202 - Faithfulness
    return load_faithfulness(_unit)


def far_tab(run, ds, available: list[str]) -> None:  # noqa: ANN001 - LazyRun, Dataset
    st.markdown("Many users' predictions explained at once: does the attribution sit on the last few events, or "
                "20+ steps back? Then the history cut to its last *k* events: what does the model lose?")
    reach = get_context_reach(run.path, ds.sequences, ds.fingerprint, run.max_len, run.config.get("model"))
    if reach.verdict != "not_measured":
        context_reach_box(reach.to_dict())
    n_test = len(ds.sequences.split("test").users)
    defaults = LONGRANGE.defaults
    l1, l2, l3 = st.columns(3)
    n_users = int(l1.number_input("Users", 10, max(int(defaults["n_users"]), n_test), int(defaults["n_users"]),
                                  step=50, key="lr_users",
                                  help=f"Sampled test users (fixed seed); at most the {n_test:,} there are."))
    method = l2.selectbox("Method", available, format_func=method_name, key="lr_method")
    steps = int(l3.slider("IG / GradientSHAP steps", 5, 100, int(defaults["steps"]), step=5, key="lr_steps"))
    found = stored.lookup(run, ds, "longrange", n_users=n_users, method=method, steps=steps)
    if not found.fresh:
        stored.offer(run, ds, found, "how far back the model looks", key="longrange",
                     cost=f"{min(n_users, n_test):,} explanations, about a minute")
    else:
        stats = _longrange(str(found.unit.folder), found.unit.created, found.unit)
        beyond = found.unit.info.get("share_mass_ge20")
        m1, m2 = st.columns(2)
        m1.metric("Predictions whose top event is ≥ 20 steps back", f"{stats.share_top_ge20:.0%}",
                  help=f"{stats.users:,} users, {method_name(stats.method)}.")
        if beyond is not None:
            m2.metric("Attribution on events more than 20 steps back", f"{beyond:.0%}",
                      help="Share of all absolute attribution that falls on events 21 or more steps back.")
        g1, g2 = st.columns(2)
        with g1:
            st.plotly_chart(plot_attribution_mass(stats.by_lag, by="lag", share_top_ge20=stats.share_top_ge20,
                                                  users=stats.users, method=stats.method), width="stretch", theme=None)
            st.caption("Share of absolute attribution per lag bucket; a bar above its diamond means those events "
                       "weigh more than their number alone.")
            download_table(stats.by_lag, "attribution_by_lag.csv", label="Download by lag (CSV)")
        with g2:
            if len(stats.by_time_gap):
                st.plotly_chart(plot_attribution_mass(stats.by_time_gap, by="time", users=stats.users,
                                                      method=stats.method), width="stretch", theme=None)
                st.caption("The same mass by how long before the prediction the events happened.")
                download_table(stats.by_time_gap, "attribution_by_time_gap.csv", label="Download by time gap (CSV)")
            else:
                st.info("The log has no timestamps, so attribution cannot be split by time gap.")
        if len(stats.attention_distance):
            st.plotly_chart(plot_attention_distance(stats.attention_distance), width="stretch", theme=None)
            st.caption("Average distance, in events, between each position and what it attends to, per layer and "
                       "head.")
            download_table(stats.attention_distance, "attention_distance.csv",
                           label="Download attention distance (CSV)")
        stepped = getattr(describe(stats.method), "knob", None) == "steps"  # IG / GradientSHAP
        stored.caption(found, f"{stats.users:,} users · {method_name(stats.method)}"
                       + (f" · {stats.steps} steps" if stepped else ""))
    st.subheader("History-truncation ablation")
    exclude = st.toggle("Exclude items already in the history", value=compute.exclude_seen_default(ds.fingerprint, ds),
                        key="trunc_exclude", help="The default follows the log, as on every page: on when people "
                                                  "(almost) never repeat an item.")
    found = stored.lookup(run, ds, "truncation", exclude_seen=bool(exclude))
    if not found.fresh:
        stored.offer(run, ds, found, "the truncation ablation", key="truncation",
                     cost="one full evaluation per history length")
        return
    ablation = found.unit.table("ablation")
    st.plotly_chart(plot_truncation_ablation(ablation), width="stretch", theme=None)
    st.caption("Test NDCG@10 when the model may see only its last k events (full ranking); the rise towards "
               "'all' is what older context is worth.")
    download_table(ablation, "truncation_ablation.csv")
    stored.caption(found, f"seen items {'excluded' if exclude else 'included'}")


def trust_tab(run, ds) -> None:  # noqa: ANN001 - LazyRun, Dataset
    st.markdown("Remove each method's top-k events (deletion) or give the model only those (insertion) and "
                "re-score the target. A faithful explanation moves the score more than a random order does.")
    defaults = FAITHFULNESS.defaults
    f1, f2, f3 = st.columns(3)
    n_users = int(f1.number_input("Users", 10, 2000, int(defaults["n_users"]), step=50, key="faith_users"))
    max_k = int(f2.slider("Max events removed / added (k)", 2, 20, int(defaults["max_k"]), key="faith_k"))
    value = f3.radio("Curve", ["score", "prob"], horizontal=True, key="faith_value",
                     format_func=lambda v: "score (logit)" if v == "score" else "probability")
    found = stored.lookup(run, ds, "faithfulness", n_users=n_users, max_k=max_k)
    if not found.fresh:
        stored.offer(run, ds, found, "the faithfulness curves", key="faithfulness",
                     cost=f"{n_users:,} users, each explained by every method")
        return
    faith = _faithfulness(str(found.unit.folder), found.unit.created, found.unit)
    h1, h2 = st.columns(2)
    for col, kind in ((h1, "deletion"), (h2, "insertion")):
        with col:
            st.plotly_chart(plot_faithfulness(faith.curves, faith.aopc, kind, value=value), width="stretch",
                            theme=None)
            st.caption(f"Mean target {value} over {faith.users:,} users as top events are "
                       f"{'removed' if kind == 'deletion' else 'added'}; AOPC (legend) = mean gap to k = 0.")
    aopc = faith.aopc.pivot_table(index="method", columns="kind", values="aopc").reset_index()
    aopc["method"] = [method_name(m) for m in aopc["method"]]  # names people read, as in the legend
    aopc = aopc.rename(columns={"deletion": "deletion AOPC (higher = more faithful)",
                                "insertion": "insertion AOPC (higher = more faithful)"})
    st.dataframe(aopc, width="stretch", hide_index=True)
    download_table(faith.aopc, "aopc.csv", label="Download AOPC (CSV)")
    download_table(faith.curves, "faithfulness_curves.csv", label="Download curves (CSV)")
    stored.caption(found, f"{faith.users:,} users · k up to {faith.max_k}")


def planted_tab(run, ds, vocab) -> None:  # noqa: ANN001 - LazyRun, Dataset, Vocab
    st.markdown("The demo log hides trigger → response pairs 20–40 events apart. For users whose held-out item "
                "is a planted response that the model ranks in its top 10, is the planted trigger among the 3 "
                "events with the highest IG attribution? A model that learned the pairs gets most cases right "
                "(80% or more).")
    found = stored.lookup(run, ds, "planted", demo_seed=int(ds.source.demo_seed))
    if not found.fresh:
        stored.offer(run, ds, found, "the planted truth check", key="planted", cost="a few hundred explanations")
        return
    cases = found.unit.table("cases")
    if not len(cases):
        st.info("No cases: the model ranks no planted response in its top 10 for the users whose held-out item is "
                "one, so it has not learned the long-range pairs. Pick the pre-trained **demo-sasrec-pretrained** "
                "run in the sidebar. " + DEMO_TRAINING_NOTE)
        return
    share = float(cases["hit"].mean())
    if run.path.name in INSTALLED_NAMES:
        st.caption(DEMO_TRAINING_NOTE)
    p1, p2 = st.columns([1, 3])
    p1.metric("Trigger in the IG top 3", f"{share:.0%}", delta="most cases" if share >= 0.8 else "too few cases",
              delta_color="normal" if share >= 0.8 else "inverse",
              help="Share of cases whose planted trigger is among the 3 events with the highest attribution.")
    p1.metric("Cases", f"{len(cases):,}")
    with p2:
        st.plotly_chart(plot_planted_check(cases), width="stretch", theme=None)
        st.caption("Where the planted trigger ranks among the user's events by IG attribution; blue = hit.")
    shown = cases.copy()
    for col in ("response", "trigger"):
        if col in shown:
            shown[f"{col}_title"] = [vocab.title(str(i)) for i in shown[col]]
    st.dataframe(shown, width="stretch", hide_index=True)
    download_table(shown, "planted_truth_check.csv")
    stored.caption(found, f"{len(cases):,} cases · IG {found.params['steps']} steps")
    q1, q2 = st.columns([3, 1])
    ranks = dict(zip(cases["user"].astype(str), cases["trigger_attr_rank"], strict=True))
    pick = q1.selectbox("Explain one case", list(ranks), key="planted_pick",
                        format_func=lambda u: f"{u} (trigger ranked {ranks[u]} by IG)")
    if q2.button("Explain this user", key="planted_go"):
        st.session_state["rec_user"] = pick
        st.session_state["user"] = pick
        st.rerun()
