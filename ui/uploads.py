"""Cached reading of uploaded files, so widget changes on the Data page never re-parse a large log; and the
upload size limit, checked here as well as by Streamlit (``server.maxUploadSize``) so a deployment can lower it
per instance with ``SEQREC_MAX_UPLOAD_MB`` and a person gets a sentence instead of a failed request."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import streamlit as st

from seqrec_core.data.dataset import Dataset, dataset_from_events
from seqrec_core.data.limits import refuse_if_larger
from seqrec_core.data.loaders import load_events_bytes, read_raw_table
from seqrec_core.data.prep import PrepOptions
from seqrec_core.data.schema import ColumnMap, detect_columns

DEFAULT_MAX_UPLOAD_MB = 500.0  # matches .streamlit/config.toml; used when Streamlit's option cannot be read


def max_upload_mb() -> float:
    """The upload limit in MB: ``SEQREC_MAX_UPLOAD_MB`` if set, else Streamlit's ``server.maxUploadSize``."""
    value = os.environ.get("SEQREC_MAX_UPLOAD_MB")
    if value is None:
        try:
            value = st.get_option("server.maxUploadSize")
        except (KeyError, RuntimeError):
            value = DEFAULT_MAX_UPLOAD_MB
    try:
        limit = float(value)
    except (TypeError, ValueError):
        return DEFAULT_MAX_UPLOAD_MB
    return limit if limit > 0 else DEFAULT_MAX_UPLOAD_MB


def check_upload_size(name: str, size: int) -> None:
    """Refuse an upload over the limit before anything reads it (the same sentence as the CLI's file cap)."""
    refuse_if_larger(name, size, max_upload_mb(), limit_name="this dashboard's upload limit",
                     fix="load it with the CLI (`python -m seqrec_core validate --data FILE`), compress it (.gz/.zip), "
                         "or raise SEQREC_MAX_UPLOAD_MB and server.maxUploadSize")


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


@st.cache_data(show_spinner=False, max_entries=8)
def _summary(fingerprint: str, _ds: Dataset):  # noqa: ANN202 - seqrec_core.data.summary.DataSummary
    from seqrec_core.data.summary import get_data_summary

    return get_data_summary(_ds.events)


def summary(ds: Dataset):  # noqa: ANN201 - DataSummary
    """The Data page's summary of the log, computed once per dataset (returning to the page is instant)."""
    return _summary(ds.fingerprint, ds)

