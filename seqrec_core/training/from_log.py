"""Defaults that depend on the log: what a person who sets nothing trains with (issue 15).

SASRec's regularisers were chosen on Amazon Beauty, a sparse log (13 training events per item, histories of 8.9):
dropout 0.4 and item dropout 0.2 lifted it most. On a dense log with long histories the same settings stop the
model from learning what lies far back. On a planted log (trigger -> response pairs 20-40 events apart, ~220
events per item, same budget): with dropout 0.4, 3-4% of the held-out responses reached the top 10, whatever the
learning rate; with 0.2, 16-24%; with 0.1 and no item dropout, 82-91%, and IG put the trigger in its top 3 for
97-99% of those. Item dropout blanks the trigger in a fifth of the training windows and scatters IG's attribution
(0.36 -> 0.67 with it off, at dropout 0.2). bench/RESULTS.md has the table (``bench/longrange_defaults.py``).

So the regularisers follow the log's density: training events per catalogue item, the amount of evidence per
item vector. At or below Beauty's (``SPARSE_EVENTS_PER_ITEM``) the Beauty settings, at or above each option's
dense end (``DENSE_AT``) the dense ones, in between interpolated on a log scale. Dropout reaches 0.1 only at
250 events per item: the demo (120) finds its planted pairs with 0.2 (IG's top 3 holds the trigger for 89% of the
held-out responses in the top 10) and not with 0.1 (59%), while the planted logs (220-430) learn them far faster
with 0.1 (2,000-user log: 86% in the top 10 at epoch 13 against 16% at epoch 19 with 0.2). Item dropout and the
batch reach their dense values at 100 (measured there). Only options the person left unset are filled in; the run
stores the values used, so the choice is visible and reproducible.

The batch follows the density too: on the same 2,000-user planted log, one core, the held-out responses
started to rise above their popularity rank after ~175 s with batch 32 (56% in the top 10 at 256 s), ~110 s with
16 (55% at 170 s) and ~70 s with 8 (75% at 130 s, 84% at 153 s): the pairs are found by the number of optimiser
steps, not of epochs, and smaller batches buy steps cheaply on a CPU. On Beauty the batch of 128 was measured
best, so sparse logs keep it (``batch_cap_for``).

So does early stopping's patience: on the demo, validation NDCG@10 creeps up for a hundred epochs as more planted
pairs are learned, with 17 and then 35 epochs between gains (0.2324 at epoch 21, 0.2348 at 38, 0.245 at 73, 0.257
at 101, 0.280 at 183 of 200), so patience 10 stopped at epoch 31 with half the pairs (131 held-out responses in
the top 10 against 270; test NDCG@10 0.214 against 0.262). Beauty keeps 10, measured there (``patience_for``).
"""
from __future__ import annotations

import math

import numpy as np

from seqrec_core.data.sequences import MIN_EVAL_EVENTS, SequenceData

SPARSE_EVENTS_PER_ITEM = 16.0  # Amazon Beauty: 12.7 training events per item (16.4 counting val and test events)
DENSE_EVENTS_PER_ITEM = 100.0  # where item dropout and the batch reach their dense values (the demo has 120)
SPARSE = {"dropout": 0.4, "item_dropout": 0.2}  # measured best on Beauty (bench/RESULTS.md)
DENSE = {"dropout": 0.1, "item_dropout": 0.0}  # measured best on planted long-range logs (issue 15)
# The density from which each option takes its DENSE value (see the module docstring for dropout's 250).
DENSE_AT = {"dropout": 250.0, "item_dropout": DENSE_EVENTS_PER_ITEM}
SPARSE_BATCH_CAP, DENSE_BATCH_CAP = 128, 8  # the most windows a step at those two densities (powers of two)
SPARSE_PATIENCE, DENSE_PATIENCE = 10, 40  # validations without gain before stopping, at those two densities
FAMILIES = ("sasrec",)  # the families whose defaults were chosen on Beauty and follow the log


def events_per_item(data: SequenceData) -> float:
    """Training events (each user's events before the validation and test ones) per catalogue item."""
    lengths = data.lengths()
    n_train = int(np.where(lengths >= MIN_EVAL_EVENTS, lengths - 2, lengths).sum())  # as data.train_sequence
    return n_train / max(data.vocab.n_items, 1)


def regularisation_for(density: float) -> dict[str, float]:
    """Dropout and item dropout for a log with ``density`` training events per item (rounded to 0.05)."""
    out = {}
    for name in SPARSE:
        share = _dense_share(density, DENSE_AT[name])
        out[name] = round(round((SPARSE[name] + share * (DENSE[name] - SPARSE[name])) / 0.05) * 0.05, 2)
    return out


def _dense_share(density: float, dense_at: float = DENSE_EVENTS_PER_ITEM) -> float:
    """0 at or below Beauty's density, 1 at or above ``dense_at``, log-linear in between."""
    low, high = math.log2(SPARSE_EVENTS_PER_ITEM), math.log2(dense_at)
    return min(1.0, max(0.0, (math.log2(max(density, 1e-9)) - low) / (high - low)))


def batch_cap_for(density: float) -> int:
    """The largest batch (windows a step) an automatic batch may have on a log of ``density``: 128 on sparse
    logs (Beauty's measured best), 8 on dense ones, a power of two in between."""
    low, high = math.log2(SPARSE_BATCH_CAP), math.log2(DENSE_BATCH_CAP)
    return int(2 ** round(low + _dense_share(density) * (high - low)))


def batch_cap_from_log(family: str, data: SequenceData) -> int | None:
    """:func:`batch_cap_for` this log when ``family``'s defaults follow the log, else None (no cap)."""
    return batch_cap_for(events_per_item(data)) if family in FAMILIES else None


def patience_for(density: float) -> int:
    """Early stopping's patience on a log of ``density``: 10 on sparse logs, 40 on dense ones (rounded to 5)."""
    share = _dense_share(density)
    return int(round((SPARSE_PATIENCE + share * (DENSE_PATIENCE - SPARSE_PATIENCE)) / 5) * 5)


def patience_from_log(family: str, data: SequenceData) -> int:
    """:func:`patience_for` this log when ``family``'s defaults follow the log, else the sparse-log 10."""
    return patience_for(events_per_item(data)) if family in FAMILIES else SPARSE_PATIENCE


def model_options_from_log(family: str, data: SequenceData, options: dict) -> dict:
    """``options`` with the log-dependent defaults of ``family`` added for every one the person left unset."""
    if family not in FAMILIES:
        return dict(options)
    derived = regularisation_for(events_per_item(data))
    return {**options, **{k: v for k, v in derived.items() if options.get(k) is None}}
