"""The Recommendations page's "What changed" section: the run in use against an older run on the same, newer log.

Offered with the older run picked when the run in use was resumed from another (``resumed_from``), else with a
picker of a second run; a toggle starts the comparison (it ranks every user twice, so opening the page never
does). It is computed by :func:`seqrec_core.what_changed.get_what_changed` and cached per pair of runs,
data and settings; the figures come from :mod:`seqrec_core.viz.plot_what_changed`. Who counts as "affected": the
planted shift's users when the session holds its truth (``PLANTED_SHIFT_KEY``: ``{"users", "items"}``, set by
whoever generated the log), else the users whose newest events include items the old run never saw.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from seqrec_core.errors import InputError
from seqrec_core.training.warm_start import resumed_from
from seqrec_core.viz.plot_what_changed import plot_entered_items, plot_newest_period_metrics, plot_shift_recovery
from seqrec_core.what_changed import (
    get_new_item_adopters,
    get_shift_recovery,
    get_user_change,
    get_what_changed,
)
from ui import state
from ui.compute import run_key
from ui.widgets import download_table

PLANTED_SHIFT_KEY = "planted_shift"  # session state: {"users": [...], "items": [...]} of a planted taste shift
NONE = "(none)"


def _older_run_choices(run, ds) -> dict[str, str]:  # noqa: ANN001 - LazyRun, Dataset
    """Label -> path of the runs that could be "before": the recorded one first, then every other run."""
    from seqrec_core.runs import list_runs

    choices: dict[str, str] = {}
    record = resumed_from(run.config)
    if record:
        for candidate in (Path(str(record.get("path") or "")), state.runs_root() / str(record.get("run") or "")):
            if str(candidate) not in ("", ".") and (candidate / "config.json").is_file():
                choices[f"{candidate.name} (resumed from)"] = str(candidate)
                break
    for info in list_runs(state.runs_root()):
        if info.path.resolve() != run.path.resolve() and str(info.path) not in choices.values():
            choices[info.name] = str(info.path)
    return choices


@st.cache_data(show_spinner=False, max_entries=8)
def _compare(old_key: str, new_key: str, fingerprint: str, k: int, exclude: bool, _old, _new,
             _data):  # noqa: ANN001, ANN202 - WhatChanged
    return get_what_changed(_old, _new, _data, k=k, exclude_seen=exclude)


def _time_label(since: int | None) -> str | None:
    return None if since is None else pd.Timestamp(since, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


def section(run, ds, user_id: str, k: int, exclude_seen: bool) -> None:  # noqa: ANN001 - LazyRun, Dataset
    """Draw "What changed since <old run>" under the page's per-user view."""
    choices = _older_run_choices(run, ds)
    record = resumed_from(run.config)
    if not choices:
        return
    labels = list(choices)
    default = labels[0] if record and labels[0].endswith("(resumed from)") else NONE
    st.divider()
    picked = st.selectbox("Compare with an older run", [NONE, *labels], index=[NONE, *labels].index(default),
                          key="what_changed_old",
                          help="The run before the update (a resumed run names its own). Both rank the same users "
                               "on this log; the old run cannot rank items it never saw.")
    if picked == NONE:
        st.caption("Pick an older run to see how each user's top-K moved, which new items entered and how both do "
                   "on the newest behaviour.")
        return
    old_path = choices[picked]
    old_name = Path(old_path).name
    st.subheader(f"What changed since {old_name}")
    # Ranking every user with both runs is a many-user computation: started by the person, not by opening the page.
    if not st.toggle("Compare the two runs", key="what_changed_go",
                     help="Ranks every user's top-K with both runs and scores both on the newest period: seconds for "
                          "a few thousand users, kept for this pair of runs afterwards."):
        st.caption(f"Switch on to see how each user's top-{k} moved between {old_name} and {run.path.name}, which "
                   "new items entered, and how both do on the behaviour since the old run's log ended.")
        return
    try:
        old_run = state.lazy_run(old_path)
        changed = _compare(run_key(old_run), run_key(run), ds.fingerprint, int(k), bool(exclude_seen),
                           state.session_run(old_path), state.session_run(run.path), ds.sequences)
    except (InputError, OSError) as err:  # OSError: the folder vanished since it was listed
        st.error(f"Cannot compare with {old_name}: {err}")
        return
    n_users = len(changed.per_user)
    moved = int((changed.per_user["n_entered"] > 0).sum())
    with_new = int((changed.per_user["n_new_entered"] > 0).sum())
    c1, c2, c3 = st.columns(3)
    c1.metric("Users whose top-K changed", f"{moved:,} of {n_users:,}")
    c2.metric("Users with a new item entering", f"{with_new:,}")
    c3.metric("New items in the log", f"{len(changed.new_items):,}", help="Items the old run never saw.")

    st.plotly_chart(plot_newest_period_metrics(changed.metrics, _time_label(changed.since)), width="stretch",
                    theme=None)
    if changed.since is None:
        st.caption(f"{old_name} does not record when its log ended, so only all users are scored.")
    else:
        st.caption("NDCG@10 / HR@10 of each run on every user's held-out last event; the newest period keeps the users "
                   f"whose last event came after {old_name}'s log ended: behaviour the old run could not know.")

    affected, label = _affected_users(changed, ds)
    if affected:
        recovery = get_shift_recovery(changed, affected["users"], affected["items"])
        st.markdown(f"**{label}:** {recovery['with_shift_items_after']:,} of {recovery['affected_users']:,} now get "
                    f"new items in their top-{changed.k} (before: {recovery['with_shift_items_before']:,}).")
        st.plotly_chart(plot_shift_recovery(recovery, label), width="stretch", theme=None)
        st.caption("Bars: affected users whose top-K holds at least one of the new items, old run and new run.")

    st.plotly_chart(plot_entered_items(changed.items), width="stretch", theme=None)
    st.caption("How many users' top-K each item entered with the new run; red bars are items the old run never saw. "
               "Hover for the counts before and after.")

    st.markdown(f"**User {user_id}: top-{changed.k} before and after**")
    try:
        st.dataframe(get_user_change(changed, user_id, ds.sequences.vocab), width="stretch", hide_index=True)
    except InputError as err:
        st.info(str(err))
    table = changed.per_user.assign(**{col: changed.per_user[col].map(", ".join)
                                       for col in ("before", "after", "entered", "left", "new_entered")})
    download_table(table, f"what_changed_{old_name}_{run.path.name}.csv",
                   label=f"Download every user's before/after top-{changed.k} (CSV)")


def _affected_users(changed, ds) -> tuple[dict | None, str]:  # noqa: ANN001 - WhatChanged, Dataset
    """The planted shift's truth when the session has it, else the log's own adopters of new items."""
    truth = st.session_state.get(PLANTED_SHIFT_KEY)
    if isinstance(truth, dict) and truth.get("users") and truth.get("items"):
        return {"users": list(truth["users"]), "items": list(truth["items"])}, "Users of the planted taste shift"
    adopters = get_new_item_adopters(ds.sequences, changed.since, changed.new_items)
    if not adopters:
        return None, ""
    return {"users": adopters, "items": changed.new_items}, "Users who took up new items since the old run"
