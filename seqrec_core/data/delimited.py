"""CSV/TSV (and space-separated) tables as text: delimiter sniffing, header detection, ragged rows refused with
their file line, and the file line of every data row.

Split from ``loaders`` because this is the one reader that several formats share (CSV/TSV, MovieLens
``ratings.dat``/``u.data``/``ratings.csv``, and titles files through ``metadata``); it knows nothing about what the
columns mean. ``read_delimited`` stays importable from ``seqrec_core.data.loaders``.

Memory: the text is read in place, never copied whole. ``io.StringIO(text)`` would hold four bytes per
character (a 1 GB log became 4 GB, twice: once for the scan, once for pandas), so the scan walks the text in
blocks of lines and pandas reads it through :class:`_TextSource`, a file-like view that hands out slices.
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from array import array
from collections.abc import Iterator

import numpy as np
import pandas as pd

from seqrec_core.data.schema import ALL_ALIASES, RowRef, norm_name, short
from seqrec_core.errors import InputError

# (\d+(\.\d*)? and not \d+\.?\d*: the latter backtracks quadratically, 35 s on a 20,000-digit cell)
_VALUE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^\d{4}-\d{2}-\d{2}|^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")


_BLOCK_CHARS = 1 << 20  # text walked a block of lines at a time: memory per block, C speed within it


def iter_lines(text: str) -> Iterator[str]:
    """The lines of ``text``, each with its ``\\n``, split on ``\\n`` only (as ``io.StringIO(text)`` splits them),
    without a second copy of the whole text."""
    start, n = 0, len(text)
    while start < n:
        end = text.find("\n", min(start + _BLOCK_CHARS, n))
        end = n if end < 0 else end + 1
        yield from io.StringIO(text[start:end])
        start = end


class _TextSource:
    """A read-only file-like view of a str for ``pd.read_csv``: slices on demand instead of a StringIO copy."""

    def __init__(self, text: str) -> None:
        self._text, self._pos = text, 0

    def read(self, size: int | None = -1) -> str:
        end = len(self._text) if size is None or size < 0 else self._pos + size
        out = self._text[self._pos:end]
        self._pos += len(out)
        return out

    def __iter__(self) -> Iterator[str]:
        return iter_lines(self._text[self._pos:])


def _sniff_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the first lines into the same number (>1) of fields; ' ' = runs of whitespace."""
    best, best_score = ",", (0.0, 0)
    for d in (",", "\t", ";", "|"):
        counts = [ln.count(d) for ln in lines]
        mode = max(set(counts), key=counts.count)
        score = (counts.count(mode) / len(counts), mode)
        if mode > 0 and score > best_score:
            best, best_score = d, score
    if best_score[1] == 0 and lines and all(len(ln.split()) == len(lines[0].split()) > 1 for ln in lines):
        return " "
    return best


def _is_value(cell: str) -> bool:
    return bool(_VALUE.match(cell.strip()))


def _has_header(rows: list[list[str]]) -> bool:
    """A header row names columns: no numbers or dates in it, and (when the data has them) text above numbers."""
    first, rest = rows[0], rows[1:]
    if any(norm_name(c) in ALL_ALIASES for c in first):
        return True
    if any(_is_value(c) for c in first):
        return False
    for j in range(len(first)):
        below = [r[j] for r in rest if j < len(r) and r[j].strip()]
        if below and all(_is_value(v) for v in below):
            return True
    return not any(j < len(r) and r[j] == first[j] for r in rest for j in range(len(first)))


def _scan(name: str, text: str, delim: str) -> tuple[list[list[str]], np.ndarray, int]:
    """One pass over the records: the file line of each, ragged rows refused. Returns the first rows, the
    line numbers of all non-blank records and the field count."""
    reader = (ln.split() for ln in iter_lines(text)) if delim == " " else \
        csv.reader(iter_lines(text), delimiter=delim, skipinitialspace=True)
    head: list[list[str]] = []
    lines = array("q")  # 8 bytes a row (a list of ints takes ~36)
    ncols = 0
    prev = 0
    try:
        for k, row in enumerate(reader):
            start = prev + 1
            prev = reader.line_num if delim != " " else k + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if not lines:
                ncols = len(row)
            elif len(row) != ncols and not (len(row) > ncols and not any(c.strip() for c in row[ncols:])):
                hint = " (a quoted value runs over several lines: an unclosed quote?)" \
                    if any("\n" in c for c in row) else ""
                sep = "a tab" if delim == "\t" else f"'{delim}'"
                fix = "pass --format seqtxt if every line is 'user item item ...', else fix that row" \
                    if delim == " " else f"fix that row (quote values that contain {sep})"
                raise InputError(f"{name} line {start}: {len(row)} fields where the first row has {ncols}{hint}; {fix}")
            if len(head) < 30:
                head.append(row)
            lines.append(start)
    except csv.Error as err:
        raise InputError(f"{name} line {prev + 1}: cannot read this as a table ({err}); fix the row") from None
    return head, np.frombuffer(lines, dtype=np.int64) if lines else np.zeros(0, dtype=np.int64), ncols


def _unique_names(cells: list[str]) -> list[str]:
    names: list[str] = []
    for j, cell in enumerate(cells):
        base = cell.strip() or f"column{j + 1}"
        name, k = base, 2
        while name in names:
            name, k = f"{base}.{k}", k + 1
        names.append(name)
    return names


def read_delimited(name: str, text: str, fmt: str = "csv", *, header: bool | None = None,
                   names: tuple[str, ...] | None = None, delim: str | None = None) -> tuple[pd.DataFrame, RowRef]:
    """CSV/TSV with a sniffed delimiter and detected header; all values kept as text for ``to_canonical``."""
    sample = [ln for ln in text[:65536].split("\n")[:50] if ln.strip()]
    if len(text) > 65536 and len(sample) > 1:
        sample = sample[:-1]
    delim = delim or ("\t" if fmt == "tsv" else _sniff_delimiter(sample))
    head, lines, ncols = _scan(name, text, delim)
    if not lines.size:
        raise InputError(f"{name} has no data rows; check that it is the right file")
    has_header = _has_header(head) if header is None else header
    if names is not None and len(names) != ncols:
        raise InputError(f"{name} line {lines[0]}: {ncols} fields where this format has {len(names)} "
                         f"({', '.join(names)}); check the file or pick another --format")
    cols = list(names) if names else _unique_names(head[0]) if has_header else [f"column{j + 1}" for j in range(ncols)]
    if has_header:
        lines = lines[1:]
        if not lines.size:
            raise InputError(f"{name} has a header ({', '.join(map(short, cols[:8]))}) but no data rows; "
                             "add events below it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pd.read_csv(_TextSource(text), sep=r"\s+" if delim == " " else delim,
                                header=0 if has_header else None, names=cols, dtype=str, keep_default_na=False,
                                na_filter=False, index_col=False, skipinitialspace=True, engine="c")
    except (pd.errors.ParserError, ValueError) as err:
        raise InputError(f"{name}: cannot read this as a table ({str(err).splitlines()[-1][:120]}); "
                         f"fix the file or pick another --format") from None
    if len(frame) != len(lines):  # quoting edge cases: fall back to counting data rows
        lines = np.arange(len(frame), dtype=np.int64) + (2 if has_header else 1)
    return frame, RowRef(name, lines, "line")
