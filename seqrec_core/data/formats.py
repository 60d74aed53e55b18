"""Which format a log file is in, from its name and first few KB: the ``--format auto`` guess.

Split from ``loaders`` so the guess can be read (and tested) on its own: it decides between look-alikes (a
space-separated event table and sequence text; MovieLens ``::`` files and CSV) and nothing else. The names here
stay importable from ``seqrec_core.data.loaders``.
"""
from __future__ import annotations

import re
from pathlib import Path

from seqrec_core.data.schema import ALL_ALIASES, norm_name
from seqrec_core.errors import InputError

FORMATS = ("auto", "csv", "tsv", "parquet", "jsonl", "movielens", "seqtxt")
HEAD_BYTES = 8192  # how much of a file detect_format needs
_INT_LINE = re.compile(r"^\d+(?:[ \t]+\d+)*[ \t]*$")
# characters that never separate the tokens of sequence text: a line holding one is a table row (or junk)
_TABLE_CHARS = re.compile(r"[,;|\t\"]")


def detect_format(name: str, head: bytes) -> str:
    """Guess the format from the file name, then from its first bytes (``head``, a few KB are enough)."""
    base = Path(name).name.lower()
    if base.endswith(".gz"):
        base = base[:-3]
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(head) >= HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut off
    first = lines[0] if lines else ""
    if head[:4] == b"PAR1" or base.endswith((".parquet", ".pq")):
        return "parquet"
    if base == "u.data" or (base.endswith(".dat") and "::" in first) or base == "ratings.dat":
        return "movielens"
    if norm_name(first.split(",")[0]) == "userid" and len(first.split(",")) > 1 \
            and norm_name(first.split(",")[1]) == "movieid":
        return "movielens"
    if base.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if base.endswith((".tsv", ".tab")):
        return "tsv"
    if base.endswith(".csv"):
        return "csv"
    if first.lstrip().startswith(("{", "[")):
        return "jsonl"
    if "::" in first:
        return "movielens"
    int_lines = [ln for ln in lines if _INT_LINE.match(ln)]
    if int_lines and len(int_lines) >= 0.5 * len(lines) and "," not in first:  # mostly `user item item ...`
        counts = {len(ln.split()) for ln in int_lines}
        if len(counts) > 1 or counts == {2} or len(lines) == 1 \
                or (len(int_lines) == len(lines) and _same_length_sequences(lines)):
            return "seqtxt"
    if _word_sequences(lines):
        return "seqtxt"
    return "tsv" if "\t" in first else "csv"


def _same_length_sequences(lines: list[str]) -> bool:
    """Space-separated integer lines, all with the same number (> 3) of fields: sequence text with every sequence
    cut to one length, unless the lines look like one event each: a user on consecutive lines, or columns of
    clearly different sizes (a 1-5 rating beside a 10-digit unix time). Three fields (``user item time``) and
    tab-separated files (MovieLens ``u.data``) stay tables."""
    rows = [ln.split() for ln in lines]
    if any("\t" in ln for ln in lines) or len(rows[0]) <= 3 or any(len(r) != len(rows[0]) for r in rows):
        return False
    if any(a[0] == b[0] for a, b in zip(rows[:-1], rows[1:], strict=True)):
        return False
    digits = [[len(r[j].lstrip("0")) for r in rows] for j in range(1, len(rows[0]))]  # no int(): 5,000-digit cells
    return min(max(d) for d in digits) + 2 > max(min(d) for d in digits)


def integer_lines(head: bytes) -> bool:
    """Whether most lines of ``head`` are integers only (``1 10 11 12``): sequence text in the SASRec style, where
    a stray text token is more likely damage than an id (see ``loaders._read_seqtxt``)."""
    lines = [ln for ln in head.decode("utf-8", errors="replace").lstrip("\ufeff").split("\n") if ln.strip()]
    if len(head) >= HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]
    return bool(lines) and sum(bool(_INT_LINE.match(ln)) for ln in lines) >= 0.5 * len(lines)


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")


def _word_sequences(lines: list[str]) -> bool:
    """Sequence text whose ids are not all integers (``u1 itemA itemB``, ASINs, hashed ids): tokens separated by
    spaces only (no comma, semicolon, pipe, tab or quote on any line), at least two per line, no header (no
    column name such as ``user`` or ``item`` on the first line), and either lines of different lengths, which
    no table has, or one length that :func:`_same_length_sequences` reads as cut-to-length sequences."""
    if not lines or any(_TABLE_CHARS.search(ln) for ln in lines):
        return False
    rows = [ln.split() for ln in lines]
    if any(len(r) < 2 for r in rows) or any(norm_name(t) in ALL_ALIASES for t in rows[0]):
        return False
    return len({len(r) for r in rows}) > 1 or _same_length_sequences(lines)
