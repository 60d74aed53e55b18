"""AppTest of the Embeddings page with the session's tiny run: guards, the PCA map at once, the UMAP map, colour
choices, the neighbour table of a picked item and its highlight on the map."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PAGE = "app_pages/6_Embeddings.py"


def open_embeddings(dataset=None, run: Path | None = None, **state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    if dataset is not None:
        at.session_state["dataset"] = dataset
    if run is not None:
        at.session_state["run_path"] = str(run)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(array) -> list:  # noqa: ANN001 - plotly >= 6 sends numeric arrays as {"dtype", "bdata"}
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
    return list(array)


def n_points(spec: dict) -> int:
    return sum(len(values(t["x"])) for t in spec["data"])


def test_without_data_or_run_the_page_says_what_to_do_first(runs_dir):
    from seqrec_core.data.dataset import dataset_from_events
    from seqrec_core.data.synthetic import make_demo_events

    at = open_embeddings()
    assert any("No data loaded yet" in i.value for i in at.info)
    events, _truth = make_demo_events(n_users=40, n_items=60, seed=11)  # no run was trained on this log
    at = open_embeddings(dataset=dataset_from_events(events, "untrained"))
    assert any("No model in use yet" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_pca_map_neighbours_and_highlight(runs_dir, small_dataset, tiny_run):
    at = open_embeddings(small_dataset, tiny_run, emb_method="PCA")
    assert [t.value for t in at.title] == ["Embeddings"]
    specs = charts(at)
    assert len(specs) == 1
    spec = specs[0]
    assert spec["layout"]["xaxis"]["title"]["text"] == "PCA 1"
    assert spec["data"][0]["type"] == "scattergl"
    n_items = small_dataset.sequences.vocab.n_items
    names = [t.get("name") for t in spec["data"]]
    assert names[-2:] == ["nearest neighbours", "picked"]  # the most popular item is picked to start with
    assert n_points({"data": spec["data"][:-2]}) == n_items
    assert any("unitless" in c.value for c in at.caption)
    assert any("share its category" in m.value for m in at.markdown)
    counts = np.bincount(np.concatenate(small_dataset.sequences.sequences))
    assert at.selectbox(key="emb_item").value == small_dataset.sequences.vocab.item_id(int(counts.argmax()))

    at.selectbox(key="emb_color").set_value("category").run()
    assert not at.exception
    assert len(charts(at)[0]["data"]) > 3  # one trace per category, then the highlight

    item = small_dataset.sequences.vocab.item_ids[0]
    at.selectbox(key="emb_item").set_value(item).run()
    at.slider(key="emb_k").set_value(7).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 7 and item not in set(table["item_id"])
    assert (np.diff(table["similarity"].to_numpy()) <= 1e-12).all()
    data = charts(at)[0]["data"]
    assert values(data[-1]["x"]) and len(values(data[-2]["x"])) == 7
    assert any(b.label == "Download table (CSV)" for b in at.get("download_button"))

    at.radio(key="emb_what").set_value("users").run()
    assert not at.exception
    spec = charts(at)[0]
    assert n_points(spec) == small_dataset.sequences.n_users
    assert "user" in spec["layout"]["title"]["text"].lower()


def test_umap_map_replaces_pca_and_is_cached(runs_dir, small_dataset, tiny_run):
    at = open_embeddings(small_dataset, tiny_run)  # UMAP is the default projection
    specs = charts(at)
    assert specs[-1]["layout"]["xaxis"]["title"]["text"] == "UMAP 1"
    assert not at.get("progress")  # the bar is gone once the map is there
    at.run()  # a rerun hits the cache: same coordinates
    assert values(charts(at)[-1]["data"][0]["x"]) == values(specs[-1]["data"][0]["x"])
