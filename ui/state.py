"""Per-person dashboard state (the dataset and run in use) and the cached loaders behind it.

Everything here is Streamlit glue; the work itself is in seqrec_core. Objects returned by the cached loaders are
shared between sessions (Streamlit runs each session's script in its own thread of one process), so pages never
get them directly: a run in use is this session's own copy (:func:`session_run`; explaining flips a model to eager
attention, moving it to a GPU mutates it), and a dataset in use gets its own event table (pandas copy-on-write:
a column added by one session never shows in another's).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import streamlit as st

from seqrec_core.data.dataset import DEMO, Dataset, DataSource, open_dataset
from seqrec_core.errors import InputError

DATASET_KEY = "dataset"
RUN_KEY = "run_path"
SESSION_RUNS_KEY = "_session_runs"  # "path@mtime" -> this session's private copy of that run
MAX_SESSION_RUNS = 12  # copies a session keeps, least recently used dropped (Compare holds every run on the data)


@st.cache_resource(show_spinner="Generating the demo log…")
def _demo_dataset(seed: int) -> Dataset:
    return open_dataset(DataSource(path=DEMO, demo_seed=seed))


def load_demo(seed: int = 0) -> Dataset:
    """Put the built-in demo log in use for this session."""
    ds = _demo_dataset(seed)
    set_dataset(ds)
    return ds


@st.cache_resource(show_spinner=False, max_entries=4)
def _opened_source(source_json: str) -> Dataset:
    return open_dataset(DataSource.from_json(json.loads(source_json)))


def open_source(source: DataSource) -> Dataset:
    """The log a run records, opened once per process (shared: callers put it in use with :func:`set_dataset`)."""
    if source.path == DEMO:
        return _demo_dataset(source.demo_seed)
    return _opened_source(json.dumps(source.to_json(), sort_keys=True))


def set_dataset(ds: Dataset) -> None:
    """Put ``ds`` in use for this session, as its own shallow copy (the cached original stays untouched)."""
    previous = st.session_state.get(DATASET_KEY)
    ds = dataclasses.replace(ds, events=ds.events.copy(deep=False))  # copy-on-write: free until someone writes
    st.session_state[DATASET_KEY] = ds
    if previous is None or previous.fingerprint != ds.fingerprint:
        # A run trained on other data cannot be evaluated on this one.
        st.session_state.pop(RUN_KEY, None)


def get_dataset() -> Dataset | None:
    if st.session_state.get(DATASET_KEY) is None and os.environ.get("SEQREC_AUTOLOAD_DEMO") == "1":
        load_demo()
    return st.session_state.get(DATASET_KEY)


def require_dataset() -> Dataset:
    """The dataset in use, or a pointer to the Data page and a stop."""
    ds = get_dataset()
    if ds is None:
        st.info("No data loaded yet. Load the demo on **Home** or bring your own log on **Data** first.")
        st.page_link("app_pages/1_Data.py", label="Go to Data")
        st.stop()
    return ds


def runs_root() -> Path:
    from seqrec_core.runs import runs_root as _root

    return _root()


@st.cache_resource(show_spinner=False, max_entries=32)
def read_run_cached(path: str, mtime: float):  # noqa: ANN202 - returns seqrec_core.runs.RunFiles
    """A run's JSON files (config, vocabulary, metrics, history), read once per config modification time; shared
    by every session and never changed (pages get a :class:`LazyRun` around it)."""
    from seqrec_core.runs import read_run_files

    return read_run_files(path)


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def load_run_cached(path: str, mtime: float):  # noqa: ANN202 - returns seqrec_core.runs.Run
    """The run as read from disk, shared by every session: never hand it to a page, copy it (session_run)."""
    from seqrec_core.runs import load_run

    return load_run(path, device="cpu", files=read_run_cached(path, mtime))


class LazyRun:
    """The run in use as pages see it: config, vocabulary, metrics and history at once (JSON only), the model
    only when something live needs it (:attr:`model`, :meth:`scorer`).

    Why: building a model imports transformers, seconds on a fresh server; the pages' first views show stored
    analyses and need no model at all. The model is this session's own copy (:func:`session_run`)."""

    def __init__(self, files) -> None:  # noqa: ANN001 - seqrec_core.runs.RunFiles
        self.path = Path(files.path)
        self.config = copy.deepcopy(files.config)  # this session's own; the vocabulary (large, read-only) is shared
        self.vocab = files.vocab
        self.metrics = copy.deepcopy(files.metrics)
        self.history = copy.deepcopy(files.history)
        self.warnings = list(files.warnings)
        self.family = files.family
        self.max_len = files.max_len

    @property
    def model(self):  # noqa: ANN201 - torch.nn.Module
        return session_run(self.path).model

    def scorer(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - seqrec_core.models.base.Scorer
        return session_run(self.path).scorer(*args, **kwargs)


def lazy_run(path: str | Path) -> LazyRun:
    """The run at ``path`` without its model (read once per config modification time)."""
    return LazyRun(read_run_cached(str(path), (Path(path) / "config.json").stat().st_mtime))


def private_copy(run):  # noqa: ANN001, ANN201 - Run -> Run
    """A run whose model, config, metrics and history this session may change without touching others'.

    The vocabulary (read-only, possibly large) stays shared."""
    return dataclasses.replace(run, model=copy.deepcopy(run.model), config=copy.deepcopy(run.config),
                               metrics=copy.deepcopy(run.metrics), history=copy.deepcopy(run.history),
                               warnings=list(run.warnings))


def session_run(path: str | Path):  # noqa: ANN201 - seqrec_core.runs.Run
    """This session's own copy of the run at ``path``: read from disk once per process (path + config mtime),
    copied once per session. Raises InputError / OSError like loading does."""
    path = str(path)
    mtime = (Path(path) / "config.json").stat().st_mtime
    key = f"{path}@{mtime}"
    own: dict = st.session_state.setdefault(SESSION_RUNS_KEY, {})
    run = own.pop(key, None)  # re-inserted below: the dict's order is least recently used first
    if run is None:
        run = private_copy(load_run_cached(path, mtime))
        for stale in [k for k in own if k.rsplit("@", 1)[0] == path]:  # an older version of the same folder
            own.pop(stale)
        while len(own) >= MAX_SESSION_RUNS:
            own.pop(next(iter(own)))
    own[key] = run
    return run


def set_run(path: str | Path | None) -> None:
    if path is None:
        st.session_state.pop(RUN_KEY, None)
    else:
        st.session_state[RUN_KEY] = str(path)


def get_run() -> LazyRun | None:
    """The run in use (its JSON read once per path and modification time; the model when first needed), or None."""
    path = st.session_state.get(RUN_KEY)
    if not path:
        return None
    config = Path(path) / "config.json"
    if not config.exists():
        st.session_state.pop(RUN_KEY, None)
        return None
    try:
        run = lazy_run(path)
        if not _proven(path, config.stat().st_mtime):
            session_run(path)  # nothing shows this model ever loaded: load it now, so a broken one says why here
        return run
    except FileNotFoundError:  # removed since the check above
        st.session_state.pop(RUN_KEY, None)
        return None
    except InputError as err:
        st.error(f"Run folder '{path}' cannot be used: {err}")
        st.session_state.pop(RUN_KEY, None)
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def _proven(path: str, mtime: float) -> bool:
    from seqrec_core.analysis.store import proven_loadable

    return proven_loadable(path)


def first_loadable(paths: list[str]) -> str | None:
    """The first run folder (newest first) that loads, weights included; the sidebar's default, so one stale run
    (saved by an older layout of its family) does not put an error box on every page. Picking it explicitly still
    shows why. Only used when no run is chosen yet (the demo and links choose theirs), so the model load it costs
    is paid once."""
    for path in paths:
        config = Path(path) / "config.json"
        try:
            load_run_cached(path, config.stat().st_mtime)
        except (InputError, OSError):
            continue
        return path
    return None


def require_run(ds: Dataset) -> LazyRun:
    """The run in use, trained on the dataset in use, or a pointer to the Train page and a stop."""
    run = get_run()
    if run is None:
        st.info("No model in use yet. Train one (or load a saved run) on **Train** first.")
        st.page_link("app_pages/3_Train.py", label="Go to Train")
        st.stop()
    expected = (run.config.get("data") or {}).get("fingerprint")
    if expected and expected != ds.fingerprint:
        st.warning(f"The run in use ({run.path.name}) was trained on other data than **{ds.name}**. "
                   "Pick a run for this dataset on **Train**, or load its data.")
        st.page_link("app_pages/3_Train.py", label="Go to Train")
        st.stop()
    return run

