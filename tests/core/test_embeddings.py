"""Embedding maps: projections (shape, determinism, variance order), vectors out of a run, neighbours, clusters,
the planted categories showing up in the learned space, and the map figure."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seqrec_core import embeddings as E
from seqrec_core.errors import InputError
from seqrec_core.viz.plot_embeddings import plot_embedding_map


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    """A small catalogue (96 items, 12 categories) whose users buy half from a favourite category, and a run
    trained on it for 2 epochs (~10 s): enough for same-category items to point the same way."""
    from seqrec_core.data.dataset import dataset_from_events
    from seqrec_core.data.synthetic import make_demo_events
    from seqrec_core.jobs import run_training_job
    from seqrec_core.runs import load_run
    from seqrec_core.training import TrainConfig

    events, _truth = make_demo_events(n_users=200, n_items=96, events_per_user=30, seed=5)
    ds = dataset_from_events(events, "planted categories")
    out = tmp_path_factory.mktemp("emb") / "run"
    run_training_job(ds.sequences, "sasrec", {"hidden_size": 32, "num_layers": 1, "num_heads": 1, "dropout": 0.1},
                     TrainConfig(epochs=2, batch_size=64, max_len=20, lr=5e-3, device="cpu", seed=0), out, ds.info())
    return load_run(out), ds


def blobs(n_per: int = 30, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * 6
    labels = np.repeat(np.arange(3), n_per)
    return (centres[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


# ----------------------------------------------------------------------------------------------- projection
def test_pca_orders_components_by_variance_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, 6)) * np.array([5.0, 1.0, 3.0, 0.5, 0.2, 0.1])).astype(np.float32)
    xy = E.project(x, "pca")
    assert xy.shape == (500, 2) and xy.dtype == np.float32
    var = xy.var(axis=0)
    assert var[0] >= var[1]
    expected = np.linalg.svd(x - x.mean(0), compute_uv=False)[:2] ** 2 / len(x)  # top-2 variances
    np.testing.assert_allclose(var, expected, rtol=1e-3)
    np.testing.assert_array_equal(xy, E.project(x, "pca"))
    np.testing.assert_allclose(E.project(x[::-1], "pca"), xy[::-1], atol=1e-4)  # row order does not matter


def test_pca_handles_degenerate_inputs():
    assert E.project(np.ones((1, 4), np.float32), "pca").tolist() == [[0.0, 0.0]]
    one_dim = E.project(np.arange(5, dtype=np.float32)[:, None], "pca")
    assert one_dim.shape == (5, 2) and (one_dim[:, 1] == 0).all()


def test_umap_is_seeded_and_separates_blobs():
    x, labels = blobs()
    first = E.project(x, "umap", seed=0, n_neighbors=10)
    assert first.shape == (len(x), 2) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, E.project(x, "umap", seed=0, n_neighbors=10))
    assert not np.array_equal(first, E.project(x, "umap", seed=1, n_neighbors=10))
    centres = np.stack([first[labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(first[labels == c] - centres[c], axis=1).mean() for c in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 2 * spread  # the three blobs stay three groups on the map


def test_umap_reports_progress_up_to_done():
    x, _ = blobs(n_per=10)
    seen: list[tuple[float, str]] = []
    E.project(x, "umap", n_neighbors=5, n_epochs=50, progress=lambda f, t: seen.append((f, t)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert any("epoch" in t for _, t in seen)


def test_tiny_sets_fall_back_to_pca_with_a_note():
    x, _ = blobs(n_per=3)  # 9 points < n_neighbors + 2
    xy, used, note = E.project_with_note(x, "umap", n_neighbors=15)
    assert used == "pca" and "n_neighbors" in note
    np.testing.assert_array_equal(xy, E.project(x, "pca"))


@pytest.mark.parametrize("kwargs", [dict(method="tsne"), dict(n_neighbors=1), dict(min_dist=2.0),
                                    dict(metric="manhattan")])
def test_bad_projection_options_are_input_errors(kwargs):
    with pytest.raises(InputError):
        E.project(np.zeros((30, 4), np.float32), **kwargs)


def test_non_finite_vectors_are_input_errors():
    x = np.zeros((30, 4), np.float32)
    x[3, 1] = np.nan
    with pytest.raises(InputError, match="finite"):
        E.project(x, "pca")


def test_clusters_recover_blobs_and_are_labelled_by_size():
    x, labels = blobs(n_per=20)
    x = np.concatenate([x, x[labels == 0][:10] + 0.01])  # blob 0 becomes the largest
    labels = np.concatenate([labels, np.zeros(10, int)])
    found = E.cluster_vectors(x, n_clusters=3, seed=0, metric="euclidean")
    for c in range(3):
        assert len(set(found[labels == c])) == 1  # each blob is one cluster
    assert found[0] == 0  # the largest blob is "cluster 1"
    np.testing.assert_array_equal(found, E.cluster_vectors(x, n_clusters=3, seed=0, metric="euclidean"))
    assert E.cluster_vectors(x[:2], n_clusters=10).tolist() == [0, 0]


# --------------------------------------------------------------------------------------------- from a run
def test_item_vectors_are_the_embedding_rows_without_padding(planted):
    run, _ds = planted
    vectors = E.get_item_vectors(run)
    weight = run.model.item_embeddings().detach()
    assert vectors.shape == (run.vocab.n_items, weight.shape[1])
    np.testing.assert_array_equal(vectors, weight[1:].numpy())


def test_user_vectors_are_what_the_model_ranks_with(planted):
    run, ds = planted
    users = E.get_user_vectors(run, ds.sequences)
    assert users.shape == (ds.sequences.n_users, run.config["model"]["hidden_size"])
    np.testing.assert_allclose(E.get_user_vectors(run, ds.sequences, batch_size=7), users, atol=1e-5)
    scores = run.scorer().score_histories([ds.sequences.sequences[u] for u in (0, 5)])  # (2, V + 1)
    weight = run.model.item_embeddings().detach().numpy()
    np.testing.assert_allclose(users[[0, 5]] @ weight[1:].T, scores[:, 1:], rtol=1e-4, atol=1e-4)
    with pytest.raises(InputError):
        E.get_user_vectors(run, ds.sequences, batch_size=0)


def test_nearest_items_exclude_the_item_and_are_sorted(planted):
    run, _ds = planted
    item = run.vocab.item_ids[7]
    table = E.nearest_items(run, item, k=10)
    assert list(table.columns) == ["rank", "item_id", "title", "category", "similarity"]
    assert len(table) == 10 and item not in set(table["item_id"])
    assert (np.diff(table["similarity"].to_numpy()) <= 1e-12).all()
    v = E.get_item_vectors(run).astype(np.float64)
    a, b = v[7], v[run.vocab.item_index(table["item_id"][0]) - 1]
    assert table["similarity"][0] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert len(E.nearest_items(run, item, k=10_000)) == run.vocab.n_items - 1
    with pytest.raises(InputError, match="not in this dataset"):
        E.nearest_items(run, "no-such-item")
    with pytest.raises(InputError):
        E.nearest_items(run, item, k=0)


def test_learned_space_groups_planted_categories(planted):
    run, _ds = planted
    agree = E.get_category_agreement(run, k=5)
    assert agree["items"] == run.vocab.n_items and agree["k"] == 5
    assert 0.05 < agree["base_rate"] < 0.12  # 12 categories
    assert agree["share"] > 2.5 * agree["base_rate"]  # neighbours share the category far above chance


def test_embedding_points_frame_and_cli_json(planted):
    run, ds = planted
    items = E.get_embedding_points(run, ds.sequences, what="items", method="pca")
    frame = items.frame
    assert list(frame.columns[:3]) == ["id", "x", "y"]
    assert {"title", "category", "popularity", "cluster"} <= set(frame.columns)
    assert frame["id"].tolist() == run.vocab.item_ids == items.ids
    assert frame["popularity"].sum() == ds.sequences.n_events
    assert 2 <= frame["cluster"].nunique() <= E.DEFAULT_CLUSTERS
    doc = json.loads(json.dumps(items.to_json()))
    assert set(doc) == {"what", "method", "points"} and doc["what"] == "items" and doc["method"] == "pca"
    assert len(doc["points"]) == run.vocab.n_items and set(doc["points"][0]) == {"id", "x", "y"}

    users = E.get_embedding_points(run, ds.sequences, what="users", method="pca")
    assert users.frame["id"].tolist() == ds.sequences.vocab.user_ids
    assert users.frame["history_length"].tolist() == [len(s) for s in ds.sequences.sequences]
    assert users.frame["category"].notna().all() and users.frame["title"].str.startswith("last: ").all()

    no_data = E.get_embedding_points(run, None, what="items", method="pca")
    assert no_data.frame["popularity"].isna().all()
    np.testing.assert_array_equal(no_data.xy, items.xy)


def test_embedding_points_refuse_bad_requests(planted, small_dataset):
    run, ds = planted
    with pytest.raises(InputError, match="needs the log"):
        E.get_embedding_points(run, None, what="users", method="pca")
    with pytest.raises(InputError):
        E.get_embedding_points(run, ds.sequences, what="songs", method="pca")
    with pytest.raises(InputError, match="not the data this run was trained on"):
        E.get_embedding_points(run, small_dataset.sequences, what="users", method="pca")


# --------------------------------------------------------------------------------------------------- figure
def test_map_figure_is_webgl_with_titles_in_hover_and_unitless_axes(planted):
    run, ds = planted
    frame = E.get_embedding_points(run, ds.sequences, what="items", method="pca").frame
    fig = plot_embedding_map(frame, color_by="popularity", method="umap")
    assert fig.data[0].type == "scattergl"
    assert fig.layout.xaxis.title.text == "UMAP 1" and fig.layout.yaxis.title.text == "UMAP 2"
    assert fig.layout.xaxis.showticklabels is False
    hover = " ".join(str(c[0]) for c in fig.data[0].customdata)
    assert frame["title"].iloc[0] in hover
    bar = fig.data[0].marker.colorbar  # log scale: ticks are labelled counts at log10 positions
    counts = [float(t.replace(",", "")) for t in bar.ticktext]
    np.testing.assert_allclose(bar.tickvals, np.log10(counts))
    assert counts[-1] / counts[0] >= 10

    by_cat = plot_embedding_map(frame, color_by="category", method="pca")
    assert len(by_cat.data) == frame["category"].nunique()
    assert sum(len(t.x) for t in by_cat.data) == len(frame)
    assert by_cat.layout.xaxis.title.text == "PCA 1"


def test_map_figure_draws_the_picked_item_and_neighbours_on_top(planted):
    run, ds = planted
    frame = E.get_embedding_points(run, ds.sequences, what="items", method="pca").frame
    item = run.vocab.item_ids[3]
    near = E.nearest_items(run, item, k=5)["item_id"].tolist()
    fig = plot_embedding_map(frame, color_by="cluster", highlight=[item, *near])
    assert fig.data[-1].name == "picked" and fig.data[-1].marker.symbol == "star"
    assert fig.data[-2].name == "nearest neighbours" and len(fig.data[-2].x) == 5
    picked_row = frame.index[frame["id"] == item][0]
    assert fig.data[-1].x[0] == pytest.approx(frame["x"][picked_row])


def test_map_figure_empty_and_unknown_colour():
    import pandas as pd

    empty = plot_embedding_map(pd.DataFrame(columns=["id", "x", "y"]))
    assert "no data" in empty.layout.annotations[0].text
    with pytest.raises(ValueError):
        plot_embedding_map(pd.DataFrame({"id": ["a"], "x": [0.0], "y": [0.0]}), color_by="size")
    one = plot_embedding_map(pd.DataFrame({"id": ["a", "b"], "x": [0.0, 1.0], "y": [0.0, 1.0]}), color_by="category")
    assert len(one.data) == 1 and "one colour" in one.layout.title.subtitle.text


def test_warm_up_is_idempotent(monkeypatch):
    calls = []
    from seqrec_core import projection

    monkeypatch.setattr(projection, "_warm_thread", None)
    monkeypatch.setattr(projection, "_warm_work", lambda: calls.append(1))
    first = E.warm_up_umap()
    assert E.warm_up_umap() is first
    first.join(5)
    assert E.warm_up_umap(background=False) is None and calls == [1]


def test_module_has_no_streamlit_import():
    here = Path(E.__file__)
    source = "".join(p.read_text() for p in (here, here.with_name("projection.py"),
                                              here.with_name("viz") / "plot_embeddings.py"))
    assert "import streamlit" not in source
