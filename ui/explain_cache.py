"""Cached wrappers around the explain library for the Explain page, keyed by run key + data fingerprint + params.

Why: the page reruns top to bottom on every click, and its tabs all render at once; every explanation must
therefore be computed once and then come from the cache, so moving a slider or switching tabs stays under a
second. Arguments starting with an underscore are not hashed by Streamlit; the string keys before them
(``compute.run_key(run)`` = run path + weights mtime, ``ds.fingerprint``) identify the work. ``st.cache_data``
hands every caller its own copy, so the page may not mutate what the shared cached model produced anyway.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from seqrec_core.data.dataset import DEMO, Dataset


def is_demo(ds: Dataset) -> bool:
    """The built-in demo log (its planted truth can be regenerated from the seed)."""
    return ds.source is not None and ds.source.path == DEMO


def supports_explain(run) -> bool:  # noqa: ANN001 - seqrec_core.runs.Run
    """Attention and embedding-layer attributions need a Transformer run with item embeddings."""
    model = getattr(run, "model", None)
    return model is not None and hasattr(model, "forward_hidden") and hasattr(model, "item_emb")


def _ticker(text: str) -> tuple[Callable[[int, int], None], st.delta_generator.DeltaGenerator]:
    bar = st.progress(0.0, text=text)

    def tick(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{text} {done:,}/{total:,}")

    return tick, bar


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
                _run, _ds: Dataset):  # noqa: ANN001, ANN201 - Run -> Attribution
    from seqrec_core.explain.attribution import attribute

    return attribute(_run, _ds.sequences, user, target, method, steps=steps, holdout=True)


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


@st.cache_data(show_spinner=False, max_entries=8)
def longrange(run_key: str, fingerprint: str, n_users: int, method: str, steps: int, seed: int, _run,
              _ds: Dataset):  # noqa: ANN001, ANN201 - LongRangeStats
    from seqrec_core.explain.longrange import get_longrange_stats

    tick, bar = _ticker(f"Explaining {n_users:,} predictions ({method}, {steps} steps)…")
    stats = get_longrange_stats(_run, _ds.sequences, n_users=n_users, method=method, steps=steps, seed=seed,
                                progress=tick)
    bar.empty()
    return stats


@st.cache_data(show_spinner=False, max_entries=8)
def truncation(run_key: str, fingerprint: str, exclude_seen: bool, max_users: int | None, _run,
               _ds: Dataset) -> pd.DataFrame:
    from seqrec_core.explain.longrange import get_truncation_ablation

    tick, bar = _ticker("Re-evaluating with the last k events only…")
    frame = get_truncation_ablation(_run, _ds.sequences, exclude_seen=exclude_seen, max_users=max_users,
                                    progress=tick)
    bar.empty()
    return frame


@st.cache_data(show_spinner=False, max_entries=8)
def faithfulness(run_key: str, fingerprint: str, n_users: int, max_k: int, steps: int, seed: int, _run,
                 _ds: Dataset):  # noqa: ANN001, ANN201 - Faithfulness
    from seqrec_core.explain.faithfulness import get_faithfulness

    tick, bar = _ticker(f"Deleting and inserting top events for {n_users:,} predictions…")
    result = get_faithfulness(_run, _ds.sequences, n_users=n_users, max_k=max_k, steps=steps, seed=seed,
                              progress=tick)
    bar.empty()
    return result


@st.cache_data(show_spinner="Re-scoring the edited history…", max_entries=256)
def counterfactual(run_key: str, fingerprint: str, user: str, edited: tuple[str, ...], target: str | None,
                   k: int, exclude_seen: bool, _run, _ds: Dataset) -> dict:
    from seqrec_core.explain.counterfactual import rescore_edited

    return rescore_edited(_run, _ds.sequences, user, list(edited), target, k=k, exclude_seen=exclude_seen)


@st.cache_data(show_spinner="Checking the planted trigger → response pairs…", max_entries=4)
def planted(run_key: str, fingerprint: str, demo_seed: int, steps: int, max_cases: int | None, _run,
            _ds: Dataset) -> pd.DataFrame:
    from seqrec_core.explain.planted import get_planted_pair_check

    return get_planted_pair_check(_run, _ds.sequences, demo_truth(demo_seed), steps=steps, max_cases=max_cases)
