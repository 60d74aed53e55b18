"""The small interface every recommender family implements, neural or not.

Evaluation, recommendation and explanation only ever call :class:`Scorer.score_histories`, so a baseline and
a Transformer are measured under exactly the same protocol.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


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
