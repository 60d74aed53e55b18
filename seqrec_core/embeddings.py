"""Maps of the learned item and user spaces: vectors out of a run, 2-D projections, clusters and neighbours.

Why two projections (:mod:`seqrec_core.projection`): PCA is exact, linear and instant, so the page can show it at
once; UMAP keeps local neighbourhoods (items bought together end up together) but costs a numba compilation per
process, so the page warms it up in the background. The 2-D coordinates of either are unitless: only distances
and groupings mean something.

Clusters and neighbours are computed on the full vectors, never on the 2-D map, so they do not depend on the
projection chosen. Cosine is the default similarity: a dot-product model's vector norms mostly encode
popularity, the direction encodes taste.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import torch

from seqrec_core.data.sequences import SequenceData, Vocab
from seqrec_core.errors import InputError
from seqrec_core.projection import (  # noqa: F401 - project, exact_knn and warm_up_umap are part of this module's API
    METHODS,
    Method,
    Progress,
    check_projection_args,
    exact_knn,
    project,
    project_with_note,
    warm_up_umap,
)

if TYPE_CHECKING:
    from seqrec_core.runs import Run

log = logging.getLogger(__name__)

What = Literal["items", "users"]
WHATS = ("items", "users")
DEFAULT_CLUSTERS = 10


@dataclass
class EmbeddingPoints:
    """One 2-D map: which vectors, how they were projected, and a frame with everything the page hovers/colours."""

    what: str  # "items" | "users"
    method: str  # the method actually used ("pca" when UMAP fell back on a tiny set)
    ids: list[str]  # original ids, row-aligned with xy and frame
    xy: np.ndarray  # (N, 2) float32, unitless
    frame: pd.DataFrame  # id, x, y, title, category, popularity, cluster (+ history_length for users)
    note: str | None = None  # e.g. why UMAP was replaced by PCA
    params: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The CLI's ``embed`` document: ``{"what", "method", "points": [{"id", "x", "y"}]}``."""
        points = [{"id": i, "x": float(x), "y": float(y)} for i, (x, y) in zip(self.ids, self.xy.tolist(), strict=True)]
        return {"what": self.what, "method": self.method, "points": points}


# ------------------------------------------------------------------------------------------------ vectors
def get_item_vectors(run: Run) -> np.ndarray:
    """Learned item vectors (n_items, D) float32, row i = item index i + 1 (the padding row is dropped)."""
    emb = getattr(run.model, "item_embeddings", None)
    if emb is None:
        raise InputError(f"run '{run.path}' ({run.family}) has no learned item vectors to map; use a neural run")
    with torch.no_grad():
        weight = emb()  # (V + 1, D)
    return weight[1:].detach().float().cpu().numpy()


@torch.no_grad()
def get_user_vectors(run: Run, data: SequenceData, batch_size: int = 512) -> np.ndarray:
    """Each user's representation (n_users, D) float32: the model's last hidden state after the whole history.

    That is the vector the model scores the catalogue with to recommend the user's next item. Users are batched
    in length order (little padding) on the model's device. A time-aware model gets the events' times and, as
    the request time, the last event's time plus the user's median gap (``with_query``'s serving default).
    """
    from seqrec_core.runs import check_run_data

    check_run_data(run, data, "the log given")
    model = run.model
    if not hasattr(model, "forward_hidden"):
        raise InputError(f"run '{run.path}' ({run.family}) exposes no user representation; use a neural run")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size {batch_size!r} must be a whole number >= 1, e.g. 512")
    from seqrec_core.models.neural import prediction_states
    from seqrec_core.models.time_features import require_time, with_query

    timed = bool(getattr(model, "uses_time", False))
    if timed:
        require_time(data, f"run '{run.path}' (trained with time features)")
    seqs = data.sequences
    lengths = np.fromiter((min(len(s), run.max_len) for s in seqs), dtype=np.int64, count=len(seqs))
    order = np.argsort(lengths, kind="stable")  # little padding per batch
    out = np.zeros((len(seqs), int(get_item_vectors(run).shape[1])), dtype=np.float32)  # (U, D)
    if not len(seqs):
        return out
    was_training = model.training
    model.eval()
    try:
        times = [with_query(data.times[i]) for i in order] if timed else None
        out[order] = prediction_states(model, [seqs[i] for i in order], times, batch_size).cpu().numpy()
    finally:
        model.train(was_training)
    return out


# ------------------------------------------------------------------------------------ clusters, frames
def cluster_vectors(vectors: np.ndarray, n_clusters: int = DEFAULT_CLUSTERS, seed: int = 0,
                    metric: str = "cosine") -> np.ndarray:
    """K-means labels (N,) int, 0 = the largest cluster; cosine => k-means on unit vectors (spherical)."""
    n = len(vectors)
    k = int(min(n_clusters, max(1, n // 3)))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if k <= 1:
        return np.zeros(n, dtype=np.int64)
    from sklearn.cluster import KMeans

    x = np.asarray(vectors, dtype=np.float64)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    sizes = np.bincount(labels, minlength=k)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(k)  # relabel by size: stable legends
    return rank[labels]


def _item_counts(data: SequenceData) -> np.ndarray:
    """Events per item index (n_items + 1,), the whole log (popularity as people know it)."""
    counts = np.zeros(data.vocab.n_items + 1, dtype=np.int64)
    for seq in data.sequences:
        counts += np.bincount(seq, minlength=len(counts))[: len(counts)]
    return counts


def _item_frame(run: Run, data: SequenceData | None) -> pd.DataFrame:
    vocab = run.vocab
    ids = list(vocab.item_ids)
    pop = _item_counts(data)[1:].astype(float) if data is not None else np.full(len(ids), np.nan)
    return pd.DataFrame({"id": ids, "title": [vocab.title(i) for i in ids],
                         "category": [vocab.category(i) for i in ids], "popularity": pop})


def _user_frame(data: SequenceData) -> pd.DataFrame:
    """Per user: history length, the most frequent category (to colour users by taste), the latest item."""
    vocab = data.vocab
    cat_of = np.array([vocab.category(i) or "" for i in ["", *vocab.item_ids]], dtype=object)  # by item index
    title_of = [vocab.title(i) or f"id {i}" for i in ["", *vocab.item_ids]]
    cats, titles = [], []
    for seq in data.sequences:
        values, counts = np.unique(cat_of[seq], return_counts=True)
        best = values[np.argmax(counts)] if len(values) else ""
        cats.append(best or None)
        titles.append(f"last: {title_of[int(seq[-1])]}" if len(seq) else None)
    lengths = np.array([len(s) for s in data.sequences], dtype=float)
    return pd.DataFrame({"id": list(vocab.user_ids), "title": titles, "category": cats, "popularity": lengths,
                         "history_length": lengths.astype(np.int64)})


def get_embedding_points(run: Run, data: SequenceData | None = None, what: What = "items", method: Method = "umap",
                         seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine",
                         n_clusters: int = DEFAULT_CLUSTERS, n_epochs: int | None = None,
                         progress: Progress | None = None) -> EmbeddingPoints:
    """A 2-D map of the run's item vectors or user representations, with titles, categories, popularity
    (events of the item in the log; for users, events in their history) and k-means clusters of the full vectors.

    ``data`` is the log the run was trained on; items work without it (popularity is then unknown), users need it.
    """
    if what not in WHATS:
        raise InputError(f"'what' must be one of {list(WHATS)}, got {what!r}")
    check_projection_args(method, n_neighbors, min_dist, metric)
    if data is not None:
        from seqrec_core.runs import check_run_data

        check_run_data(run, data, "the log given")
    if what == "items":
        vectors = get_item_vectors(run)
        frame = _item_frame(run, data)
    else:
        if data is None:
            raise InputError("a map of users needs the log the run was trained on; pass --data PATH")
        vectors = get_user_vectors(run, data)
        frame = _user_frame(data)
    xy, used, note = project_with_note(vectors, method, seed, n_neighbors, min_dist, metric, n_epochs, progress)
    labels = cluster_vectors(vectors, n_clusters, seed, metric)
    frame.insert(1, "x", xy[:, 0])
    frame.insert(2, "y", xy[:, 1])
    frame["cluster"] = [f"cluster {c + 1}" for c in labels]
    params = {"seed": seed, "n_neighbors": n_neighbors, "min_dist": min_dist, "metric": metric,
              "n_clusters": int(labels.max(initial=-1)) + 1, "n_epochs": n_epochs}
    return EmbeddingPoints(what=what, method=used, ids=frame["id"].tolist(), xy=xy, frame=frame, note=note,
                           params=params)


def nearest_items(run: Run, item_id: str, k: int = 10) -> pd.DataFrame:
    """The ``k`` items whose learned vectors point the most the same way as ``item_id``'s (cosine), itself
    excluded: rank, item_id, title, category, similarity (descending)."""
    return nearest_by_vectors(get_item_vectors(run), run.vocab, item_id, k)


def nearest_by_vectors(vectors: np.ndarray, vocab: Vocab, item_id: str, k: int = 10) -> pd.DataFrame:
    """:func:`nearest_items` on item vectors already at hand (``vectors[i]`` = item index i + 1), e.g. the ones a
    stored analysis keeps, so the Embeddings page needs no model."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a whole number >= 1 (got {k!r}), e.g. 10 neighbours")
    index = vocab.item_index(item_id) - 1  # unknown id -> InputError
    vectors = np.asarray(vectors, dtype=np.float64)  # (V, D)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = unit @ unit[index]  # (V,)
    sims[index] = -np.inf
    k = int(min(k, len(sims) - 1))
    top = np.argsort(-sims, kind="stable")[:k]
    ids = [vocab.item_ids[i] for i in top]
    return pd.DataFrame({"rank": np.arange(1, k + 1), "item_id": ids, "title": [vocab.title(i) for i in ids],
                         "category": [vocab.category(i) for i in ids], "similarity": sims[top].astype(float)})


def get_category_agreement(run: Run, k: int = 10, chunk: int = 1024, vectors: np.ndarray | None = None) -> dict:
    """How much the learned space follows the catalogue's categories: the share of each item's ``k`` nearest
    neighbours (cosine) that share its category, next to the share expected by chance (the same for a random
    other item). Items without a category are left out; ``share`` is None when fewer than 2 categories exist.
    Returns ``{"share", "base_rate", "items", "k"}``; chunked, so 10,000 items take about a second. ``vectors``:
    the run's item vectors when already at hand."""
    vocab = run.vocab
    cats = np.array([vocab.category(i) or "" for i in vocab.item_ids], dtype=object)
    known = np.flatnonzero(cats != "")
    k = int(min(k, max(len(known) - 1, 0)))
    if k < 1 or len(set(cats[known])) < 2:
        return {"share": None, "base_rate": None, "items": int(len(known)), "k": k}
    vectors = (get_item_vectors(run) if vectors is None else vectors)[known].astype(np.float32)  # (M, D)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    codes = pd.factorize(cats[known])[0]
    hits = 0
    for start in range(0, len(unit), chunk):
        sims = unit[start:start + chunk] @ unit.T  # (c, M)
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # never your own neighbour
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (c, k)
        hits += int((codes[top] == codes[start:start + chunk, None]).sum())
    sizes = np.bincount(codes).astype(float)
    base = float((sizes * (sizes - 1)).sum() / (len(codes) * (len(codes) - 1)))
    return {"share": hits / (len(codes) * k), "base_rate": base, "items": int(len(codes)), "k": k}
