"""Import in the background what pages will need, once per server process, so no page view pays it.

Why: a page's first view in a fresh server process otherwise pays its modules' first import (scipy and the figure
modules: 1.5-2 s for Patterns or Explain). Python imports each module once per process and makes a second importer
wait for the first, so importing on a background thread while a person reads a page is safe. Not warmed: the models
(transformers and Captum, 4-7 s), which only live per-user work needs; warming them competed for the interpreter
with the pages people were opening (Compare's first view went from 2.5 to 3.7 s on 2 cores), so the first live
explanation of a fresh server pays them once instead.
"""
from __future__ import annotations

import importlib
import logging
import threading

log = logging.getLogger(__name__)

# "pages": what the stored-analysis views import (cheap enough to start with the server).
STAGES: dict[str, tuple[str, ...]] = {
    "pages": ("scipy.signal", "scipy.stats", "seqrec_core.patterns.report", "seqrec_core.viz.plot_patterns",
              "seqrec_core.viz.plot_patterns_model", "seqrec_core.viz.plot_explain",
              "seqrec_core.viz.plot_explain_stats", "seqrec_core.viz.plot_evaluation",
              "seqrec_core.viz.plot_embeddings", "seqrec_core.viz.plot_compare",
              "seqrec_core.viz.plot_recommendations", "seqrec_core.compare", "seqrec_core.analysis"),
}
_started: set[str] = set()
_lock = threading.Lock()


def _import_all(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - a warm-up must never break the app; the page reports it later
            log.debug("warm-up import of %s failed: %s", name, err)


def warm(stage: str) -> None:
    """Start importing ``stage``'s modules on a daemon thread, the first time this process asks."""
    with _lock:
        if stage in _started:
            return
        _started.add(stage)
    threading.Thread(target=_import_all, args=(STAGES[stage],), name=f"warm-{stage}", daemon=True).start()
