"""The pre-trained demo runs shipped in ``assets/``, with their stored analyses.

The repository ships a SASRec trained on the built-in demo with the defaults (``DEMO_RECIPE``: what the Train
page and ``train --data demo`` use when nothing is set; ``bench/make_demo_run.py`` retrains it), and a second one
with GPT-2's learned positions instead of rotary ones (otherwise the same), so Compare's head-to-head shows on the
demo what the position scheme does to long-range pairs. Each ships its stored analysis
(``analysis/``, made by ``python -m seqrec_core analyze``), so every page's first view after "Load demo data" is
instant. Loading the demo data installs them into the runs folder.

A shipped run is only valid for the exact demo log it was trained on: its data fingerprint must equal the
current generator's. A test checks this, so changing the generator without retraining fails CI instead of
silently showing a model of another log.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from seqrec_core.run_checks import read_json
from seqrec_core.runs import is_run_folder

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED_DEMO_RUN = ASSETS / "demo_run"
INSTALLED_NAME = "demo-sasrec-pretrained"  # the run put in use with the demo data
# Installed name -> shipped folder; the first is the one put in use.
SHIPPED_RUNS: dict[str, Path] = {INSTALLED_NAME: SHIPPED_DEMO_RUN,
                                 "demo-sasrec-learned-positions": ASSETS / "demo_run_learned"}
INSTALLED_NAMES = tuple(SHIPPED_RUNS)
# `python -m seqrec_core train --data demo` options of the shipped runs: the defaults (derived from this log:
# dropout 0.2, no item dropout, batch 8, patience 40) and a fixed seed, so training with the defaults and no time
# budget gives the same model. Until issue 15 the shipped runs needed a recipe (dropout 0.2, lr 2e-3, batch 32, 100
# epochs, patience 100): the defaults of the time stopped after 20-30 epochs, with the planted trigger found for 7%
# (batch 32) and later 59% (batch 8, dropout 0.1) of the few held-out responses in the top 10. Measured on this log
# (bench/RESULTS.md): the defaults now train all 200 epochs (validation still creeping up: 0.232 at epoch 21, 0.280
# at 183) and find the trigger for 96% of 270 (test NDCG@10 0.262; the recipe run: 90% of 291, 0.269).
DEMO_RECIPE: dict[str, object] = {"model": "sasrec", "seed": 42}
# How the shipped runs were trained and what a shorter training gives, in words for the pages (measured 2026-12-07).
DEMO_TRAINING_NOTE = ("The shipped demo runs were trained with the defaults (on this log: dropout 0.2, no item "
                      "dropout, batch 8, learning rate 0.001, early stopping after 40 epochs without gain, seed 42) "
                      "and no time budget: all 200 epochs, about 27 minutes on one CPU core, as validation kept "
                      "improving while more planted pairs were learned. The planted trigger is among IG's 3 "
                      "strongest events for 96% of the 270 held-out responses it ranks in its top 10 (test NDCG@10 "
                      "0.262). Training stopped after about 30 epochs (4 minutes on one core) learns fewer pairs: "
                      "131 in the top 10, 89% with the trigger found (test NDCG@10 0.214). Raise the time budget to "
                      "train the shipped model again here.")
# What the second shipped run changes in the recipe.
SHIPPED_OPTIONS: dict[str, dict[str, object]] = {INSTALLED_NAME: {}, "demo-sasrec-learned-positions":
                                                 {"positions": "learned"}}


def shipped_fingerprint(path: Path = SHIPPED_DEMO_RUN) -> str | None:
    """The data fingerprint the shipped run was trained on, or None when no run is shipped. Reads only its
    config (checked once per session before copying; loading the model is the app's job afterwards)."""
    if not is_run_folder(path):
        return None
    config = read_json(path / "config.json", "config")
    data = config.get("data") if isinstance(config, dict) else None
    fingerprint = data.get("fingerprint") if isinstance(data, dict) else None
    return str(fingerprint) if fingerprint else None


def install_demo_runs(runs_root: Path, demo_fingerprint: str) -> list[Path]:
    """Install every shipped demo run (:func:`install_demo_run`); the paths installed, the one to use first."""
    paths = []
    for name, source in SHIPPED_RUNS.items():
        path = install_demo_run(runs_root, demo_fingerprint, source, name)
        if path is not None:
            paths.append(path)
    return paths


def install_demo_run(runs_root: Path, demo_fingerprint: str, source: Path = SHIPPED_DEMO_RUN,
                     name: str = INSTALLED_NAME) -> Path | None:
    """Copy the shipped run to ``runs_root/name`` (once) and return its path.

    Returns None, and copies nothing, when no run is shipped or it was trained on another demo log than
    ``demo_fingerprint`` (the generator changed: retrain with bench/make_demo_run.py). An installed copy is
    reused, with any stored analysis it lacks copied from the shipped run (a copy installed before analyses were
    shipped). Copies are written to a temporary folder and renamed, so a failed copy leaves nothing."""
    if not is_run_folder(source):
        return None
    if shipped_fingerprint(source) != demo_fingerprint:
        log.warning("the shipped demo run %s does not match this demo log; retrain it with bench/make_demo_run.py",
                    source.name)
        return None
    target = Path(runs_root) / name
    if is_run_folder(target):
        _add_missing_analysis(source, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_run_folder(target):  # another session installed it at the same moment
            return target
        raise
    return target


def _add_missing_analysis(source: Path, target: Path) -> None:
    """Copy the shipped run's stored analysis units that an installed copy with the same weights lacks."""
    from seqrec_core.analysis.store import ANALYSIS_DIR, weights_id

    shipped = source / ANALYSIS_DIR
    if not shipped.is_dir() or weights_id(source) != weights_id(target):
        return
    have = target / ANALYSIS_DIR
    for unit in shipped.iterdir():
        if unit.name.startswith(".") or not unit.is_dir() or (have / unit.name).exists():
            continue
        have.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{unit.name}.copy-", dir=have))
        try:
            shutil.copytree(unit, tmp, dirs_exist_ok=True)
            os.replace(tmp, have / unit.name)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            log.warning("could not copy the stored analysis %s into %s: %s", unit.name, target, err)

