"""Analyses that last: computed once (``python -m seqrec_core analyze``, or after training), stored inside the run
folder, read by the pages, the review report and scripts.

- :mod:`.store`: the on-disk format (``<run>/analysis/<kind>-<key>/`` Parquet tables + ``meta.json``), atomic writes.
- :mod:`.registry`: the kinds of analysis, their defaults, and the CLI's part names (:data:`PARTS`).
- :mod:`.kinds_eval`, :mod:`.kinds_explain`, :mod:`.kinds_embed`, :mod:`.kinds_patterns`, :mod:`.kinds_serving`:
  what each kind computes and how it is read back (the last: the users' histories, so commands on a run serve
  without re-reading its log).
- :mod:`.job`: the analysis job (which units, which users, progress, cancel, merging per-user results).
- :mod:`.lookup`: what a page or the report asks: the stored result for these settings, fresh or not.
"""
from seqrec_core.analysis import (  # noqa: F401 - each registers its kinds
    kinds_embed,
    kinds_eval,
    kinds_explain,
    kinds_patterns,
    kinds_serving,
)
from seqrec_core.analysis.registry import KINDS, PARTS, AnalysisContext, Kind, kind, resolve_parts
from seqrec_core.analysis.store import ANALYSIS_DIR, StoredUnit, list_units, read_unit, weights_id, write_unit

__all__ = ["ANALYSIS_DIR", "KINDS", "PARTS", "AnalysisContext", "Kind", "StoredUnit", "kind", "list_units",
           "read_unit", "resolve_parts", "weights_id", "write_unit"]
