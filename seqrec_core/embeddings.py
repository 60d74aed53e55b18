"""Maps of the learned item and user spaces: vectors out of a run, 2-D projections, clusters and neighbours.

Why two projections: PCA is exact, linear and instant, so the page can show it at once; UMAP keeps local
neighbourhoods (items bought together end up together) but its first call in a process pays numba compilation.
Its NN-descent neighbour search alone compiles for a minute or more in every new process on a 2-core CPU, so up
to 30,000 points the neighbours are computed exactly here (matrix products, seconds) and handed to UMAP. UMAP is
seeded (same seed, same map), reports progress through a callback, and can be warmed up in a background thread.
The 2-D coordinates of either are unitless: only distances and groupings mean something.

Clusters and neighbours are computed on the full vectors, never on the 2-D map, so they do not depend on the
projection chosen. Cosine is the default similarity: a dot-product model's vector norms mostly encode
popularity, the direction encodes taste.
"""
from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import torch

from seqrec_core.data.sequences import SequenceData
from seqrec_core.errors import InputError

if TYPE_CHECKING:
    from seqrec_core.runs import Run

log = logging.getLogger(__name__)

What = Literal["items", "users"]
Method = Literal["umap", "pca"]
Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)
METHODS = ("umap", "pca")
WHATS = ("items", "users")
DEFAULT_CLUSTERS = 10
BIG_SET = 4096  # from here UMAP would use approximate neighbours (NN-descent), and 200 epochs are enough
EXACT_KNN_MAX = 30_000  # up to here neighbours are exact matrix products (seconds), beyond it NN-descent


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
def _model_device(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def get_item_vectors(run: Run) -> np.ndarray:
    """Learned item vectors (n_items, D) float32, row i = item index i + 1 (the padding row is dropped)."""
    emb = getattr(run.model, "item_embeddings", None)
    if emb is None:
        raise InputError(f"run '{run.path}' ({run.family}) has no learned item vectors to map; use a neural run")
    with torch.no_grad():
        weight = emb()  # (V + 1, D)
    return weight[1:].detach().float().cpu().numpy()


def _check_same_data(run: Run, data: SequenceData) -> None:
    expected = (run.config.get("data") or {}).get("fingerprint")
    if (expected and expected != data.fingerprint) or data.vocab.n_items != run.vocab.n_items:
        raise InputError(f"run '{run.path.name}' was trained on other data than the log given "
                         f"({run.vocab.n_items} vs {data.vocab.n_items} items); pass the log the run was trained on")


@torch.no_grad()
def get_user_vectors(run: Run, data: SequenceData, batch_size: int = 512) -> np.ndarray:
    """Each user's representation (n_users, D) float32: the model's last hidden state after the whole history.

    That is the vector the model scores the catalogue with to recommend the user's next item. Users are batched
    in length order (little padding) on the model's device. A time-aware model gets the events' times and, as
    the request time, the last event's time plus the user's median gap (``with_query``'s serving default).
    """
    _check_same_data(run, data)
    model = run.model
    if not hasattr(model, "forward_hidden"):
        raise InputError(f"run '{run.path}' ({run.family}) exposes no user representation; use a neural run")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size {batch_size!r} must be a whole number >= 1, e.g. 512")
    from seqrec_core.models.neural import pad_left
    from seqrec_core.models.time_features import pad_times_left, require_time, with_query

    timed = bool(getattr(model, "uses_time", False))
    if timed:
        require_time(data, f"run '{run.path}' (trained with time features)")
    device = _model_device(model)
    max_len = run.max_len
    seqs = data.sequences
    lengths = np.fromiter((min(len(s), max_len) for s in seqs), dtype=np.int64, count=len(seqs))
    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(seqs), int(get_item_vectors(run).shape[1])), dtype=np.float32)  # (U, D)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids = pad_left([seqs[i] for i in rows], max_len).to(device)  # (b, T)
            if timed:
                tt = pad_times_left([with_query(data.times[i]) for i in rows], max_len, ids.shape[1])  # (b, T + 1)
                hidden = model.forward_hidden(ids, times=tt.to(device)).hidden[:, -1]  # (b, D)
            else:
                hidden = model.forward_hidden(ids).hidden[:, -1]  # (b, D) the prediction point
            out[rows] = hidden.float().cpu().numpy()
    finally:
        model.train(was_training)
    return out


# --------------------------------------------------------------------------------------------- projection
def _pca(vectors: np.ndarray) -> np.ndarray:
    """First two principal components (N, 2), column 0 the largest variance; signs fixed for determinism.

    Through the (D, D) covariance rather than an SVD of the (N, D) data: N is large, D small (64), so this is
    milliseconds for 10,000 points.
    """
    x = vectors.astype(np.float64) - vectors.mean(axis=0, dtype=np.float64)  # (N, D)
    xy = np.zeros((len(x), 2))
    if len(x) >= 2 and x.shape[1] >= 1:
        _values, vecs = np.linalg.eigh(x.T @ x)  # (D,), (D, D) ascending
        k = min(2, x.shape[1])
        top = vecs[:, ::-1][:, :k]  # (D, k) largest variance first
        signs = np.sign(top[np.abs(top).argmax(axis=0), np.arange(k)])  # largest loading positive
        signs[signs == 0] = 1
        xy[:, :k] = x @ (top * signs)
    return xy.astype(np.float32)


class _TqdmSink:
    """A file for UMAP's tqdm bar (format "{n}/{total}") that turns epochs into progress callbacks."""

    def __init__(self, progress: Progress, lo: float, hi: float) -> None:
        self.progress, self.lo, self.hi = progress, lo, hi

    def write(self, text: str) -> None:
        for part in text.replace("\r", "\n").split("\n"):
            done, _, total = part.strip().partition("/")
            if done.isdigit() and total.isdigit() and int(total) > 0:
                frac = int(done) / int(total)
                self.progress(self.lo + (self.hi - self.lo) * frac, f"UMAP: laying out, epoch {done}/{total}")

    def flush(self) -> None:
        pass


def exact_knn(vectors: np.ndarray, k: int, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (N, k) indices and distances, each point its own first neighbour (distance 0),
    as UMAP expects. Blocked matrix products: 10,000 x 64 takes about a second, no compilation at all."""
    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    k = min(k, n)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sq = (x * x).sum(axis=1)  # (N,)
    idx = np.empty((n, k), dtype=np.int32)
    dist = np.empty((n, k), dtype=np.float32)
    chunk = int(max(64, min(2048, 25_000_000 // max(n, 1))))  # about 100 MB of similarities at a time
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        sims = x[rows] @ x.T  # (c, N)
        d = 1.0 - sims if metric == "cosine" else sq[rows, None] + sq[None, :] - 2.0 * sims  # (c, N)
        np.maximum(d, 0.0, out=d)
        d[np.arange(len(rows)), rows] = -1.0  # self first, even among duplicates
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(rows), 1))
        part_d = np.take_along_axis(d, part, axis=1)
        order = np.argsort(part_d, axis=1, kind="stable")
        idx[rows] = np.take_along_axis(part, order, axis=1)
        dist[rows] = np.take_along_axis(part_d, order, axis=1)
    dist[:, 0] = 0.0
    if metric != "cosine":
        np.sqrt(dist, out=dist)
    return idx, dist


def _umap(vectors: np.ndarray, seed: int, n_neighbors: int, min_dist: float, metric: str,
          n_epochs: int | None, progress: Progress) -> np.ndarray:
    t0 = time.perf_counter()
    progress(0.0, "UMAP: loading (the first time in a session compiles numba code, up to a minute)")
    import umap  # lazy: seconds to import, longer the first time

    n = len(vectors)
    if n_epochs is None and n > BIG_SET:
        n_epochs = 200  # UMAP's own choice above 10,000 points; its 500 below costs 2.5x for no visible gain
    knn = None
    if n <= EXACT_KNN_MAX:
        # Exact neighbours by matrix products instead of UMAP's NN-descent, whose numba code cannot be cached
        # and takes a minute or more to compile in every new process on a small CPU (bench/umap_speed.py).
        progress(0.05, "UMAP: finding each point's nearest neighbours")
        knn = exact_knn(vectors, n_neighbors, metric)
    progress(0.15, "UMAP: building the neighbour graph")
    sink = _TqdmSink(progress, 0.3, 1.0)
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                        random_state=seed, n_jobs=1, n_epochs=n_epochs, low_memory=True,
                        precomputed_knn=knn if knn is not None else (None, None, None),
                        tqdm_kwds={"disable": False, "file": sink, "bar_format": "{n}/{total}", "mininterval": 0.25,
                                   "ascii": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seeded => single-threaded notices, no search index: not for people
        xy = reducer.fit_transform(vectors.astype(np.float32))  # (N, 2)
    progress(1.0, "UMAP: done")
    log.info("UMAP of %d x %d took %.1f s", n, vectors.shape[1], time.perf_counter() - t0)
    return np.asarray(xy, dtype=np.float32)


def _check_projection_args(method: str, n_neighbors: int, min_dist: float, metric: str) -> None:
    if method not in METHODS:
        raise InputError(f"projection method {method!r} is not one of {list(METHODS)}")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 2:
        raise InputError(f"n_neighbors {n_neighbors!r} must be a whole number >= 2, e.g. 15")
    if not isinstance(min_dist, (int, float)) or not 0 <= min_dist <= 1:
        raise InputError(f"min_dist {min_dist!r} must be a number in [0, 1], e.g. 0.1")
    if metric not in ("cosine", "euclidean"):
        raise InputError(f"metric {metric!r} is not one of ['cosine', 'euclidean']")


def project_with_note(vectors: np.ndarray, method: Method = "pca", seed: int = 0, n_neighbors: int = 15,
                      min_dist: float = 0.1, metric: str = "cosine", n_epochs: int | None = None,
                      progress: Progress | None = None) -> tuple[np.ndarray, str, str | None]:
    """:func:`project`, also returning the method actually used and why it differs (a tiny set gets PCA)."""
    _check_projection_args(method, n_neighbors, min_dist, metric)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or not np.isfinite(vectors).all():
        raise InputError("vectors to project must be a finite 2-D array (points x dimensions)")
    if method == "pca":
        return _pca(vectors), "pca", None
    n = len(vectors)
    if n < n_neighbors + 2:
        note = f"UMAP needs at least n_neighbors + 2 = {n_neighbors + 2} points; {n} given, so PCA is shown"
        log.warning(note)
        return _pca(vectors), "pca", note
    return _umap(vectors, seed, int(n_neighbors), float(min_dist), metric, n_epochs, progress or (lambda f, t: None)), \
        "umap", None


def project(vectors: np.ndarray, method: Method = "pca", seed: int = 0, n_neighbors: int = 15,
            min_dist: float = 0.1, metric: str = "cosine", n_epochs: int | None = None,
            progress: Progress | None = None) -> np.ndarray:
    """2-D coordinates (N, 2) float32 of ``vectors`` (N, D); same seed, same coordinates.

    ``metric`` is UMAP's neighbour metric (PCA is always on the centred raw vectors). Fewer than
    ``n_neighbors + 2`` points fall back to PCA (see :func:`project_with_note` for the note).
    """
    return project_with_note(vectors, method, seed, n_neighbors, min_dist, metric, n_epochs, progress)[0]


_warm_lock = threading.Lock()
_warm_thread: threading.Thread | None = None


def _warm_work() -> None:
    try:
        rng = np.random.default_rng(0)
        # few epochs: the compiled code is the same as for a real map, the work is not
        project(rng.normal(size=(300, 8)).astype(np.float32), "umap", n_epochs=5)
    except Exception:  # noqa: BLE001 - a failed warm-up only means the first real map is slower
        log.warning("UMAP warm-up failed", exc_info=True)


def warm_up_umap(background: bool = True) -> threading.Thread | None:
    """Import UMAP and fit a small random set once per process, so numba's compilation is paid before a person
    asks for a map. Idempotent (later calls return the same thread); never raises. With ``background`` the
    work runs in a daemon thread, which is returned; otherwise it runs here and None is returned."""
    global _warm_thread
    with _warm_lock:
        if _warm_thread is None:
            _warm_thread = threading.Thread(target=_warm_work, name="umap-warm-up", daemon=True)
            _warm_thread.start()
        thread = _warm_thread
    if not background:
        thread.join()
        return None
    return thread


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
    _check_projection_args(method, n_neighbors, min_dist, metric)
    if data is not None:
        _check_same_data(run, data)
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
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a whole number >= 1 (got {k!r}), e.g. 10 neighbours")
    vocab = run.vocab
    index = vocab.item_index(item_id) - 1  # unknown id -> InputError
    vectors = get_item_vectors(run).astype(np.float64)  # (V, D)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = unit @ unit[index]  # (V,)
    sims[index] = -np.inf
    k = int(min(k, len(sims) - 1))
    top = np.argsort(-sims, kind="stable")[:k]
    ids = [vocab.item_ids[i] for i in top]
    return pd.DataFrame({"rank": np.arange(1, k + 1), "item_id": ids, "title": [vocab.title(i) for i in ids],
                         "category": [vocab.category(i) for i in ids], "similarity": sims[top].astype(float)})


def get_category_agreement(run: Run, k: int = 10, chunk: int = 1024) -> dict:
    """How much the learned space follows the catalogue's categories: the share of each item's ``k`` nearest
    neighbours (cosine) that share its category, next to the share expected by chance (the same for a random
    other item). Items without a category are left out; ``share`` is None when fewer than 2 categories exist.
    Returns ``{"share", "base_rate", "items", "k"}``; chunked, so 10,000 items take about a second."""
    vocab = run.vocab
    cats = np.array([vocab.category(i) or "" for i in vocab.item_ids], dtype=object)
    known = np.flatnonzero(cats != "")
    k = int(min(k, max(len(known) - 1, 0)))
    if k < 1 or len(set(cats[known])) < 2:
        return {"share": None, "base_rate": None, "items": int(len(known)), "k": k}
    vectors = get_item_vectors(run)[known].astype(np.float32)  # (M, D)
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
