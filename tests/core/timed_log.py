"""A tiny log whose items depend on the hour, and a tiny time-aware run trained on it, shared by the time-aware tests
(pytest puts this folder on sys.path)."""
from __future__ import annotations

import numpy as np
import pandas as pd

T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC, a Tuesday


def hourly_events(n_users: int = 80, seed: int = 0, with_time: bool = True,
                  events_per_user: tuple[int, int] = (8, 16)) -> pd.DataFrame:
    """Users whose next item depends on the hour: morning events pick items 1-10, evening events 11-20.
    ``with_time=False`` keeps only the order (timestamps 0, 1, 2, ... per user)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        t = T0 + int(rng.integers(0, 86_400))
        for k in range(int(rng.integers(*events_per_user))):
            t += int(rng.integers(600, 40_000))
            item = int(rng.integers(1, 11)) if (t // 3600) % 24 < 12 else int(rng.integers(11, 21))
            rows.append((f"u{u:03d}", f"i{item:02d}", t if with_time else k))
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    if with_time:
        ev["timestamp"] = pd.to_datetime(ev["timestamp"], unit="s", utc=True)
    return ev


def train_timed_run(data, out, *, epochs: int, max_len: int, num_heads: int):  # noqa: ANN001, ANN201
    """A tiny time-aware SASRec (hidden 16, one layer) trained on ``data`` into ``out`` and loaded back (a Run)."""
    from seqrec_core.jobs import run_training_job
    from seqrec_core.runs import load_run
    from seqrec_core.training import TrainConfig

    cfg = TrainConfig(epochs=epochs, batch_size=32, max_len=max_len, device="cpu", seed=0, lr=5e-3)
    run_training_job(data, "sasrec", {"hidden_size": 16, "num_layers": 1, "num_heads": num_heads,
                                      "time_features": True}, cfg, out, {"name": "test"})
    return load_run(out)
