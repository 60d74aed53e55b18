"""Which raw column is the user, the item, the time, ...; and turning raw columns into the canonical event table.

Loaders only get a file into a raw table; everything that gives columns their meaning and their types lives
behind this module, so every format is validated the same way and every error names the file, the line and
the column. It is the public face of three modules, each with one job: ``roles`` (the roles, ``ColumnMap`` and
how messages name things), ``columns`` (detecting which raw column plays which role) and ``canonical``
(typing raw columns into the canonical event table). Import from here.
"""
from __future__ import annotations

from seqrec_core.data.canonical import (
    RowRef,
    first_label,
    parse_timestamps,
    sort_events,
    to_canonical,
    to_id_strings,
    to_text,
    to_weights,
)
from seqrec_core.data.columns import ALL_ALIASES, detect_columns, find_by_name
from seqrec_core.data.roles import (
    HOW_TO_SET,
    REQUIRED,
    ROLES,
    TIME_DTYPE,
    UNIX_SECONDS,
    ColumnMap,
    norm_name,
    short,
    with_columns,
)

__all__ = [
    "ALL_ALIASES", "HOW_TO_SET", "REQUIRED", "ROLES", "TIME_DTYPE", "UNIX_SECONDS", "ColumnMap", "RowRef",
    "detect_columns", "find_by_name", "first_label", "norm_name", "parse_timestamps", "short", "sort_events",
    "to_canonical", "to_id_strings", "to_text", "to_weights", "with_columns",
]
