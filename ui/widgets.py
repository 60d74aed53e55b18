"""Small Streamlit widgets every page uses the same way."""
from __future__ import annotations

import pandas as pd
import streamlit as st


def download_table(frame: pd.DataFrame, file_name: str, label: str = "Download table (CSV)") -> None:
    """A CSV download button for a table; the key is derived from the file name so pages can have several."""
    st.download_button(label, frame.to_csv(index=False).encode("utf-8"), file_name=file_name, mime="text/csv",
                       key=f"download_{file_name}")
