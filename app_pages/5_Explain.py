"""Explain: which past events drive a recommendation, how far back the model looks, whether the explanation can
be trusted, and what would change with a different history."""
import numpy as np
import streamlit as st

from seqrec_core.errors import InputError
from seqrec_core.explain_methods import BASELINE_MODELS, applicable, by_key, method_keys
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
from seqrec_core.viz.plot_explain_stats import counterfactual_changes, plot_counterfactual
from ui import compute, explain_tabs, links, state, stored
from ui import explain_cache as cache
from ui.review import REVIEW_KEY, download_review
from ui.widgets import download_table

TARGETS = {"Top recommendation": None, "Held-out item": "heldout", "Any item": "item"}
STORED_TARGETS = {None: "top", "heldout": "heldout"}  # target -> the kind stored explanations use
TABS = ["Why this recommendation", "Attention", "How far back does it look", "Can we trust it", "What if",
        "Planted truth check"]
STORED_STEPS = 50
EXPLAINED = {"run": "The run", "markov": "Markov baseline", "itemknn": "Item-kNN baseline"}  # model to explain

st.title("Explain")
st.caption("Why does the model recommend what it does? See which past events drive one prediction, how far back "
           "the model looks across many users, whether the explanations can be trusted, and what an edited history "
           "would change.")
ds = state.require_dataset()
run = state.require_run(ds)
exp = stored.lookup(run, ds, "explanations", steps=STORED_STEPS)
stored_methods = list(exp.unit.info.get("methods") or []) if exp.fresh else []
if not cache.supports_explain(run, stored_methods):
    st.info(f"The run in use ({run.path.name}, {run.family}) has no attention or item-embedding layer to explain. "
            "Pick a neural run (sasrec, bert4rec, gru4rec, lstm or lsi) in the sidebar or train one on **Train**.")
    st.page_link("app_pages/3_Train.py", label="Go to Train")
    st.stop()
vocab = ds.sequences.vocab
key, fp = compute.run_key(run), ds.fingerprint
explained_model = st.selectbox(
    "Model to explain", list(EXPLAINED), format_func=EXPLAINED.get, key="explained_model", bind="query-params",
    help="The run's model, or a baseline fit on the same log, to see why IT recommends what it does. Baselines "
         "have no embeddings or attention, so only the methods that re-score histories apply (occlusion, LIME, "
         "Kernel SHAP).")
if stored_methods:  # a stored analysis from before LIME / Kernel SHAP lacks them: they are computed on the spot
    run_methods = [m for m in method_keys() if m in stored_methods or m in applicable(run.family)]
else:  # GRU/LSTM runs have no attention: offer only the methods that apply to the run in use
    from seqrec_core.explain.attention import has_attention

    run_methods = list(applicable(None, has_attention(run.model)))
# A baseline: only the methods that re-score histories (the registry says which).
available = list(applicable(explained_model)) if explained_model in BASELINE_MODELS else run_methods
primary = "ig" if "ig" in available else available[0]  # IG leads wherever it applies
demo = cache.is_demo(ds)
explained = set(cache.stored_users(str(exp.unit.folder), exp.unit.created, exp.unit)) if exp.fresh else set()

links.seed("user", st.session_state.get("rec_user") or stored.example_user(run, ds))
c1, c2, c3 = st.columns([2, 2, 3])
user = c1.text_input("User id", key="user", bind="query-params",
                     help=f"As in the log, e.g. {', '.join(vocab.user_ids[:3])}. Shared with Recommendations and "
                          f"Compare. {len(explained):,} users have stored explanations (instant); others are "
                          "explained on the spot.")
if not vocab.has_user(user):
    st.error(f"User '{user}' is not in {ds.name}. Try one of: {', '.join(vocab.user_ids[:5])}.")
    st.stop()
st.session_state["rec_user"] = user
target_kind = c2.radio("Explain which item?", list(TARGETS), key="target", bind="query-params",
                       help="The prediction explained is made from the user's history without its last (held-out) "
                            "event. Top recommendation: what the model ranks first (seen items excluded).")
labels = cache.item_labels(fp, ds)
target = TARGETS[target_kind]
if target == "item":
    target = c3.selectbox("Item (type to search by title)", list(labels), format_func=labels.get, key="item",
                          bind="query-params")


def explain(method: str, steps: int):  # noqa: ANN201 - Attribution
    """The stored explanation when there is one for this user, target and steps; else computed now."""
    if explained_model != "run":
        return cache.attribution(key, fp, user, target, method, steps, run, ds, model=explained_model)
    if exp.fresh and steps == STORED_STEPS and user in explained and target in STORED_TARGETS:
        found = cache.stored_attribution(str(exp.unit.folder), exp.unit.created, user, STORED_TARGETS[target],
                                         method, exp.unit, vocab)
        if found is not None:
            return found
    return cache.attribution(key, fp, user, target, method, steps, run, ds)


try:
    steps = st.session_state.get("explain_steps", STORED_STEPS)
    ig = explain(primary, steps)  # the primary explanation: IG for a neural run (named ig below for that reason)
except InputError as err:
    st.error(str(err))
    st.stop()
target_id = ig.target_item
target_label = ig.target_title or f"id {target_id}"
rank = getattr(ig, "target_rank", None)
c3.markdown(f"**Explaining:** {target_label}  \n`{target_id}` · score {ig.target_score:.3f}"
            + (f" · rank {rank:,}" if rank else "") + f" · {len(ig.item_index):,} events seen by the model")
review = st.session_state.setdefault(REVIEW_KEY, [])
r1, r2, r3 = st.columns([1, 1, 2], vertical_alignment="center")
if user in review:
    r1.button("✓ In the review", disabled=True, key="review_added",
              help=f"{len(review)} user(s) in the review: {', '.join(review[:8])}.")
elif r1.button("Add this user to the review", key="review_add",
               help="The downloadable review report (HTML) explains the users you add, next to the run's metrics "
                    "and long-range statistics."):
    review.append(user)
    if user not in explained and exp.fresh:  # store this user's explanations too, so the review can show them
        stored.start_analysis(run, ds, [exp, stored.lookup(run, ds, "attention"),
                                        stored.lookup(run, ds, "recommendations")],
                              f"explaining {user} for the review", users=[user], sample=0)
    st.toast(f"{user} is in the review ({len(review)} user{'s' if len(review) != 1 else ''}).")
    st.rerun()
with r2:
    download_review(run, ds, key="explain")
with r3:
    links.link_box("Explain", {"user": user, "target": target_kind,
                               "item": target_id if target_kind == "Any item" else None,
                               "tab": st.session_state.get("tab")})
names = TABS if demo else TABS[:-1]
tabs = st.tabs(names, key="tab", on_change="rerun", bind="query-params")


# ------------------------------------------------------------------------------ why this recommendation
def why_tab() -> None:
    a1, a2 = st.columns([2, 3])
    steps = a1.slider("Integrated-gradients steps", 10, 200, STORED_STEPS, step=10, key="explain_steps",
                      help="More steps = a more exact integral (smaller convergence delta), slower.")
    methods = a2.multiselect("Methods", available, default=list(available), format_func=method_name,
                             help=" ".join(f"{by_key(m).label}: {by_key(m).help}" for m in available))
    ig = explain(primary, steps)
    attrs, skipped = {}, []
    for m in methods:
        try:
            attrs[m] = ig if m == primary else explain(m, steps)
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
    colour_by = st.selectbox("Colour the timeline by", methods or [primary], format_func=method_name, key="method",
                             bind="query-params")
    frame = attrs.get(colour_by, ig).to_frame()
    st.plotly_chart(plot_attribution_timeline(frame, method=colour_by, target_label=target_label), width="stretch",
                    theme=None)
    st.caption("The history the model saw, one lane per category; colour and size show the attribution (blue = "
               "for the target). Hover for the title, the lag in steps and the time before the prediction.")
    if explained_model == "run" and user in explained and steps == STORED_STEPS and target in STORED_TARGETS:
        stored.caption(exp, f"{len(explained):,} users explained by every method")


def attention_tab(history) -> None:  # noqa: ANN001 - the explained history (Attribution.to_frame())
    if explained_model != "run":
        st.info(f"The {EXPLAINED[explained_model]} has no attention maps; choose “The run” above to see the run's.")
        return
    if "attention" not in available:
        st.info(f"The run's family ({run.family}) has no attention maps to show.")
        return
    found = stored.lookup(run, ds, "attention")
    maps = None
    if found.fresh and user in explained:
        maps = cache.stored_attention(str(found.unit.folder), found.unit.created, user, found.unit)
    try:
        maps = maps if maps is not None else cache.attention(key, fp, user, run, ds)
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
    # -1 = the mean of the heads: None as an option reads as "nothing chosen" after a rerun ("Choose an option")
    head = v3.selectbox("Head", [-1, *range(n_heads)], format_func=lambda h: "mean of heads" if h < 0
                        else f"head {h + 1}", disabled=view != "One layer")
    head = None if head < 0 else head
    group = v4.toggle("Fold far events", value=len(maps.items) > 60,
                      help="Fold events beyond lag 20 into bins of 10 lags, so a 200-event history fits on screen.")
    if view == "Mean":
        matrix, title = maps.mean(), "mean of all layers and heads"
    elif view == "Rollout":
        matrix, title = maps.rollout(), "rollout"
    else:
        matrix = maps.layer_map(layer, head)
        title = f"layer {layer + 1}, " + ("mean of heads" if head is None else f"head {head + 1}")
    causal = run.family != "bert4rec"  # BERT4Rec reads the history in both directions
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
        return
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


# Only the open tab runs (tabs rerun on change), so the first view draws one tab, not six.
renderers = [why_tab, lambda: attention_tab(ig.to_frame()), lambda: explain_tabs.far_tab(run, ds, run_methods),
             lambda: explain_tabs.trust_tab(run, ds), whatif_tab, lambda: explain_tabs.planted_tab(run, ds, vocab)]
for tab, render in zip(tabs, renderers, strict=False):
    if tab.open:
        with tab:
            render()
