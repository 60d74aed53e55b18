"""Every field of a run's JSON files, mutated: load_run either works or refuses in one InputError line.

A run is a file people share, and its config.json, metrics.json and vocab.json are read by the loader, the CLI and
every page. A field of the wrong type or range (``prep.k_core: "abc"``, ``demo_seed: -1``) surfaced as a
traceback far from the file it came from. Here a valid run's files are mutated field by field (wrong types,
negative, huge, NaN, null, nested junk, missing) from a fixed seed; each mutated run must load or be refused
with one line, and nothing else may escape.
"""
from __future__ import annotations

import json
import logging
import math
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_runs_untrusted import data  # noqa: E402,F401 - the shared tiny log fixture

from seqrec_core.data.dataset import DataSource  # noqa: E402
from seqrec_core.data.prep import prepare_events  # noqa: E402
from seqrec_core.data.synthetic import make_demo_events  # noqa: E402
from seqrec_core.errors import InputError  # noqa: E402
from seqrec_core.models import build_model  # noqa: E402
from seqrec_core.runs import load_run, save_run  # noqa: E402
from seqrec_core.training import TrainConfig  # noqa: E402

MISSING = object()
JUNK = ["abc", "", -1, 0, 10**30, -(10**30), 1.5, math.nan, math.inf, None, True, [[[]]], {"a": {"b": [1]}},
        "[" * 200]


@pytest.fixture(scope="module")
def valid_run(tmp_path_factory: pytest.TempPathFactory, data) -> Path:  # noqa: F811 - the fixture imported above
    """A tiny run whose config holds every section a trained run records (model, train, data with its source)."""
    import torch

    torch.manual_seed(0)
    model = build_model("sasrec", data.vocab.n_items, hidden_size=8, num_layers=1, num_heads=1, max_len=6).eval()
    source = DataSource(path="demo", demo_seed=3).to_json()
    config = {"train": TrainConfig(max_len=6, device="cpu").to_dict(), "device": "cpu", "train_seconds": 1.5,
              "stopped_reason": "converged", "best_epoch": 2, "epochs_trained": 3, "exclude_seen": False,
              "versions": {"seqrec_core": "0"},
              "data": {"name": "tiny", "fingerprint": data.fingerprint, "users": 20, "items": 12, "events": 120,
                       "source": source}}
    return save_run(tmp_path_factory.mktemp("fuzz") / "run", model=model, config=config, vocab=data.vocab,
                    metrics={"val": {"NDCG@10": 0.1}, "test": {"NDCG@10": 0.2, "HR@10": 0.3}, "exclude_seen": False},
                    history=[{"epoch": 1, "loss": 2.0}])


def paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document a mutation can hit: each key of each object and the first list element."""
    found = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            found.append(prefix + (key,))
            found += paths(value, prefix + (key,))
    elif isinstance(obj, list) and obj:
        found.append(prefix + (0,))
        found += paths(obj[0], prefix + (0,))
    return found


def mutated(doc: object, where: tuple, value: object) -> object:
    copy = json.loads(json.dumps(doc))
    parent = copy
    for step in where[:-1]:
        parent = parent[step]
    if value is MISSING:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    return copy


def cases(original: dict[str, object], rng: random.Random, per_file: dict[str, int]) -> list[tuple[str, tuple, object]]:
    """(file, path, value) triples: a seeded sample of every path x every junk value (or removal), per file."""
    chosen = []
    for name, count in per_file.items():
        every = [(name, where, value) for where in paths(original[name]) for value in [*JUNK, MISSING]]
        chosen += rng.sample(every, min(count, len(every)))
    return chosen


def use_like_the_commands(run, events) -> None:  # noqa: ANN001 - a loaded Run, a tiny event table
    """What the commands and pages do next with a run they loaded: read its shape and metrics, and reopen its
    recorded data source (here on a tiny table: the source's cleaning options and demo seed, not its file)."""
    assert run.max_len >= 1 and isinstance(run.family, str)
    for part, table in run.metrics.items():  # pages format every stored metric as a number
        assert part == "exclude_seen" or all(isinstance(v, (int, float)) for v in table.values())
    source = (run.config.get("data") or {}).get("source")
    if source is not None:
        reopened = DataSource.from_json(source)
        try:
            prepare_events(events, reopened.prep)
        except InputError:
            pass  # options that leave nothing of the tiny table: refused in a line, as for any log
        np.random.default_rng(reopened.demo_seed)  # what the demo generator seeds with


def test_every_field_mutated_loads_or_is_refused_in_one_line(valid_run: Path, tmp_path: Path) -> None:
    """300 seeded mutations of config.json, vocab.json and metrics.json; each loads or is one InputError."""
    names = ("config.json", "vocab.json", "metrics.json")
    original = {name: json.loads((valid_run / name).read_text()) for name in names}
    folder = tmp_path / "run"
    shutil.copytree(valid_run, folder)
    events = make_demo_events(n_users=20, events_per_user=5, n_items=40, seed=0)[0]
    rng = random.Random(0)
    escaped, outcomes = [], {"loaded": 0, "refused": 0}
    logging.disable(logging.WARNING)  # a loaded run logs the unknown keys it ignores; 300 of those are noise
    try:
        for name, where, value in cases(original, rng, {"config.json": 200, "vocab.json": 60, "metrics.json": 40}):
            for other in names:  # this case's mutation, the other files as saved
                doc = mutated(original[other], where, value) if other == name else original[other]
                (folder / other).write_text(json.dumps(doc))  # NaN/Infinity as Python's json writes them
            try:
                run = load_run(folder)
            except InputError as err:
                outcomes["refused"] += 1
                if "\n" in str(err) or not str(err):
                    escaped.append((name, where, repr(value)[:30], "a refusal of more than one line"))
            except Exception as err:  # noqa: BLE001 - the point: list every case that escapes, not the first
                escaped.append((name, where, repr(value)[:30], f"{type(err).__name__}: {str(err)[:120]}"))
            else:
                outcomes["loaded"] += 1
                try:
                    use_like_the_commands(run, events)
                except Exception as err:  # noqa: BLE001 - an accepted run must be usable, not fail later
                    escaped.append((name, where, repr(value)[:30], f"accepted, then {type(err).__name__}: {err}"))
    finally:
        logging.disable(logging.NOTSET)
    assert escaped == [], escaped[:10]
    assert outcomes["refused"] > 150 and outcomes["loaded"] > 50, outcomes  # both sides were exercised


@pytest.mark.parametrize("where, value, words", [
    (("data", "source", "prep", "k_core"), "abc", "'data.source.prep.k_core' is str 'abc'; it must be a whole number"),
    (("data", "source", "demo_seed"), -1, "'data.source.demo_seed' is int '-1'; it must be a whole number >= 0"),
    (("data", "source", "demo_seed"), math.inf, "'data.source' is malformed"),
    (("data", "source", "format"), "xls", "'data.source.format' is str 'xls'; it must be one of auto, csv"),
    (("data", "source", "columns", "user"), 5, "'data.source.columns.user' is int '5'; it must be a column name"),
    (("data", "source", "prep", "min_rating"), math.nan, "source.prep.min_rating' is float 'nan'; it must be a finite"),
    (("data", "source", "path"), "", "'data.source.path' is str ''"),
    (("data", "users"), -3, "'data.users' is int '-3'; it must be a whole number >= 0"),
    (("train", "lr"), "fast", "training option lr='fast' is invalid"),
    (("model", "hidden_size"), 4096, "model-size limit"),
])
def test_the_reviewers_config_probes_name_the_field(valid_run: Path, tmp_path: Path, where: tuple, value: object,
                                                    words: str) -> None:
    folder = tmp_path / "run"
    shutil.copytree(valid_run, folder)
    config = json.loads((folder / "config.json").read_text())
    if where == ("model", "hidden_size"):  # 4096 wide and 48 deep: each field in range, together 48 GB
        config["model"]["num_layers"] = 48
    (folder / "config.json").write_text(json.dumps(mutated(config, where, value)))
    with pytest.raises(InputError) as caught:
        load_run(folder)
    assert words in str(caught.value) and str(caught.value).startswith(str(folder / "config.json"))
