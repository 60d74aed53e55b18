"""Embeddings: maps of the learned item and user spaces, and an item's nearest neighbours in them."""
import streamlit as st

from seqrec_core import embeddings
from seqrec_core.errors import InputError
from seqrec_core.viz.plot_embeddings import COLOR_BY, plot_embedding_map
from ui import state
from ui.compute import run_key
from ui.widgets import download_table

st.title("Embeddings")
st.caption("What the model learned, as a map: items (or users) it treats alike sit close together. PCA appears at "
           "once; UMAP, which keeps neighbourhoods better, follows and is cached for this run.")
ds = state.require_dataset()
run = state.require_run(ds)
vocab = run.vocab


@st.cache_data(show_spinner="Projecting the learned vectors…", max_entries=32)
def _points(key: str, fingerprint: str, what: str, method: str, n_neighbors: int, min_dist: float, seed: int,
            _run, _ds) -> embeddings.EmbeddingPoints:  # noqa: ANN001
    """One projection per run content + data + parameters; UMAP reports its stages on a progress bar."""
    bar = st.progress(0.0, text=f"{method.upper()} of the {what}…") if method == "umap" else None

    def tick(frac: float, text: str) -> None:
        if bar is not None:
            bar.progress(min(max(frac, 0.0), 1.0), text=text)

    points = embeddings.get_embedding_points(_run, _ds.sequences, what=what, method=method, seed=seed,
                                             n_neighbors=n_neighbors, min_dist=min_dist, progress=tick)
    if bar is not None:
        bar.empty()
    return points


@st.cache_data(show_spinner="Comparing every item with its neighbours…", max_entries=8)
def _agreement(key: str, k: int, _run) -> dict:  # noqa: ANN001
    return embeddings.get_category_agreement(_run, k=k)


c1, c2, c3 = st.columns([1, 1, 1])
what = c1.radio("Map of", ["items", "users"], horizontal=True, key="emb_what",
                help="Items: the model's learned item vectors. Users: each user's representation after their whole "
                     "history (the vector the model ranks the catalogue with).")
method_label = c2.radio("Projection", ["UMAP", "PCA"], horizontal=True, key="emb_method",
                        help="PCA: linear and instant, keeps the big directions. UMAP: non-linear, keeps who is near "
                             "whom; takes seconds to a minute the first time, then it is cached.")
color_by = c3.selectbox("Colour by", COLOR_BY, key="emb_color",
                        help="Popularity: events (log scale). Category: the catalogue's categories (for users: the "
                             "category most of their events are in). Cluster: k-means on the full vectors.")
with st.expander("UMAP settings"):
    s1, s2, s3 = st.columns(3)
    n_neighbors = s1.slider("Neighbours", 5, 100, 15, key="emb_nn",
                            help="Larger keeps more of the global layout, smaller more local detail.")
    min_dist = s2.slider("Minimum distance", 0.0, 0.99, 0.1, 0.01, key="emb_md",
                         help="How tightly UMAP may pack similar points.")
    seed = int(s3.number_input("Seed", 0, 1_000_000, 0, key="emb_seed", help="Same seed, same map."))

key = run_key(run)
args = (key, ds.fingerprint, what, n_neighbors, float(min_dist), seed, run, ds)
chart = st.empty()
caption = st.empty()
working = st.container()  # UMAP's progress bar, right under the map it will replace
try:
    pca = _points(key, ds.fingerprint, what, "pca", n_neighbors, float(min_dist), seed, run, ds)
except InputError as err:
    st.error(str(err))
    st.stop()

picked, k = None, 10
if what == "items":
    st.subheader("Nearest neighbours of an item")
    pop = pca.frame.set_index("id")["popularity"]
    options = pop.sort_values(ascending=False, kind="stable").index.tolist()  # most popular first

    def _label(item_id: str) -> str:
        title = vocab.title(item_id)
        return f"{title} ({item_id})" if title else item_id

    n1, n2 = st.columns([3, 1])
    picked = n1.selectbox("Item (type to search by title or id)", options, index=0, format_func=_label,
                          key="emb_item", placeholder="Pick an item to see what the model puts next to it",
                          help="Starts at the most popular item. Its neighbours are ringed in red on the map.")
    k = n2.slider("Neighbours", 5, 50, 10, key="emb_k")

neighbours = embeddings.nearest_items(run, picked, k=k) if picked else None
highlight = [picked, *neighbours["item_id"]] if picked else None
how_to_read = ("Each dot is {noun}; close dots have similar learned vectors ({method} coordinates are unitless: only "
               "distances and groups mean something). Hover for {hover}.")
noun, hover = ("an item", "titles and ids") if what == "items" else ("a user", "ids and their latest item")


def _show(points) -> None:  # noqa: ANN001
    fig = plot_embedding_map(points.frame, color_by=color_by, highlight=highlight, method=points.method,
                             what=what, note=points.note)
    chart.plotly_chart(fig, width="stretch", theme=None)
    text = how_to_read.format(noun=noun, method=points.method.upper(), hover=hover)
    if highlight:
        text += " The red star is the picked item, red rings its nearest neighbours."
    caption.caption(text)


umap_done = st.session_state.setdefault("emb_umap_done", set())  # UMAP maps this session has had (cached)
umap_id = args[:6]
points = pca
if method_label == "PCA":
    embeddings.warm_up_umap()  # once per process, in the background: a later switch to UMAP skips numba's compile
else:
    if umap_id not in umap_done:
        _show(pca)  # something to look at while UMAP works
    with working:
        points = _points(*args[:3], "umap", *args[3:])
    umap_done.add(umap_id)
_show(points)

if what == "items":
    agree = _agreement(key, 10, run)
    if agree["share"] is not None:
        st.markdown(f"**{agree['share']:.0%}** of an item's 10 nearest neighbours share its category, against "
                    f"**{agree['base_rate']:.0%}** by chance: the higher, the more the model rediscovered the "
                    "catalogue's structure from behaviour alone.")
    if neighbours is not None:
        st.dataframe(neighbours.style.format({"similarity": "{:.3f}"}), width="stretch", hide_index=True)
        st.caption("Cosine similarity of the learned vectors (1 = same direction, 0 = unrelated), on the full "
                   "vectors, not the 2-D map: neighbours can look apart on the map and still be close.")
        download_table(neighbours, f"neighbours_{picked}.csv")
download_table(points.frame, f"{what}_{points.method}_map.csv", label="Download map coordinates (CSV)")
