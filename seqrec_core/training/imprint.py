"""Imprinting: a new item's output vector starts as the model's own view of the moments that led to it.

Why: a warm-started model (``warm_start``) meets items it never saw. With the family's random init their output
rows are near zero, so their scores sit at the bottom of every list, and a short update (a tenth of the old run's
epochs) cannot lift them against thousands of well-trained rows. Measured on the demo with a planted taste shift
(``bench/warm_start.py``, 300 users, 3-week shift): after two epochs none of the 76 users who moved to the new
items had one in their top 10, while a full retrain had 73, and newest-period NDCG@10 trailed the retrain by 0.04.
With imprinting, 44-48 of the 76 at the run's learning rate. At the update's default 5x rate
(``warm_start.RESUME_LR_FACTOR``) the family's init catches up within five epochs (72-73 of 76 either way, NDCG@10
0.2457 vs 0.2487); imprinting still places new items sensibly from the first step, before any training.

The fix is the one used for new classes in few-shot classification ("weight imprinting", Qi et al., CVPR 2018):
the scoring rule is ``score = h @ w_item``, so an item should score high exactly where the model's hidden state
``h`` looks like the states that preceded it. For each new item, the hidden states at the training events right
before its occurrences (the prediction point of the prefix, as served) are averaged, and the item's output row
becomes that direction, scaled to the median norm of the kept items' rows so it competes on equal terms. Only
the training split's occurrences are read (never a validation or test target), at most ``MAX_PREFIXES`` per item
(seeded sample), so the cost is a few batched forward passes. Training then refines the rows like any other.

Not imprinted: items with no training occurrence after a first event (nothing to read), and models whose output
table is computed rather than stored (text-aware models: their new items already get vectors from their titles).
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from seqrec_core.data.sequences import SequenceData

log = logging.getLogger(__name__)

MAX_PREFIXES = 64  # occurrences read per new item: enough for a stable mean, bounded cost on huge logs
BATCH = 256


def _prefixes(data: SequenceData, new_items: np.ndarray, seed: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """(user, position) of each sampled training occurrence of a new item at position >= 1, and its item."""
    wanted = np.zeros(data.vocab.n_items + 1, dtype=bool)
    wanted[new_items] = True
    found: dict[int, list[tuple[int, int]]] = {}
    for u in range(data.n_users):
        seq = data.train_sequence(u)
        for pos in np.flatnonzero(wanted[seq[1:]]) + 1:
            found.setdefault(int(seq[pos]), []).append((u, int(pos)))
    rng = np.random.default_rng(seed)
    places: list[tuple[int, int]] = []
    owners: list[int] = []
    for item in sorted(found):
        spots = found[item]
        if len(spots) > MAX_PREFIXES:
            spots = [spots[i] for i in np.sort(rng.choice(len(spots), MAX_PREFIXES, replace=False))]
        places += spots
        owners += [item] * len(spots)
    return places, np.asarray(owners, dtype=np.int64)


def _prefix_states(model: nn.Module, data: SequenceData, places: list[tuple[int, int]]) -> torch.Tensor:
    """(P, D) the hidden state at the prediction point after each prefix ``sequence[:pos]``; a time-aware model
    gets the events' times and the new item's own time as the request time."""
    from seqrec_core.models.neural import prediction_states

    prefixes = [data.sequences[u][:pos] for u, pos in places]
    times = [data.times[u][:pos + 1] for u, pos in places] if getattr(model, "uses_time", False) else None
    return prediction_states(model, prefixes, times, BATCH)


def imprint_new_items(model: nn.Module, data: SequenceData, new_items: np.ndarray, kept_items: np.ndarray,
                      seed: int = 42) -> int:
    """Set the output rows of ``new_items`` (indices into ``data``'s catalogue) from the hidden states before
    their training occurrences; returns how many items were imprinted. ``kept_items`` (the old run's items,
    new indices) give the row norm to match. The model is left in the train/eval mode it was in."""
    table = model.output_weights() if hasattr(model, "output_weights") else None
    if not isinstance(table, nn.Parameter) or not hasattr(model, "forward_hidden") or len(new_items) == 0:
        return 0  # computed table (text-aware) or no hidden state: the family's own init stays
    places, owners = _prefixes(data, np.asarray(new_items, dtype=np.int64), seed)
    if not places:
        return 0
    was_training = model.training
    model.eval()
    try:
        states = _prefix_states(model, data, places)  # (P, D)
    finally:
        model.train(was_training)
    with torch.no_grad():
        items, slot = np.unique(owners, return_inverse=True)
        sums = torch.zeros(len(items), states.shape[1], device=states.device)  # (I, D)
        sums.index_add_(0, torch.as_tensor(slot, device=states.device), states)
        direction = nn.functional.normalize(sums, dim=1)  # (I, D)
        kept = torch.as_tensor(np.asarray(kept_items, dtype=np.int64), device=table.device)
        scale = table[kept].norm(dim=1).median() if len(kept) else torch.tensor(1.0, device=table.device)
        table[torch.as_tensor(items, device=table.device)] = (direction * scale).to(table.dtype)
    log.info("imprinted %d new items from %d prefixes", len(items), len(places))
    return int(len(items))


__all__ = ["MAX_PREFIXES", "imprint_new_items"]
