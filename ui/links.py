"""Deep links: the state of a view that matters (run, user, target, method, tab) lives in the URL, so a link
opened in a fresh browser shows the same view.

Widgets that carry such state are bound to the URL (Streamlit's ``bind="query-params"``, key = parameter name);
this module gives them their defaults without overriding a value the link brought, restores the dataset and run
a link names when a session starts, and shows the link of the current view.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode, urlsplit

import streamlit as st

from ui import state

RUN_PARAM = "run"


def seed(key: str, default: object) -> None:
    """Give a URL-bound widget its starting value unless this session or the link already chose one."""
    if key not in st.session_state and key not in st.query_params:
        st.session_state[key] = default


def restore_from_link() -> None:
    """A fresh session opened from a link naming a run: put that run's data and the run itself in use.

    Unknown runs (deleted, or a link from another machine) and runs whose data cannot be opened are said with one
    sentence at the top of the page; the app then starts as usual."""
    name = st.query_params.get(RUN_PARAM)
    if not name or st.session_state.get("_link_restored") == name:
        return
    st.session_state["_link_restored"] = name
    current = st.session_state.get(state.RUN_KEY)
    if current and Path(current).name == name:
        return
    from seqrec_core.demo_run import INSTALLED_NAMES
    from seqrec_core.errors import InputError

    root = state.runs_root()
    path = root / name
    if name != Path(name).name or name.startswith("."):
        st.error(f"The link names the run '{name[:80]}', which is not a run name; open the dashboard without it.")
        return
    if not (path / "config.json").is_file() and name in INSTALLED_NAMES:
        from ui.demo import ensure_demo_run

        state.load_demo()  # installs the shipped demo runs
        ensure_demo_run()
    if not (path / "config.json").is_file():
        st.error(f"The link names the run **{name[:80]}**, which is not in this dashboard's runs folder "
                 f"({root}). Copy the run folder there (or load it as a zip on **Train**) and open the link again.")
        return
    try:
        files = state.read_run_cached(str(path), (path / "config.json").stat().st_mtime)
        ds = _open_run_data(files.config)
    except (InputError, OSError) as err:
        st.error(f"The link's run **{name}** cannot be shown: {err}")
        return
    if ds is not None:
        state.set_dataset(ds)
    state.set_run(path)


def _open_run_data(config: dict):  # noqa: ANN202 - Dataset | None
    """The dataset a run records (the demo regenerated; a file reopened with the same options)."""
    from seqrec_core.data.dataset import DEMO, DataSource

    source = (config.get("data") or {}).get("source")
    if not source:
        return None
    src = DataSource.from_json(source)
    if src.path == DEMO:
        return state.open_source(src)
    with st.spinner(f"Opening the log the run was trained on ({src.name})…"):
        return state.open_source(src)


def view_link(page: str, params: dict[str, object]) -> str:
    """The address of ``page`` (its URL path, e.g. "Explain") with ``params`` (empty values left out)."""
    base = urlsplit(st.context.url or "http://localhost:8501/")
    query = urlencode({k: str(v) for k, v in params.items() if v not in (None, "")})
    return f"{base.scheme}://{base.netloc}/{page}" + (f"?{query}" if query else "")


def link_box(page: str, params: dict[str, object]) -> None:
    """A "Copy link to this view" expander: the link in a code box with a copy button."""
    run = st.session_state.get(state.RUN_KEY)
    with st.popover("Copy link to this view", help="A link that opens this page with this run, user and view, "
                    "e.g. for a review or a ticket. It works for anyone who can open this dashboard."):
        st.code(view_link(page, {RUN_PARAM: Path(run).name if run else None, **params}), language=None,
                wrap_lines=True)
        st.caption("Copy with the button at the right of the box.")
