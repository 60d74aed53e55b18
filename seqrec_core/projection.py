"""2-D projections of learned vectors: PCA (exact, linear, instant) and UMAP (keeps neighbourhoods).

Why the care with UMAP: its first call in a process pays numba compilation, and its NN-descent neighbour search
alone compiles for a minute or more in every new process on a 2-core CPU, so up to :data:`EXACT_KNN_MAX` points
the neighbours are computed exactly here (matrix products, seconds) and handed to UMAP. UMAP is seeded (same
seed, same map), reports progress through a callback, and can be warmed up in a background thread. The 2-D
coordinates of either are unitless: only distances and groupings mean something.
"""
from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np

from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

Method = Literal["umap", "pca"]
Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)
METHODS = ("umap", "pca")
BIG_SET = 4096  # from here UMAP would use approximate neighbours (NN-descent), and 200 epochs are enough
EXACT_KNN_MAX = 30_000  # up to here neighbours are exact matrix products (seconds), beyond it NN-descent


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


def check_projection_args(method: str, n_neighbors: int, min_dist: float, metric: str) -> None:
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
    check_projection_args(method, n_neighbors, min_dist, metric)
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
