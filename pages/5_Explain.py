"""Explain: which past events drive a recommendation, how far back the model looks, whether the explanation can
be trusted, and what would change with a different history."""
import numpy as np
import streamlit as st

from seqrec_core.errors import InputError
from seqrec_core.explain.attention import has_attention
from seqrec_core.viz.plot_explain import (
    attribution_table,
    method_agreement,
    method_name,
    plot_attention_heatmap,
    plot_attribution_timeline,
    plot_last_attention,
    plot_method_agreement,
    plot_method_comparison,
)
from seqrec_core.viz.plot_explain_stats import (
    counterfactual_changes,
    plot_attention_distance,
    plot_attribution_mass,
    plot_counterfactual,
    plot_faithfulness,
    plot_planted_check,
    plot_truncation_ablation,
)
from ui import compute, state
from ui import explain_cache as cache
from ui.widgets import download_table

METHODS = ("ig", "occlusion", "gradshap", "attention")
TARGETS = ("Top recommendation", "Held-out item", "Any item")

st.title("Explain")
st.caption("Why does the model recommend what it does? See which past events drive one prediction, how far back "
           "the model looks across many users, whether the explanations can be trusted, and what an edited history "
           "would change.")
ds = state.require_dataset()
run = state.require_run(ds)
if not cache.supports_explain(run):
    st.info(f"The run in use ({run.path.name}, {run.family}) has no attention or item-embedding layer to explain. "
            "Pick a neural run (sasrec, bert4rec, gru4rec, lstm or lsi) in the sidebar or train one on **Train**.")
    st.page_link("pages/3_Train.py", label="Go to Train")
    st.stop()
vocab = ds.sequences.vocab
key, fp = compute.run_key(run), ds.fingerprint
# GRU/LSTM runs have no attention: offer only the methods that apply to the run in use.
available = METHODS if has_attention(run.model) else tuple(m for m in METHODS if m != "attention")
demo = cache.is_demo(ds)


def default_user() -> str:
    if st.session_state.get("rec_user") and vocab.has_user(st.session_state["rec_user"]):
        return st.session_state["rec_user"]
    if demo:
        users = [u for u in cache.demo_truth(ds.source.demo_seed).response_users if vocab.has_user(u)]
        if users:
            return users[0]
    return vocab.user_ids[0]


c1, c2, c3 = st.columns([2, 2, 3])
user = c1.text_input("User id", value=default_user(),
                     help=f"As in the log, e.g. {', '.join(vocab.user_ids[:3])}. Shared with Recommendations.")
if not vocab.has_user(user):
    st.error(f"User '{user}' is not in {ds.name}. Try one of: {', '.join(vocab.user_ids[:5])}.")
    st.stop()
st.session_state["rec_user"] = user
target_kind = c2.radio("Explain which item?", TARGETS, horizontal=False,
                       help="The prediction explained is made from the user's history without its last (held-out) "
                            "event. Top recommendation: what the model ranks first (seen items excluded).")
labels = cache.item_labels(fp, ds)
target = None if target_kind == TARGETS[0] else "heldout" if target_kind == TARGETS[1] else \
    c3.selectbox("Item (type to search by title)", list(labels), format_func=labels.get)


def explain(method: str, steps: int):  # noqa: ANN201 - Attribution
    return cache.attribution(key, fp, user, target, method, steps, run, ds)


try:
    steps = st.session_state.get("explain_steps", 50)
    ig = explain("ig", steps)
except InputError as err:
    st.error(str(err))
    st.stop()
target_id = ig.target_item
target_label = ig.target_title or f"id {target_id}"
rank = getattr(ig, "target_rank", None)
c3.markdown(f"**Explaining:** {target_label}  \n`{target_id}` · score {ig.target_score:.3f}"
            + (f" · rank {rank:,}" if rank else "") + f" · {len(ig.item_index):,} events seen by the model")

names = ["Why this recommendation", "How far back does it look", "Can we trust it", "What if"]
tabs = st.tabs(names + (["Planted truth check"] if demo else []))

# Each section is a fragment: its own widgets rerun only that section, so a click costs one section's charts.
# ------------------------------------------------------------------------------ why this recommendation
@st.fragment
def why_tab() -> None:
    a1, a2 = st.columns([2, 3])
    steps = a1.slider("Integrated-gradients steps", 10, 200, 50, step=10, key="explain_steps",
                      help="More steps = a more exact integral (smaller convergence delta), slower.")
    methods = a2.multiselect("Methods", available, default=list(available), format_func=method_name,
                             help="IG: integrated gradients on the item embeddings (baseline: the catalogue's average "
                                  "item at every event, order kept). Occlusion: "
                                  "score drop when the event is removed. GradientSHAP: sampled gradients. Attention: "
                                  "the prediction point's attention rollout.")
    ig = explain("ig", steps)
    attrs, skipped = {}, []
    for m in methods:
        try:
            attrs[m] = ig if m == "ig" else explain(m, steps)
        except InputError as err:  # e.g. attention on a model without attention maps
            skipped.append(f"{method_name(m)}: {err}")
    methods = list(attrs)
    if skipped:
        st.info("Left out — " + "; ".join(skipped))
    gap = ig.target_score - (ig.baseline_score if ig.baseline_score is not None else np.nan)
    m1, m2, m3 = st.columns(3)
    m1.metric("Target score", f"{ig.target_score:.3f}",
              help="The model's score for the target (higher = ranked first).")
    m2.metric("Score with an average history", "n/a" if ig.baseline_score is None else f"{ig.baseline_score:.3f}",
              help="IG's baseline: every event replaced by the catalogue's average item (order and length kept). "
                   "IG splits the difference between the two scores among the events.")
    delta = ig.convergence_delta
    m3.metric("IG convergence delta", "n/a" if delta is None else f"{delta:+.4f}",
              delta=None if delta is None or not np.isfinite(gap) or gap == 0 else f"{abs(delta / gap):.1%} of the gap",
              delta_color="off", delta_arrow="off",
              help=f"Sum of IG attributions minus (target score − baseline score), after {ig.steps} steps. "
                   "Near 0 = the integral converged; raise the steps if it is large.")
    table = attribution_table({m: a.to_frame() for m, a in attrs.items()})
    st.plotly_chart(plot_method_comparison(table, methods), width="stretch", theme=None)
    st.caption("One row per method, one bar per past event (latest on the right); numbers mark each method's three "
               "most supportive events, orange bars push against the target.")
    b1, b2 = st.columns(2)
    with b1:
        st.plotly_chart(plot_method_agreement(table, methods), width="stretch", theme=None)
        st.caption("Rank agreement between methods over this history: ρ Spearman, τ Kendall, ∩ shared top-10 events.")
        download_table(method_agreement(table, methods), f"method_agreement_{user}.csv",
                       label="Download agreement (CSV)")
    with b2:
        shown = table.drop(columns=[c for c in ("timestamp", "seconds_before") if c in table])
        st.dataframe(shown, width="stretch", hide_index=True, height=360)
        st.caption("Attribution per event and method (rank 1 = most supportive).")
        download_table(table, f"attributions_{user}.csv", label="Download attributions (CSV)")
    colour_by = st.selectbox("Colour the timeline by", methods or ["ig"], format_func=method_name)
    frame = attrs.get(colour_by, ig).to_frame()
    st.plotly_chart(plot_attribution_timeline(frame, method=colour_by, target_label=target_label), width="stretch",
                    theme=None)
    st.caption("The history the model saw, one lane per category; colour and size show the attribution (blue = "
               "for the target). Hover for the title, the lag in steps and the time before the prediction.")


@st.fragment
def attention_section(history) -> None:  # noqa: ANN001 - the explained history (Attribution.to_frame())
    st.subheader("Attention")
    try:
        maps = cache.attention(key, fp, user, run, ds)
    except InputError as err:
        st.info(f"No attention maps to show: {err}")
        return
    n_layers, n_heads = maps.weights.shape[:2]
    v1, v2, v3, v4 = st.columns(4)
    view = v1.radio("View", ["Mean", "Rollout", "One layer"], horizontal=True,
                    help="Mean: plain average of all layers and heads. Rollout: attention flow through the layers "
                         "with the residual path. One layer: pick a layer and head.")
    layer = v2.selectbox("Layer", range(n_layers), index=n_layers - 1, format_func=lambda i: f"layer {i + 1}",
                         disabled=view != "One layer")
    head = v3.selectbox("Head", [None, *range(n_heads)], format_func=lambda h: "mean of heads" if h is None
                        else f"head {h + 1}", disabled=view != "One layer")
    group = v4.toggle("Group events beyond lag 20", value=len(maps.items) > 60,
                      help="Fold older events into bins of 10 lags, so a 200-event history fits on screen.")
    if view == "Mean":
        matrix, title = maps.mean(), "mean of all layers and heads"
    elif view == "Rollout":
        matrix, title = maps.rollout(), "rollout"
    else:
        matrix = maps.layer_map(layer, head)
        title = f"layer {layer + 1}, " + ("mean of heads" if head is None else f"head {head + 1}")
    causal = getattr(run.model, "causal", True)
    n = len(maps.items)
    events = matrix[:n, :n]  # BERT4Rec appends its mask token (the prediction point): show the events' block
    if maps.appended:
        events = events / np.maximum(events.sum(axis=1, keepdims=True), 1e-12)  # rows over the events sum to 1
    st.plotly_chart(plot_attention_heatmap(events, history, view=title, group_far=group, causal=causal),
                    width="stretch", theme=None)
    st.caption("Row = the position attending, column = the event attended to; each row sums to 1. "
               + ("The blank upper triangle is the future the model may not see." if causal else
                  "This model reads the history in both directions (BERT-style), so the whole square is filled.")
               + " Drag to zoom, double-click to reset.")
    st.plotly_chart(plot_last_attention(maps.prediction_row(matrix), history, view=title), width="stretch",
                    theme=None)
    st.caption("The bottom row of the map: how the prediction point spreads its attention over the history.")

# ------------------------------------------------------------------------------ how far back does it look
@st.fragment
def far_tab() -> None:
    st.markdown("Explain many users' predictions at once and ask where the attribution goes: the last few events, "
                "or 20+ steps back? Then cut the history to its last *k* events and see what the model loses.")
    n_test = len(ds.sequences.split("test").users)
    l1, l2, l3 = st.columns(3)
    lr_users = l1.number_input("Users", 10, max(10, n_test), min(500, max(10, n_test)), step=50,
                               help="Sampled test users (fixed seed).")
    lr_method = l2.selectbox("Method", available, format_func=method_name, key="lr_method")
    lr_steps = l3.slider("IG / GradientSHAP steps", 5, 100, 20, step=5, key="lr_steps")
    if st.button("Compute long-range statistics", type="primary"):
        st.session_state["lr_params"] = (int(lr_users), lr_method, int(lr_steps))
    if "lr_params" in st.session_state:
        n_u, meth, stp = st.session_state["lr_params"]
        stats = cache.longrange(key, fp, n_u, meth, stp, 0, run, ds)
        st.metric("Predictions whose top event is ≥ 20 steps back", f"{stats.share_top_ge20:.0%}",
                  help=f"{stats.users:,} users, {method_name(stats.method)}, computed in {stats.seconds:.1f} s.")
        g1, g2 = st.columns(2)
        with g1:
            st.plotly_chart(plot_attribution_mass(stats.by_lag, by="lag", share_top_ge20=stats.share_top_ge20,
                                                  users=stats.users, method=stats.method), width="stretch",
                            theme=None)
            st.caption("Share of absolute attribution per lag bucket; a bar above its diamond means those events "
                       "weigh more than their number alone.")
            download_table(stats.by_lag, "attribution_by_lag.csv", label="Download by lag (CSV)")
        with g2:
            st.plotly_chart(plot_attribution_mass(stats.by_time_gap, by="time", users=stats.users,
                                                  method=stats.method), width="stretch", theme=None)
            st.caption("The same mass by how long before the prediction the events happened.")
            download_table(stats.by_time_gap, "attribution_by_time_gap.csv", label="Download by time gap (CSV)")
        st.plotly_chart(plot_attention_distance(stats.attention_distance), width="stretch", theme=None)
        st.caption("Average distance, in events, between each position and what it attends to, per layer and head.")
        download_table(stats.attention_distance, "attention_distance.csv", label="Download attention distance (CSV)")
    st.subheader("History-truncation ablation")
    exclude = st.toggle("Exclude items already in the history", value=False, key="trunc_exclude")
    if st.button("Run truncation ablation"):
        st.session_state["trunc_params"] = bool(exclude)
    if "trunc_params" in st.session_state:
        abl = cache.truncation(key, fp, st.session_state["trunc_params"], None, run, ds)
        st.plotly_chart(plot_truncation_ablation(abl), width="stretch", theme=None)
        st.caption("Test NDCG@10 when the model may see only its last k events (full ranking); the rise towards "
                   "'all' is what older context is worth.")
        download_table(abl, "truncation_ablation.csv")

# ------------------------------------------------------------------------------ can we trust it
@st.fragment
def trust_tab() -> None:
    st.markdown("Remove each method's top-k events (deletion) or give the model only those (insertion) and "
                "re-score the target. A faithful explanation moves the score more than a random order does.")
    f1, f2, f3 = st.columns(3)
    f_users = f1.number_input("Users", 10, 2000, 200, step=50, key="faith_users")
    f_k = f2.slider("Max events removed / added (k)", 2, 20, 10, key="faith_k")
    f_value = f3.radio("Curve", ["score", "prob"], horizontal=True, key="faith_value",
                       format_func=lambda v: "score (logit)" if v == "score" else "probability")
    if st.button("Compute faithfulness curves", type="primary"):
        st.session_state["faith_params"] = (int(f_users), int(f_k))
    if "faith_params" in st.session_state:
        n_u, mk = st.session_state["faith_params"]
        faith = cache.faithfulness(key, fp, n_u, mk, 20, 0, run, ds)
        h1, h2 = st.columns(2)
        for col, kind in ((h1, "deletion"), (h2, "insertion")):
            with col:
                st.plotly_chart(plot_faithfulness(faith.curves, faith.aopc, kind, value=f_value), width="stretch",
                                theme=None)
                st.caption(f"Mean target {f_value} over {faith.users:,} users as top events are "
                           f"{'removed' if kind == 'deletion' else 'added'}; AOPC (legend) = mean gap to k = 0.")
        aopc = faith.aopc.pivot_table(index="method", columns="kind", values="aopc").reset_index()
        st.dataframe(aopc, width="stretch", hide_index=True)
        download_table(faith.aopc, "aopc.csv", label="Download AOPC (CSV)")
        download_table(faith.curves, "faithfulness_curves.csv", label="Download curves (CSV)")

# ------------------------------------------------------------------------------ what if
@st.fragment
def whatif_tab() -> None:
    seq = ds.sequences.sequences[vocab.user_index(user)][:-1]
    original = [vocab.item_id(int(i)) for i in seq]
    n = len(original)
    ev_label = {p: f"lag {n - p} · {labels.get(original[p], original[p])}" for p in range(n)}
    st.markdown("Edit the history the prediction is made from (all events before the held-out one); the model "
                f"re-scores at once. It reads the last {run.max_len} events of whatever history it is given.")
    e1, e2 = st.columns(2)
    removed = e1.multiselect("Remove events", list(range(n))[::-1], format_func=ev_label.get, key="cf_remove")
    move = e1.selectbox("Move an event", [None, *range(n)[::-1]], key="cf_move",
                        format_func=lambda p: "— none —" if p is None else ev_label[p])
    move_to = e1.number_input("…to lag (1 = latest)", 1, max(n, 1), 1, key="cf_move_to", disabled=move is None)
    inserted = e2.multiselect("Insert items (type to search)", list(labels), format_func=labels.get, key="cf_insert")
    insert_back = e2.number_input("…this many events before the prediction (0 = as the latest)", 0, n, 0,
                                  key="cf_insert_back")
    k = e2.slider("Top K", 5, 30, 10, key="cf_k")
    order = list(range(n))
    if move is not None:  # to lag L = L - 1 events after it
        order.remove(move)
        order.insert(n - int(move_to), move)
    items = [original[p] for p in order if p not in removed]
    at = len(items) - min(int(insert_back), len(items))
    items = items[:at] + list(inserted) + items[at:]
    try:
        cf = cache.counterfactual(key, fp, user, tuple(items), target_id, k, True, run, ds)
    except InputError as err:
        st.error(str(err))
    else:
        rb, ra = cf["target_rank_before"], cf["target_rank_after"]
        t1, t2, t3 = st.columns(3)
        t1.metric("Events after the edit", f"{len(items):,}", delta=f"{len(items) - n:+d}" if len(items) != n else None,
                  delta_color="off")
        t2.metric("Target rank before", f"{rb:,}" if rb else "n/a", help=f"{target_label} in the full catalogue.")
        t3.metric("Target rank after", f"{ra:,}" if ra else "n/a", delta=None if not (rb and ra) or rb == ra
                  else f"{rb - ra:+d} places", help="Positive = moved up.")
        st.plotly_chart(plot_counterfactual(cf["before"], cf["after"], target_item=cf["target_item"],
                                            target_rank_before=rb, target_rank_after=ra), width="stretch", theme=None)
        st.caption("Each line joins an item's rank before and after the edit; items leaving or entering the top K "
                   "drop to the grey band. Red is the explained target.")
        changes = counterfactual_changes(cf["before"], cf["after"])
        st.dataframe(changes, width="stretch", hide_index=True)
        download_table(changes, f"counterfactual_{user}.csv")

# ------------------------------------------------------------------------------ planted truth check
@st.fragment
def planted_tab() -> None:
    st.markdown("The demo log hides trigger → response pairs 20–40 events apart. For users whose held-out item "
                "is a planted response that the model ranks in its top 10, is the planted trigger among the 3 "
                "events with the highest IG attribution? The bar is 80% of cases.")
    if st.button("Run the planted truth check", type="primary"):
        st.session_state["planted_run"] = True
    if st.session_state.get("planted_run"):
        cases = cache.planted(key, fp, ds.source.demo_seed, 50, None, run, ds)
        if not len(cases):
            st.info("No cases yet: the model ranks no planted response in its top 10 for the users whose "
                    "held-out item is one. Early stopping on overall NDCG ends before the long-range pairs are "
                    "learned. Pick the pre-trained **demo-sasrec-pretrained** run in the sidebar, or train the "
                    "recipe it was made with on **Train**: batch size 32, dropout 0.2, learning rate 0.002, "
                    "100 epochs, patience 100 and no time budget (about 15 minutes on 2 CPU cores), then check "
                    "again.")
        else:
            share = float(cases["hit"].mean())
            p1, p2 = st.columns([1, 3])
            p1.metric("Trigger in the IG top 3", f"{share:.0%}",
                      delta="meets the 80% bar" if share >= 0.8 else "below the 80% bar",
                      delta_color="normal" if share >= 0.8 else "inverse")
            p1.metric("Cases", f"{len(cases):,}")
            with p2:
                st.plotly_chart(plot_planted_check(cases), width="stretch", theme=None)
                st.caption("Where the planted trigger ranks among the user's events by IG attribution; "
                           "blue = hit.")
            shown = cases.copy()
            for col in ("response", "trigger"):
                if col in shown:
                    shown[f"{col}_title"] = [vocab.title(str(i)) for i in shown[col]]
            st.dataframe(shown, width="stretch", hide_index=True)
            download_table(shown, "planted_truth_check.csv")
            q1, q2 = st.columns([3, 1])
            ranks = dict(zip(cases["user"].astype(str), cases["trigger_attr_rank"], strict=True))
            pick = q1.selectbox("Explain one case", list(ranks), key="planted_pick",
                                format_func=lambda u: f"{u} (trigger ranked {ranks[u]} by IG)")
            if q2.button("Explain this user", key="planted_go"):
                st.session_state["rec_user"] = pick
                st.rerun()


with tabs[0]:
    why_tab()
    attention_section(ig.to_frame())
with tabs[1]:
    far_tab()
with tabs[2]:
    trust_tab()
with tabs[3]:
    whatif_tab()
if demo:
    with tabs[4]:
        planted_tab()
