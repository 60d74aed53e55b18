"""What a page or the review report asks of the store: the stored result for exactly these settings, and whether
it still belongs to this run's weights, this data and this code (fresh), belongs to something else (stale), or
was never computed (missing)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from seqrec_core.analysis.registry import TABLE_COLUMNS, kind
from seqrec_core.analysis.store import StoredUnit, read_unit, weights_id

Status = Literal["fresh", "stale", "missing"]


@dataclass
class Found:
    """The stored unit (None when missing), its status and, when stale, why."""

    kind: str
    params: dict
    status: Status
    unit: StoredUnit | None = None
    why: str | None = None

    @property
    def fresh(self) -> bool:
        return self.status == "fresh"


def find(run_dir: str | Path, kind_name: str, overrides: Mapping[str, object] | None, fingerprint: str) -> Found:
    """The stored ``kind_name`` at its defaults with ``overrides``, checked against the run's current weights,
    ``fingerprint`` (the data in use) and the kind's code version."""
    k = kind(kind_name)
    params = k.params(overrides)
    unit = read_unit(run_dir, k.name, params)
    if unit is None:
        return Found(k.name, params, "missing")
    meta = unit.meta
    if meta.get("fingerprint") != fingerprint:
        why = "it was computed on other data"
    elif meta.get("weights") != weights_id(run_dir):
        why = "the run's weights changed since"
    elif meta.get("version") != k.version:
        why = "it was computed by an older version of this analysis"
    else:
        why = damaged(str(unit.folder), unit.created, k.name)
        if why is None:
            return Found(k.name, params, "fresh", unit)
    return Found(k.name, params, "stale", unit, why)


@lru_cache(maxsize=512)
def damaged(folder: str, created: str, kind_name: str) -> str | None:
    """Why a stored unit cannot be read as its kind (a table or a column missing, a table unreadable), or None.
    Reads only the Parquet footers; cached per folder and write time."""
    import pyarrow.parquet as pq

    for table, columns in TABLE_COLUMNS.get(kind_name, {}).items():
        path = Path(folder) / f"{table}.parquet"
        try:
            names = set(pq.read_schema(path).names)
        except (OSError, ValueError) as err:
            return f"its table '{table}' cannot be read ({type(err).__name__})"
        missing = [c for c in columns if c not in names]
        if missing:
            return f"its table '{table}' lacks {', '.join(missing[:3])}"
    return None
