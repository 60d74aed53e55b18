"""Recommendations: one user's history, what the model ranks next, and where their real next item landed."""
import streamlit as st

from seqrec_core.analysis.kinds_explain import TOP_K_STORED, load_recommendations
from seqrec_core.errors import InputError
from seqrec_core.recommend import get_heldout_rank, get_recommendations, get_user_timeline
from seqrec_core.viz.plot_recommendations import plot_topk_scores, plot_user_timeline
from ui import compute, links, state, stored, what_changed
from ui.widgets import download_table

st.title("Recommendations")
st.caption("Pick a user: see their history, the model's top-K for their held-out last event, and how that real "
           "event ranked. Download the top-K for every user at the bottom.")
ds = state.require_dataset()
run = state.require_run(ds)
vocab = ds.sequences.vocab

links.seed("user", st.session_state.get("rec_user") or stored.example_user(run, ds))
c1, c2, c3 = st.columns([2, 1, 1])
user_id = c1.text_input("User id", key="user", bind="query-params",
                        help=f"As in the log, e.g. {', '.join(vocab.user_ids[:3])}. {len(vocab.user_ids):,} users. "
                             "Shared with Explain and Compare.")
k = c2.slider("Top K", 5, TOP_K_STORED, 10, help="How many recommendations to show.")
exclude_seen = c3.toggle("Exclude seen items", value=compute.exclude_seen_default(ds.fingerprint, ds),
                         help="Hide items the user already had. The default follows the log, as on every page and "
                              "in the command line: on when people (almost) never repeat an item, off where they "
                              "come back to items (music, groceries, the demo).")
if not vocab.has_user(user_id):
    st.error(f"User '{user_id}' is not in {ds.name}. Try one of: {', '.join(vocab.user_ids[:5])}.")
    st.stop()
st.session_state["rec_user"] = user_id


@st.cache_data(show_spinner=False, max_entries=256)
def _stored_recs(folder: str, created: str, user: str, k: int, exclude: bool, _unit, _vocab):  # noqa: ANN001, ANN202
    return load_recommendations(_unit, _vocab, user, k, exclude)


found = stored.lookup(run, ds, "recommendations")
from_store = (_stored_recs(str(found.unit.folder), found.unit.created, user_id, k, bool(exclude_seen), found.unit,
                           vocab) if found.fresh else None)
try:
    timeline = get_user_timeline(ds.sequences, user_id)
    if from_store is not None:
        recs, held = from_store
    else:  # a user outside the stored sample: scored now (one forward pass)
        scorer = run.scorer()
        recs = get_recommendations(scorer, ds.sequences, user_id, k, exclude_seen=exclude_seen, holdout=True)
        held = get_heldout_rank(scorer, ds.sequences, user_id, exclude_seen=exclude_seen)
except InputError as err:
    st.error(str(err))
    st.stop()

m1, m2, m3 = st.columns(3)
m1.metric("Events in history", f"{len(timeline):,}")
label = held.get("title") or held.get("item_id")
m2.metric("Held-out (real next) item", str(label)[:40], help=f"item id {held.get('item_id')}")
rank = held.get("rank")
m3.metric("Its rank", f"{rank:,}" if rank else "excluded", delta="in top K" if rank and rank <= k else None,
          help=f"Position of the held-out item among {vocab.n_items:,} items (1 = first).")

st.plotly_chart(plot_user_timeline(timeline, heldout_item=held.get("item_id")), width="stretch", theme=None)
st.caption("The user's events in time order, coloured by category; the star is the held-out test event the model "
           "had to predict. Hover for titles and how many steps back each event is.")

c1, c2 = st.columns([3, 2])
with c1:
    st.plotly_chart(plot_topk_scores(recs, heldout_item=held.get("item_id")), width="stretch", theme=None)
    st.caption("The model's top-K from the history before the held-out event; a highlighted bar is the real next item.")
with c2:
    st.dataframe(recs, width="stretch", hide_index=True)
    download_table(recs, f"recommendations_{user_id}.csv")
if from_store is not None:
    stored.caption(found, "top-K of a sample of users")
links.link_box("Recommendations", {"user": user_id})

st.subheader("Top-K for every user")
st.caption("From each user's whole history (what they would be shown next), batched over all users as a background "
           "job and stored with the run.")
every = stored.lookup(run, ds, "top_all", k=int(k), exclude_seen=bool(exclude_seen))
if not every.fresh:
    stored.offer(run, ds, every, f"the top-{k} of every user", key="top_all",
                 cost=f"{len(vocab.user_ids):,} users, seconds to a minute")
else:
    frame = every.unit.table("top")
    frame.insert(3, "title", [vocab.title(str(i)) for i in frame["item_id"]])
    st.dataframe(frame.head(200), width="stretch", hide_index=True)
    download_table(frame, f"top{k}_all_users.csv",
                   label=f"Download top-{k} for all {frame['user_id'].nunique():,} users (CSV)")
    stored.caption(every, f"top-{k}, seen items {'excluded' if exclude_seen else 'included'}")

# Two runs on this log (an update and the run it was resumed from, or any older run): how the top-K moved.
what_changed.section(run, ds, user_id, k, bool(exclude_seen))
