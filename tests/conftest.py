"""Fixtures shared by the app and end-to-end tests: a small demo dataset and one tiny run trained once."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from analysed import analyse  # tests/analysed.py

from seqrec_core.cpu_threads import allowed_cores

# Some tests compare two trainings number for number (same seed, same weights). The thread policy adapts to the
# machine's load (seqrec_core.cpu_threads), and a thread count that changed between the two would change float
# sums; so the suite, and the jobs it starts, compute with a fixed count: every allowed core, torch's default.
os.environ.setdefault("SEQREC_THREADS", str(allowed_cores()))

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private runs root for the whole test session (the app and the CLI read SEQREC_RUNS_DIR)."""
    path = tmp_path_factory.mktemp("runs")
    old = os.environ.get("SEQREC_RUNS_DIR")
    os.environ["SEQREC_RUNS_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SEQREC_RUNS_DIR", None)
    else:
        os.environ["SEQREC_RUNS_DIR"] = old


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory):
    """The demo generator at a tenth of its size (same planted structure, seconds to train on), saved as a
    Parquet file so runs trained on it record a source the CLI can reopen."""
    from seqrec_core.data.dataset import DataSource, open_dataset
    from seqrec_core.data.synthetic import make_demo_events

    events, _truth = make_demo_events(n_users=200, seed=3)
    path = tmp_path_factory.mktemp("data") / "small_demo.parquet"
    events.to_parquet(path, index=False)
    return open_dataset(DataSource(path=str(path), format="parquet"))


@pytest.fixture(scope="session")
def tiny_run(runs_dir: Path, small_dataset) -> Path:
    """One tiny SASRec run on the small dataset, trained once per test session (a few seconds), with its stored
    analyses (what the analysis job after training stores), so the pages show them as for a real run."""
    from seqrec_core.jobs import run_training_job
    from seqrec_core.training import TrainConfig

    out = runs_dir / "tiny-sasrec"
    cfg = TrainConfig(epochs=2, batch_size=64, max_len=20, device="cpu", seed=0)
    run_training_job(small_dataset.sequences, "sasrec", {"hidden_size": 16, "num_layers": 1, "num_heads": 1},
                     cfg, out, small_dataset.info())
    return analyse(out, small_dataset)
