"""Small Streamlit widgets every page uses the same way."""
from __future__ import annotations

import pandas as pd
import streamlit as st


def download_table(frame: pd.DataFrame, file_name: str, label: str = "Download table (CSV)") -> None:
    """A CSV download button for a table; the key is derived from the file name so pages can have several.

    The CSV is written when the button is clicked (Streamlit calls the function on a thread of its own), not on
    every page run: the Data page's 100,000 cleaned events took 1.3 s of each of its runs to turn into CSV."""
    def as_csv() -> bytes:
        return frame.to_csv(index=False).encode("utf-8")

    st.download_button(label, as_csv, file_name=file_name, mime="text/csv", key=f"download_{file_name}",
                       on_click="ignore")


def context_reach_box(reach: dict | None) -> None:
    """How far back the model looks (seqrec_core.analysis.reach): a warning, with what to try, when it uses only
    recent events although the histories are long; otherwise a plain note."""
    if not reach:
        return
    text = f"**How far back the model looks.** {reach['message']}"
    if reach.get("verdict") == "recent_only":
        st.warning(text + (f"  \n{reach['advice']}" if reach.get("advice") else ""))
    else:
        st.info(text + (f"  \n{reach['advice']}" if reach.get("advice") else ""))


def verdict_box(verdict) -> None:  # noqa: ANN001 - seqrec_core.training.verdict.TrainingVerdict | None
    """A finished training's verdict: green only when it converged and beats the baselines; otherwise a warning
    that says what held it back and what would help."""
    if verdict is None:
        return
    text = f"**Training verdict: {verdict.headline}.** {verdict.detail}"
    (st.success if verdict.ok else st.warning)(text)
