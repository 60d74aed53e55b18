"""Cached reading of uploaded files, so widget changes on the Data page never re-parse a large log."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from seqrec_core.data.dataset import Dataset, dataset_from_events
from seqrec_core.data.loaders import load_events_bytes, read_raw_table
from seqrec_core.data.prep import PrepOptions
from seqrec_core.data.schema import ColumnMap, detect_columns


@st.cache_data(show_spinner="Reading the file…", max_entries=4)
def read_raw(name: str, data: bytes, fmt: str) -> pd.DataFrame:
    return read_raw_table(name, data, fmt)


def detect(name: str, data: bytes, fmt: str) -> ColumnMap:
    return detect_columns(read_raw(name, data, fmt), source=name)


@st.cache_resource(show_spinner=False, max_entries=4)
def build_dataset(name: str, data: bytes, fmt: str, columns: ColumnMap, prep: PrepOptions,
                  extra_files: dict[str, bytes] | None) -> Dataset:
    """Parse, validate, clean and sequence an upload (shared across sessions: never mutate the result)."""
    events = load_events_bytes(name, data, fmt, columns, extra_files=extra_files)
    return dataset_from_events(events, name, prep=prep)


@st.cache_data(show_spinner=False, max_entries=8)
def _item_counts(fingerprint: str, _ds: Dataset) -> np.ndarray:
    return np.bincount(np.concatenate(_ds.sequences.sequences), minlength=_ds.sequences.vocab.n_items + 1)[1:]


def item_counts(ds: Dataset) -> np.ndarray:
    """Events per item (index order), for the popularity chart."""
    return _item_counts(ds.fingerprint, ds)
