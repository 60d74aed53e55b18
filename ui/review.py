"""The review report button: one self-contained HTML file (seqrec_core.report) of the run in use, with the users
a person added on Explain, built from the run's stored analyses when the button is clicked (on its own thread,
not inside a page run)."""
from __future__ import annotations

import streamlit as st

from seqrec_core.data.dataset import Dataset

REVIEW_KEY = "review_users"


def review_users() -> list[str]:
    return list(st.session_state.get(REVIEW_KEY, []))


def download_review(run, ds: Dataset, key: str) -> None:  # noqa: ANN001 - LazyRun
    """ "Download review (HTML)": the run's metrics, long-range statistics, faithfulness and, for the users added
    on Explain (else a few the data picks), timelines, top-K, attributions, attention and a plain sentence."""
    users = review_users()

    def build() -> str:  # runs when clicked, on a thread of its own
        from seqrec_core.report import build_review

        return build_review(run.path, ds, users or None, compute_missing=False).html

    st.download_button("Download review (HTML)", data=build, file_name=f"review-{run.path.name}.html",
                       mime="text/html", key=f"review_{key}",
                       help="One HTML file that opens offline in any browser: data summary, model card, metrics "
                            "against the baselines, how far back the model looks, faithfulness, and "
                            + (f"the {len(users)} user(s) you added on Explain" if users else
                               "a few example users (add your own on Explain)")
                            + ". Built from the run's stored analyses in a few seconds.")
