"""Size limits on input files, checked before a single byte is read.

Why here: a log is read whole into memory (then parsed into several copies), so a file far larger than the
machine can hold would otherwise end in a MemoryError or the OOM killer, with no sentence for the person who
picked it. Uploads are capped per dashboard (``SEQREC_MAX_UPLOAD_MB``, checked in ``ui/uploads``); files opened
by path (the CLI, ``open_dataset``, a run's recorded data source) are capped by ``SEQREC_MAX_FILE_MB``. Both
refusals come from :func:`refuse_if_larger`, so they read the same.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from seqrec_core.errors import InputError

MAX_FILE_ENV = "SEQREC_MAX_FILE_MB"
# Generous on purpose: the 10M-event benchmark log must still load; a deployment lowers it, 0 switches it off.
DEFAULT_MAX_FILE_MB = 20_000.0


def size_text(n_bytes: int) -> str:
    """A file size as a person reads it: ``512 bytes``, ``3.6 KB``, ``12.0 MB``, ``1.5 GB`` (binary units)."""
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:,.1f} GB"
    if n_bytes >= 2**20:
        return f"{n_bytes / 2**20:,.1f} MB"
    if n_bytes >= 2**10:
        return f"{n_bytes / 2**10:,.1f} KB"
    return f"{n_bytes:,} bytes"


def refuse_if_larger(name: str, size: int, limit_mb: float, *, limit_name: str, fix: str) -> None:
    """Raise the one-line refusal ``<name> is <size>, over <limit_name> of <limit> MB; <fix>`` when ``size``
    (bytes) exceeds ``limit_mb``; an infinite limit never refuses."""
    if math.isfinite(limit_mb) and size > limit_mb * 2**20:
        raise InputError(f"{name} is {size_text(size)}, over {limit_name} of {limit_mb:,g} MB; {fix}")


def max_file_mb() -> float:
    """The cap on files opened by path in MB: ``SEQREC_MAX_FILE_MB`` if set (0 or less = no cap), else
    :data:`DEFAULT_MAX_FILE_MB`. A value that is not a number is refused rather than silently ignored: a typo
    must not quietly switch a deployment's limit back to the default."""
    value = os.environ.get(MAX_FILE_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_FILE_MB
    try:
        limit = float(value)
    except ValueError:
        limit = math.nan
    if math.isnan(limit):
        raise InputError(f"{MAX_FILE_ENV}='{value[:40]}' is not a number of MB; set it to e.g. "
                         f"{DEFAULT_MAX_FILE_MB:.0f} (0 = no limit) or unset it")
    return limit if limit > 0 else math.inf


def check_file_size(path: str | Path) -> None:
    """Refuse a file over :func:`max_file_mb` before reading it (a file whose size cannot be read is left to the
    reader, which reports that itself)."""
    path = Path(path)
    limit = max_file_mb()
    try:
        size = path.stat().st_size
    except OSError:
        return
    refuse_if_larger(f"'{str(path)[:200]}'", size, limit, limit_name="the data-file size limit",
                     fix=f"raise it with {MAX_FILE_ENV}={max(math.ceil(size / 2**20) + 1, 1)} "
                         f"(0 = no limit), or load a smaller extract")
