"""The demo run shipped in assets/demo_run: trained on today's demo log, installable, and it meets the truth bar."""
from __future__ import annotations

from pathlib import Path

import pytest

from seqrec_core.data.dataset import dataset_from_events
from seqrec_core.data.synthetic import make_demo_events
from seqrec_core.demo_run import INSTALLED_NAME, SHIPPED_DEMO_RUN, install_demo_run, shipped_fingerprint
from seqrec_core.explain.planted import get_planted_pair_check
from seqrec_core.runs import load_run


@pytest.fixture(scope="module")
def demo():
    events, truth = make_demo_events(seed=0)
    return dataset_from_events(events, "demo"), truth


def test_shipped_run_was_trained_on_the_current_demo_log(demo) -> None:
    ds, _ = demo
    assert shipped_fingerprint() == ds.fingerprint, (
        "assets/demo_run was trained on another demo log (the generator changed): retrain it with "
        "`python bench/make_demo_run.py --install`")


def test_install_copies_once_and_refuses_another_log(tmp_path: Path, demo) -> None:
    ds, _ = demo
    path = install_demo_run(tmp_path, ds.fingerprint)
    assert path == tmp_path / INSTALLED_NAME and load_run(path).config["data"]["fingerprint"] == ds.fingerprint
    assert install_demo_run(tmp_path, ds.fingerprint) == path  # reused, not copied again
    assert sorted(p.name for p in tmp_path.iterdir()) == [INSTALLED_NAME]  # no temporary folder left
    other = tmp_path / "other"
    assert install_demo_run(other, "0" * 16) is None and not other.exists()


def test_shipped_run_finds_the_planted_triggers(demo) -> None:
    """Issue 3's truth bar on the shipped model: for held-out planted responses the model ranks in its top 10,
    the planted trigger is among the 3 highest-IG events in >= 80% of cases."""
    ds, truth = demo
    run = load_run(SHIPPED_DEMO_RUN)
    cases = get_planted_pair_check(run, ds.sequences, truth, top_k=10, steps=50)
    assert len(cases) >= 50
    assert cases["hit"].mean() >= 0.8
