"""Small synthetic logs shaped like the public session clickstreams (no data is downloaded or copied):

- Diginetica (CIKM Cup 2016) ``train-item-views.csv``: ``session_id;user_id;item_id;timeframe;eventdate``, semicolons,
  ``user_id`` "NA" on most rows (anonymous visitors), ``timeframe`` milliseconds since the session began, and
  ``eventdate`` a date without a time of day;
- YooChoose (RecSys Challenge 2015) as the session-based papers ship it: ``SessionId<TAB>ItemId<TAB>Time``, float
  unix seconds.

Rows are shuffled within each session, so only the time columns give the right event order, which every session's
``true_order`` records.
"""
from __future__ import annotations

import numpy as np

SESSIONS = 40
KNOWN_USERS = ("501", "502", "503")  # the few logged-in visitors, each over several sessions


def diginetica_like(seed: int = 0) -> tuple[bytes, dict[str, list[str]]]:
    rng = np.random.default_rng(seed)
    lines = ["session_id;user_id;item_id;timeframe;eventdate"]
    true_order: dict[str, list[str]] = {}
    for s in range(1, SESSIONS + 1):
        user = KNOWN_USERS[s % 3] if s % 4 == 0 else "NA"  # 75% of sessions anonymous
        n = int(rng.integers(4, 9))
        items = [str(int(i)) for i in rng.choice(np.arange(100, 160), size=n, replace=False)]
        offsets = np.sort(rng.choice(np.arange(0, 900_000), size=n, replace=False))  # ms since the session began
        day = f"2016-05-{1 + s % 28:02d}"
        rows = [f"{s};{user};{item};{int(off)};{day}" for item, off in zip(items, offsets, strict=True)]
        true_order[str(s)] = items
        lines.extend(rows[k] for k in rng.permutation(n))
    return ("\n".join(lines) + "\n").encode(), true_order


def yoochoose_like(seed: int = 0) -> tuple[bytes, dict[str, list[str]]]:
    rng = np.random.default_rng(seed)
    lines = ["SessionId\tItemId\tTime"]
    true_order: dict[str, list[str]] = {}
    for s in range(1, SESSIONS + 1):
        n = int(rng.integers(4, 9))
        items = [str(int(i)) for i in rng.choice(np.arange(214_500_000, 214_500_060), size=n, replace=False)]
        start = 1_396_000_000 + 3_600 * s
        times = start + np.sort(rng.uniform(0, 1_800, size=n))
        rows = [f"{s}\t{item}\t{t:.3f}" for item, t in zip(items, times, strict=True)]
        true_order[str(s)] = items
        lines.extend(rows[k] for k in rng.permutation(n))
    return ("\n".join(lines) + "\n").encode(), true_order
