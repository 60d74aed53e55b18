"""Embeddings: maps of the learned item and user spaces, and an item's nearest neighbours in them."""
import streamlit as st

from seqrec_core import embeddings
from seqrec_core.analysis.kinds_embed import UMAP_DEFAULTS, load_embedding, load_item_vectors
from seqrec_core.errors import InputError
from seqrec_core.viz.plot_embeddings import COLOR_BY, plot_embedding_map
from ui import state, stored
from ui.widgets import download_table

st.title("Embeddings")
st.caption("What the model learned, as a map: items (or users) it treats alike sit close together. PCA keeps the "
           "big directions; UMAP, which keeps neighbourhoods better, is computed once and stored with the run.")
ds = state.require_dataset()
run = state.require_run(ds)
vocab = run.vocab


@st.cache_data(show_spinner=False, max_entries=32)
def _points(folder: str, created: str, _unit) -> embeddings.EmbeddingPoints:  # noqa: ANN001
    return load_embedding(_unit)


@st.cache_data(show_spinner=False, max_entries=8)
def _vectors(folder: str, created: str, _unit):  # noqa: ANN001, ANN202 - (V, D) float32
    return load_item_vectors(_unit)


c1, c2, c3 = st.columns([1, 1, 1])
what = c1.radio("Map of", ["items", "users"], horizontal=True, key="emb_what",
                help="Items: the model's learned item vectors. Users: each user's representation after their whole "
                     "history (the vector the model ranks the catalogue with).")
method_label = c2.radio("Projection", ["UMAP", "PCA"], horizontal=True, key="emb_method",
                        help="PCA: linear, keeps the big directions. UMAP: non-linear, keeps who is near whom.")
color_by = c3.selectbox("Colour by", COLOR_BY, key="emb_color",
                        help="Popularity: events (log scale). Category: the catalogue's categories (for users: the "
                             "category most of their events are in). Cluster: k-means on the full vectors.")
with st.expander("UMAP settings"):
    s1, s2, s3 = st.columns(3)
    n_neighbors = s1.slider("Neighbours", 5, 100, int(UMAP_DEFAULTS["n_neighbors"]), key="emb_nn",
                            help="Larger keeps more of the global layout, smaller more local detail.")
    min_dist = s2.slider("Minimum distance", 0.0, 0.99, float(UMAP_DEFAULTS["min_dist"]), 0.01, key="emb_md",
                         help="How tightly UMAP may pack similar points.")
    seed = int(s3.number_input("Seed", 0, 1_000_000, int(UMAP_DEFAULTS["seed"]), key="emb_seed",
                               help="Same seed, same map."))

method = method_label.lower()
found = stored.lookup(run, ds, "embedding", what=what, method=method, n_neighbors=int(n_neighbors),
                      min_dist=float(min_dist), seed=seed)
space = stored.lookup(run, ds, "item_space")
if not found.fresh:
    stored.offer(run, ds, found, f"the {method_label} map of the {what}", key="embedding",
                 cost="seconds for PCA, up to a minute for UMAP")
    st.stop()
points = _points(str(found.unit.folder), found.unit.created, found.unit)

picked, k, highlight, neighbours = None, 10, None, None
if what == "items":
    st.subheader("Nearest neighbours of an item")
    pop = points.frame.set_index("id")["popularity"]
    options = pop.sort_values(ascending=False, kind="stable").index.tolist()  # most popular first

    def _label(item_id: str) -> str:
        title = vocab.title(item_id)
        return f"{title} ({item_id})" if title else item_id

    n1, n2 = st.columns([3, 1])
    picked = n1.selectbox("Item (type to search by title or id)", options, index=0, format_func=_label,
                          key="emb_item", placeholder="Pick an item to see what the model puts next to it",
                          help="Starts at the most popular item. Its neighbours are ringed in red on the map.")
    k = n2.slider("Neighbours", 5, 50, 10, key="emb_k")
    try:
        if space.fresh:
            neighbours = embeddings.nearest_by_vectors(_vectors(str(space.unit.folder), space.unit.created,
                                                                space.unit), vocab, picked, k=k)
        else:
            neighbours = embeddings.nearest_items(run, picked, k=k)
    except InputError as err:
        st.error(str(err))
    highlight = [picked, *neighbours["item_id"]] if neighbours is not None else None

noun, hover = ("an item", "titles and ids") if what == "items" else ("a user", "ids and their latest item")
fig = plot_embedding_map(points.frame, color_by=color_by, highlight=highlight, method=points.method, what=what,
                         note=points.note)
st.plotly_chart(fig, width="stretch", theme=None)
text = (f"Each dot is {noun}; close dots have similar learned vectors ({points.method.upper()} coordinates are "
        f"unitless: only distances and groups mean something). Hover for {hover}.")
if highlight:
    text += " The red star is the picked item, red rings its nearest neighbours."
st.caption(text)
stored.caption(found, f"{points.method.upper()} of {len(points.frame):,} {what}"
               + (f" · {n_neighbors} neighbours, minimum distance {min_dist:g}, seed {seed}" if method == "umap"
                  else ""))

if what == "items":
    agree = space.unit.info if space.fresh else None
    if agree and agree.get("share") is not None:
        st.markdown(f"**{agree['share']:.0%}** of an item's {agree['k']} nearest neighbours share its category, "
                    f"against **{agree['base_rate']:.0%}** by chance: the higher, the more the model rediscovered "
                    "the catalogue's structure from behaviour alone.")
    if neighbours is not None:
        st.dataframe(neighbours.style.format({"similarity": "{:.3f}"}), width="stretch", hide_index=True)
        st.caption("Cosine similarity of the learned vectors (1 = same direction, 0 = unrelated), on the full "
                   "vectors, not the 2-D map: neighbours can look apart on the map and still be close.")
        download_table(neighbours, f"neighbours_{picked}.csv")
download_table(points.frame, f"{what}_{points.method}_map.csv", label="Download map coordinates (CSV)")
