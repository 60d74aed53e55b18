"""A tiny log where item i is always followed by i + 1 (mod 20), with the loop that fits a model to it and the
ranks of the true successor: shared by the loss tests (pytest puts this folder on sys.path)."""
from __future__ import annotations

import numpy as np
import torch

from seqrec_core.models.batches import batch_order, iterate_batches, training_windows


def successor_windows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training windows (max_len 12) of 60 users walking i -> i + 1 over items 1-20 from random starts."""
    rng = np.random.default_rng(0)
    seqs = [np.array([(s + k) % 20 + 1 for k in range(12)]) for s in rng.integers(0, 20, 60)]  # i -> i + 1
    return training_windows(seqs, 12)


def fit_successor(model: torch.nn.Module, epochs: int, lr: float = 1e-2) -> list[float]:
    """Adam on the successor log, batches of 32 in a seeded order per epoch; every step's loss."""
    windows, lengths, masked = successor_windows()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for epoch in range(epochs):
        for inputs, targets in iterate_batches(windows, lengths, batch_order(lengths, 32, np.random.default_rng(epoch)),
                                               masked):
            loss = model(inputs, targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


def successor_ranks(model: torch.nn.Module) -> torch.Tensor:
    """(20,) rank of the true next item after each 5-step walk (1 = top), the model in eval mode."""
    model.eval()
    contexts = torch.tensor([[(s + k) % 20 + 1 for k in range(5)] for s in range(20)])  # (20, 5)
    successor = torch.tensor([(s + 5) % 20 + 1 for s in range(20)])  # (20,)
    with torch.no_grad():
        scores = model.score(contexts)  # (20, V + 1)
    return (scores > scores[torch.arange(20), successor][:, None]).sum(1) + 1
