"""The small interface every recommender family implements, neural or not.

Evaluation, recommendation and explanation only ever call :class:`Scorer.score_histories`, so a baseline and
a Transformer are measured under exactly the same protocol.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # the protocol below names torch types; the library's torch-free paths import this module
    import torch

from seqrec_core.errors import InputError


@runtime_checkable
class Scorer(Protocol):
    """Anything that ranks the catalogue for a batch of histories."""

    name: str

    def score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        """Scores for the next item after each history.

        histories: B arrays of item indices (1..n_items, chronological, any length >= 1).
        Returns a float32 array (B, n_items + 1); column 0 (padding) is -inf. Higher = more likely.
        """
        ...


class ItemTables(Protocol):
    """The two item tables of every neural family (SASRec, BERT4Rec, GRU4Rec, LSTM, LSI).

    They are one matrix when the output layer is tied and two when it is not (SASRec with bce/gbce), so code
    that scores must ask for the output layer and code that maps inputs for the input table, never
    ``item_emb.weight`` for both."""

    def output_weights(self) -> torch.Tensor:
        """(n_items + 1, D) matrix the scores come from: ``score = hidden @ output_weights().T``."""
        ...

    def item_embeddings(self) -> torch.Tensor:
        """(n_items + 1, D) INPUT item vectors (what the model reads for a history; the embeddings page maps)."""
        ...


def uses_time(scorer_or_model: object) -> bool:
    """Whether a scorer or model needs each history's times plus the request time (a time-aware SASRec and
    scorers around one); everything else is called exactly as :class:`Scorer` says."""
    return bool(getattr(scorer_or_model, "uses_time", False))


# ------------------------------------------------------------------ config validation shared by the families
def check_int(name: str, value: object, low: int, high: int) -> None:
    """One-line InputError unless ``value`` is a whole number in [low, high] (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name} {value!r} is out of range; use a whole number from {low} to {high}")


def check_dropout(value: object, name: str = "dropout") -> None:
    """One-line InputError unless ``value`` is a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InputError(f"{name} {value!r} is out of range; use a number in [0, 1), e.g. 0.3")
