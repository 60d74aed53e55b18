"""Cached explanations for the Explain and Compare pages: stored ones (computed by the analysis job) read once,
live ones (any other user, target or number of steps) computed once per run key + data fingerprint + params.

Why: the page reruns top to bottom on every click; every explanation must therefore come from the store or the
cache, so moving a slider or switching tabs stays under a second. The heavy, many-user analyses (long-range
statistics, faithfulness, the planted check) are never computed here: they are stored analyses (ui.stored).
Arguments starting with an underscore are not hashed by Streamlit; the string keys before them
(``compute.run_key(run)`` = run path + weights mtime, ``ds.fingerprint``) identify the work. ``st.cache_data``
hands every caller its own copy, so the page may not mutate what the shared cached model produced anyway.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from seqrec_core.data.dataset import DEMO, Dataset


def is_demo(ds: Dataset) -> bool:
    """The built-in demo log (its planted truth can be regenerated from the seed)."""
    return ds.source is not None and ds.source.path == DEMO


def supports_explain(run, stored_methods: list[str] | None = None) -> bool:  # noqa: ANN001 - LazyRun
    """Attention and embedding-layer attributions need a sequence model with item embeddings (every neural
    family; known without the model when a stored explanation says which methods applied)."""
    if stored_methods:
        return True
    model = getattr(run, "model", None)
    return model is not None and hasattr(model, "forward_hidden") and hasattr(model, "item_emb")


@st.cache_data(show_spinner=False, max_entries=512)
def stored_attribution(folder: str, created: str, user: str, target_kind: str, method: str,  # noqa: ANN201
                       _unit, _vocab):  # noqa: ANN001 - StoredUnit, Vocab
    """One stored explanation (user, "top"/"heldout", method) read back, or None when not stored."""
    from seqrec_core.analysis.kinds_explain import load_attribution

    return load_attribution(_unit, _vocab, user, target_kind, method)


@st.cache_data(show_spinner=False, max_entries=64)
def stored_attention(folder: str, created: str, user: str, _unit):  # noqa: ANN001, ANN201 - AttentionMaps | None
    from seqrec_core.analysis.kinds_explain import load_attention

    return load_attention(_unit, user)


@st.cache_data(show_spinner=False, max_entries=16)
def stored_users(folder: str, created: str, _unit) -> list[str]:  # noqa: ANN001
    from seqrec_core.analysis.kinds_explain import stored_users as users_of

    return users_of(_unit)


@st.cache_data(show_spinner="Regenerating the demo's planted truth…", max_entries=2)  # a copy per caller
def demo_truth(seed: int):  # noqa: ANN201 - seqrec_core.data.synthetic.DemoTruth
    from seqrec_core.data.synthetic import make_demo_events

    return make_demo_events(seed=seed)[1]


@st.cache_data(show_spinner=False, max_entries=4)
def item_labels(fingerprint: str, _ds: Dataset) -> dict[str, str]:
    """Item id -> "title (id)" for every catalogue item, most frequent first (what a search box lists)."""
    seqs = _ds.sequences
    counts = np.bincount(np.concatenate(seqs.sequences) if seqs.sequences else np.zeros(0, dtype=np.int64),
                         minlength=seqs.vocab.n_items + 1)
    order = np.argsort(-counts[1:], kind="stable") + 1
    vocab = seqs.vocab
    labels = {}
    for i in order:
        item = vocab.item_id(int(i))
        title = vocab.title(item)
        labels[item] = f"{title} ({item})" if title else f"id {item}"
    return labels


@st.cache_data(show_spinner="Explaining the prediction…", max_entries=128)
def attribution(run_key: str, fingerprint: str, user: str, target: str | None, method: str, steps: int,
                _run, _ds: Dataset, model: str = "run"):  # noqa: ANN001, ANN201 - Run -> Attribution
    """``model``: "run", or the "markov" / "itemknn" baseline fit on the same log (fit per call: milliseconds on
    the demo, and the result is cached like any other explanation)."""
    from seqrec_core.explain.attribution import attribute

    return attribute(_run, _ds.sequences, user, target, method, steps=steps, holdout=True, model=model)


@st.cache_data(show_spinner="Reading the attention maps…", max_entries=32)
def attention(run_key: str, fingerprint: str, user: str, _run, _ds: Dataset):  # noqa: ANN001, ANN201
    """Attention maps over the holdout history (all but the held-out event), the one every explanation uses; a
    time-aware run also gets the history's times and, as the query time, the held-out event's (as evaluation)."""
    from seqrec_core.explain.attention import get_attention, uses_time
    from seqrec_core.explain.attribution import history_query_times

    u = _ds.sequences.vocab.user_index(user)
    seq = _ds.sequences.sequences[u]
    times = history_query_times(_ds.sequences, u, len(seq) - 1, holdout=True) if uses_time(_run.model) else None
    return get_attention(_run.model, seq[:-1], _run.max_len, times=times)


@st.cache_data(show_spinner="Re-scoring the edited history…", max_entries=256)
def counterfactual(run_key: str, fingerprint: str, user: str, edited: tuple[str, ...], target: str | None,
                   k: int, exclude_seen: bool, _run, _ds: Dataset) -> dict:
    from seqrec_core.explain.counterfactual import rescore_edited

    return rescore_edited(_run, _ds.sequences, user, list(edited), target, k=k, exclude_seen=exclude_seen)
