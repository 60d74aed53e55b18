"""AppTest of the Evaluate page's AUC / GAUC: in the metrics table with their 95% intervals, explained in one line,
and selectable for the chart (which marks 0.5, what a random ranking gets)."""
from __future__ import annotations

from tests.app.test_pages import open_page, texts


def test_evaluate_page_shows_auc_and_gauc_with_intervals(runs_dir, small_dataset, tiny_run):
    at = open_page("app_pages/4_Evaluate.py", dataset=small_dataset, run=tiny_run)
    table = at.dataframe[0].value
    assert {"AUC", "AUC lo", "AUC hi", "GAUC", "GAUC lo", "GAUC hi"} <= set(table.columns)
    assert {"popularity", "markov", "itemknn", "tiny-sasrec"} <= set(table["model"])
    for m in ("AUC", "GAUC"):
        assert table[m].between(0, 1).all()
        assert ((table[f"{m} lo"] <= table[m]) & (table[m] <= table[f"{m} hi"])).all()
    assert (table["AUC"] > 0.5).any()  # the popularity baseline alone ranks far better than random on the demo
    said = texts(at)
    assert "share of the catalogue the model ranks below the item the user really took next" in said
    assert "0.5 = random" in said
    next(s for s in at.selectbox if s.label == "Metric for the charts").set_value("AUC").run()
    assert not at.exception, at.exception
    spec = "\n".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "AUC by model" in spec and "random (0.5)" in spec
