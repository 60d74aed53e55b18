"""Stored maps of the learned spaces: PCA and UMAP projections of the item vectors and user representations, and
the item vectors themselves (nearest neighbours and category agreement need no model once they are stored)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from seqrec_core.analysis.registry import AnalysisContext, Computed, Kind, Progress, register
from seqrec_core.analysis.store import StoredUnit

UMAP_DEFAULTS = {"n_neighbors": 15, "min_dist": 0.1, "seed": 0}


def _no_vectors(ctx: AnalysisContext) -> str | None:
    if getattr(ctx.run.model, "item_embeddings", None) is None:
        return f"the run's family ({ctx.run.family}) has no learned item vectors"
    return None


def _compute_embedding(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.embeddings import get_embedding_points

    def tick(share: float, _text: str = "") -> None:
        if progress is not None:
            progress(int(round(1000 * min(max(share, 0.0), 1.0))), 1000)

    points = get_embedding_points(ctx.run, ctx.data, what=params["what"], method=params["method"],
                                  seed=params["seed"], n_neighbors=params["n_neighbors"], min_dist=params["min_dist"],
                                  progress=tick)
    return {"points": points.frame}, {"method": points.method, "note": points.note, "what": points.what,
                                      "params": points.params}


def _all_maps(ctx: AnalysisContext) -> list[dict]:
    """PCA before UMAP (PCA is instant; if the job is cancelled during UMAP, the pages still have a map)."""
    return [{"what": what, "method": method, **UMAP_DEFAULTS} for method in ("pca", "umap")
            for what in ("items", "users")]


EMBEDDING = register(Kind(
    name="embedding", version=1, defaults={"what": "items", "method": "umap", **UMAP_DEFAULTS},
    compute=_compute_embedding, label="2-D maps of the item and user spaces", variants=_all_maps, skip=_no_vectors,
    allowed={"what": ("items", "users"), "method": ("umap", "pca"), "n_neighbors": (2, 500), "min_dist": (0.0, 1.0),
             "seed": (0, 2**31 - 1)}))


def load_embedding(unit: StoredUnit):  # noqa: ANN201 - EmbeddingPoints
    from seqrec_core.embeddings import EmbeddingPoints

    frame = unit.table("points")
    frame["id"] = frame["id"].astype(str)
    info = unit.info
    return EmbeddingPoints(what=str(info["what"]), method=str(info["method"]), ids=frame["id"].tolist(),
                           xy=frame[["x", "y"]].to_numpy(np.float32), frame=frame, note=info.get("note"),
                           params=dict(info.get("params") or {}))


def _compute_item_space(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.embeddings import get_category_agreement, get_item_vectors

    vectors = get_item_vectors(ctx.run)  # (V, D)
    agreement = get_category_agreement(ctx.run, k=params["k"], vectors=vectors)
    frame = pd.DataFrame({"item_id": list(ctx.run.vocab.item_ids), "vector": list(vectors.astype(np.float32))})
    return {"vectors": frame}, agreement


ITEM_SPACE = register(Kind(
    name="item_space", version=1, defaults={"k": 10}, compute=_compute_item_space, skip=_no_vectors,
    label="the item vectors, and how far neighbours share a category", allowed={"k": (1, 1000)}))


def load_item_vectors(unit: StoredUnit) -> np.ndarray:
    """(V, D) float32 item vectors, row i = item index i + 1."""
    frame = unit.table("vectors")
    return np.stack([np.asarray(v, dtype=np.float32) for v in frame["vector"]]) if len(frame) else np.zeros((0, 0))
