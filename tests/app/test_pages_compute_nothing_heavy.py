"""No page computes a many-user analysis inside a page run: with every such computation made to fail, every page
and tab still renders from the run's stored analysis, and settings that are not stored offer a background job.

How the "no page computes for more than 5 s inside a rerun" bar is checked: the work that takes seconds to minutes
(ranking the whole catalogue for every user, explaining hundreds of users, UMAP, the planted check, fitting the
baselines) is exactly these functions; if a page called one, this test would fail. What a page may still do
itself is per-user (one explanation, one user's top-K, a what-if edit), which bench/page_times.py times in a
real browser.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
HEAVY = [("seqrec_core.evaluation", "evaluate"), ("seqrec_core.models.baselines", "fit_baselines"),
         ("seqrec_core.explain.longrange", "get_longrange_stats"),
         ("seqrec_core.explain.longrange", "get_truncation_ablation"),
         ("seqrec_core.explain.faithfulness", "get_faithfulness"), ("seqrec_core.embeddings", "get_embedding_points"),
         ("seqrec_core.explain.planted", "get_planted_pair_check"),
         ("seqrec_core.patterns.model_ties", "compute_attribution_time_mass"),
         ("seqrec_core.recommend", "get_all_recommendations"), ("seqrec_core.analysis.job", "run_analysis")]
PAGES = {"app_pages/4_Evaluate.py": [{}, {"exclude": True}],
         "app_pages/5_Explain.py": [{"tab": t} for t in ("Why this recommendation", "How far back does it look",
                                                     "Can we trust it")],
         "app_pages/6_Embeddings.py": [{"emb_what": w, "emb_method": m} for w in ("items", "users")
                                   for m in ("UMAP", "PCA")],
         "app_pages/7_Recommendations.py": [{}], "app_pages/8_Compare.py": [{}],
         "app_pages/2_Patterns.py": [{"patterns_tab": "Model"}]}


@pytest.fixture
def no_heavy_work(monkeypatch):
    import importlib

    def refuse(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a page computed a many-user analysis inside its run")

    for module, name in HEAVY:
        monkeypatch.setattr(importlib.import_module(module), name, refuse)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_from_the_store_without_heavy_work(page, small_dataset, tiny_run, runs_dir,
                                                              no_heavy_work) -> None:
    for state in PAGES[page]:
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state["dataset"] = small_dataset
        at.session_state["run_path"] = str(tiny_run)
        for key, value in state.items():
            if key != "exclude":
                at.session_state[key] = value
        at.run()
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, state, at.exception)
        if state.get("exclude"):
            toggle = next(t for t in at.toggle if t.label == "Exclude seen items")
            toggle.set_value(not toggle.value).run()
            assert not at.exception, (page, state, at.exception)
        assert at.get("plotly_chart"), (page, state)  # something stored was drawn


def test_settings_that_are_not_stored_offer_a_job_instead(small_dataset, tiny_run, runs_dir, no_heavy_work) -> None:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["dataset"] = small_dataset
    at.session_state["run_path"] = str(tiny_run)
    at.session_state["tab"] = "Can we trust it"
    at.run()
    at.switch_page("app_pages/5_Explain.py")
    at.run()
    at.number_input(key="faith_users").set_value(60).run()
    assert not at.exception, at.exception
    assert any(b.label == "Compute now" for b in at.button)
