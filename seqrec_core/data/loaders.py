"""Reading a behaviour log from a file (or an upload's bytes) into the canonical event table: format detection,
the per-format readers and the entry points.

Each format only has to produce a raw table plus the file line of every row; column meaning, types and
validation are shared (``schema.to_canonical``), so a bad value is reported the same way in every format:
file, line, column and the fix, as an :class:`InputError`. Gzip and zip containers are opened transparently
(a MovieLens zip as GroupLens ships it works as one upload) by ``containers``; titles and genres files are read
by ``metadata``. Their public names stay importable from here.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from seqrec_core.data import metadata
from seqrec_core.data.arrow_ingest import decode_dictionaries
from seqrec_core.data.containers import MAX_UNPACKED_MB as MAX_UNPACKED_MB
from seqrec_core.data.containers import MAX_ZIP_MEMBERS as MAX_ZIP_MEMBERS
from seqrec_core.data.containers import ML_EVENT_FILES, _unwrap, decode_text
from seqrec_core.data.containers import is_metadata_name as is_metadata_name
from seqrec_core.data.containers import max_unpacked_bytes as max_unpacked_bytes
from seqrec_core.data.schema import (
    ALL_ALIASES,
    ColumnMap,
    RowRef,
    detect_columns,
    norm_name,
    short,
    to_canonical,
    with_columns,
)
from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

FORMATS = ("auto", "csv", "tsv", "parquet", "jsonl", "movielens", "seqtxt")
_HEAD = 8192
_ML_FIXED = ("user_id", "item_id", "rating", "timestamp")
_INT_LINE = re.compile(r"^\d+(?:[ \t]+\d+)*[ \t]*$")
MAX_COLUMNS = 1000
# (\d+(\.\d*)? and not \d+\.?\d*: the latter backtracks quadratically, 35 s on a 20,000-digit cell)
_VALUE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^\d{4}-\d{2}-\d{2}|^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")


@dataclass
class _Raw:
    frame: pd.DataFrame
    ref: RowRef
    fixed: ColumnMap | None = None  # column roles fixed by the format (MovieLens .dat/u.data, sequence text)


# ---------------------------------------------------------------------------------------------------- detection

def detect_format(name: str, head: bytes) -> str:
    """Guess the format from the file name, then from its first bytes (``head``, a few KB are enough)."""
    base = Path(name).name.lower()
    if base.endswith(".gz"):
        base = base[:-3]
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(head) >= _HEAD and len(lines) > 1:
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


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")


# -------------------------------------------------------------------------------------------- text formats

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
    reader = (ln.split() for ln in text.split("\n")) if delim == " " else \
        csv.reader(io.StringIO(text), delimiter=delim, skipinitialspace=True)
    head: list[list[str]] = []
    lines: list[int] = []
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
                raise InputError(f"{name} line {start}: {len(row)} fields where the first row has {ncols}{hint}; fix that "
                                 f"row (quote values that contain '{delim.strip() or 'spaces'}')")
            if len(head) < 30:
                head.append(row)
            lines.append(start)
    except csv.Error as err:
        raise InputError(f"{name} line {prev + 1}: cannot read this as a table ({err}); fix the row") from None
    return head, np.asarray(lines, dtype=np.int64), ncols


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
            raise InputError(f"{name} has a header ({', '.join(map(short, cols[:8]))}) but no data rows; add events below it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pd.read_csv(io.StringIO(text), sep=r"\s+" if delim == " " else delim, header=0 if has_header else None,
                                names=cols, dtype=str, keep_default_na=False, na_filter=False, index_col=False,
                                skipinitialspace=True, engine="c")
    except (pd.errors.ParserError, ValueError) as err:
        raise InputError(f"{name}: cannot read this as a table ({str(err).splitlines()[-1][:120]}); "
                         f"fix the file or pick another --format") from None
    if len(frame) != len(lines):  # quoting edge cases: fall back to counting data rows
        lines = np.arange(len(frame), dtype=np.int64) + (2 if has_header else 1)
    return frame, RowRef(name, lines, "line")


def _read_jsonl(name: str, text: str) -> _Raw:
    records: list = []
    lines: list[int] = []
    if text.lstrip().startswith("["):  # a JSON array of objects is accepted too
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{name} line {err.lineno}: not valid JSON ({err.msg}); fix the file") from None
        except (ValueError, RecursionError) as err:  # numbers over 4300 digits, nesting deeper than Python's stack
            raise InputError(f"{name}: not usable JSON ({str(err)[:80]}); fix the file") from None
        lines = list(range(1, len(records) + 1)) if isinstance(records, list) else []
        unit = "record"
    else:
        unit = "line"
        for ln, line in enumerate(text.split("\n"), 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(f"{name} line {ln}: not valid JSON ({err.msg} at character {err.colno}); JSON Lines "
                                 f"needs one complete {{...}} object per line") from None
            except (ValueError, RecursionError) as err:
                raise InputError(f"{name} line {ln}: not usable JSON ({str(err)[:80]}); fix that line") from None
            lines.append(ln)
    if not isinstance(records, list) or not records:
        raise InputError(f"{name} holds no JSON records; expected one object per line like "
                         '{"user": "u1", "item": "i9", "timestamp": 1700000000}')
    for rec, ln in zip(records, lines, strict=True):
        if not isinstance(rec, dict):
            raise InputError(f"{name} {unit} {ln}: expected a JSON object with user/item/time fields, found "
                             f"{type(rec).__name__}; write one {{...}} object per line")
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        raise InputError(f"{name} {unit} {lines[0]}: the JSON objects have no fields; write one object per event like "
                         '{"user": "u1", "item": "i9", "timestamp": 1700000000}')
    return _Raw(frame, RowRef(name, np.asarray(lines, dtype=np.int64), unit))


def _read_seqtxt(name: str, text: str) -> _Raw:
    """``user item item ...`` per line; a user on several lines continues in file order."""
    bad = re.search(r"[^0-9\s]", text)
    if bad:
        line_start = text.rfind("\n", 0, bad.start()) + 1
        tokens = text[line_start:].split("\n", 1)[0].split()
        token = next((t for t in tokens if not t.isdigit()), "?")
        line = text.count("\n", 0, bad.start()) + 1
        raise InputError(f"{name} line {line}: token '{token[:30]}' is not an integer id; sequence text needs "
                         f"'user item item ...' with integer ids on every line (or pick another --format)")
    users: list[str] = []
    items: list[str] = []
    lines: list[int] = []
    for ln, line in enumerate(text.split("\n"), 1):
        tokens = line.split()
        if len(tokens) >= 2:
            users.extend([tokens[0]] * (len(tokens) - 1))
            items.extend(tokens[1:])
            lines.extend([ln] * (len(tokens) - 1))
    if not items:
        raise InputError(f"{name} has no 'user item item ...' lines with at least one item; check the file")
    frame = pd.DataFrame({"user_id": pd.array(users, dtype="str"), "item_id": pd.array(items, dtype="str")})
    frame["timestamp"] = frame.groupby("user_id", sort=False).cumcount().astype(np.int64)
    fixed = ColumnMap(user="user_id", item="item_id", time="timestamp", rating="", title="", category="",
                      event_type="")
    return _Raw(frame, RowRef(name, np.asarray(lines, dtype=np.int64)), fixed)


def _read_movielens(name: str, text: str) -> _Raw:
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    fixed = ColumnMap(user="user_id", item="item_id", time="timestamp", rating="rating")
    if "::" in first:  # ratings.dat (ML-1M/10M): UserID::MovieID::Rating::Timestamp
        frame, ref = read_delimited(name, text.replace("::", "\t"), header=False, names=_ML_FIXED, delim="\t")
        return _Raw(frame, ref, fixed)
    if "\t" in first and first.split("\t")[0].strip().isdigit():  # u.data (ML-100K): user item rating ts
        frame, ref = read_delimited(name, text, header=False, names=_ML_FIXED, delim="\t")
        return _Raw(frame, ref, fixed)
    frame, ref = read_delimited(name, text, "csv")  # ratings.csv (ML-latest, ML-20M/25M): named columns
    return _Raw(frame, ref)


def _read_parquet(name: str, data: bytes) -> _Raw:
    try:
        table = pq.read_table(io.BytesIO(data))
        table.validate(full=True)  # damaged files can decode to invalid UTF-8 that fails much later otherwise
        table = decode_dictionaries(table)  # categorical ids decoded in Arrow, not as 10M Python objects
        frame = table.to_pandas()
    except Exception as err:  # pyarrow raises many types for damaged files; all mean the same to a person
        msg = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise InputError(f"{name} is not a readable Parquet file ({msg}); re-export it or pick another --format") \
            from None
    if frame.empty:
        raise InputError(f"{name} has no rows (columns: {', '.join(map(short, frame.columns[:8]))}); add events")
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(object)
        elif frame[col].dtype == object and frame[col].map(type).isin((bytes, bytearray)).any():
            # binary columns (written without a UTF-8 annotation): text where they are text, escapes elsewhere
            frame[col] = frame[col].map(lambda v: bytes(v).decode("utf-8", "backslashreplace")
                                        if isinstance(v, bytes | bytearray) else v)
    return _Raw(frame, RowRef(name, np.arange(1, len(frame) + 1, dtype=np.int64), "row"))


# ------------------------------------------------------------------------------------- item titles / genres

def read_item_metadata(name: str, data: bytes) -> pd.DataFrame:
    """``item_id`` plus ``item_title`` and/or ``item_category`` (the first genre of a pipe list); see
    :func:`metadata.read_item_metadata`, here with this module's CSV/TSV reader."""
    return metadata.read_item_metadata(name, data, read_table=read_delimited)


def attach_item_metadata(events: pd.DataFrame, meta_name: str, meta_data: bytes, source: str) -> pd.DataFrame:
    """Add titles/categories the events lack; refuses a titles file that matches none of the log's items."""
    return metadata.attach_item_metadata(events, meta_name, meta_data, source, read_table=read_delimited)


# ------------------------------------------------------------------------------------------------ entry points

def _read(name: str, data: bytes, fmt: str, extra: dict[str, bytes]) -> tuple[_Raw, dict[str, bytes]]:
    _check_format(fmt)
    if not data or data.isspace():
        raise InputError(f"{name} is empty; choose a file with events (user, item, time)")
    name, data, extra = _unwrap(name, data, extra)
    resolved = detect_format(name, data[:_HEAD]) if fmt == "auto" else fmt
    if resolved == "parquet":
        raw = _read_parquet(name, data)
    else:
        text = decode_text(name, data)
        if not text.strip():
            raise InputError(f"{name} is empty; choose a file with events (user, item, time)")
        if resolved == "jsonl":
            raw = _read_jsonl(name, text)
        elif resolved == "seqtxt":
            raw = _read_seqtxt(name, text)
        elif resolved == "movielens":
            raw = _read_movielens(name, text)
        else:
            raw = _Raw(*read_delimited(name, text, resolved))
    if raw.frame.shape[1] > MAX_COLUMNS:  # column detection costs per column: a very wide table would stall it
        raise InputError(f"{name} has {raw.frame.shape[1]:,} columns; an event log needs a user, an item and a time "
                         f"column (at most {MAX_COLUMNS:,} are read): keep only the columns you need")
    return raw, extra


def _in_upload(name: str, err: InputError) -> InputError:
    """A message about a file inside a zip (or a titles file) also names the upload a person chose."""
    msg = str(err)
    return err if name in msg or Path(name).name in msg else InputError(f"{name}: {msg}")


def read_raw_table(name: str, data: bytes, fmt: str = "auto") -> pd.DataFrame:
    """The file's columns as read (text for text formats), for previews and column mapping; formats with fixed
    columns (sequence text, MovieLens .dat/u.data) come back with canonical names."""
    try:
        raw, _ = _read(name, data, fmt, {})
    except InputError as err:
        raise _in_upload(name, err) from None
    return raw.frame


def load_events_bytes(name: str, data: bytes, fmt: str = "auto", columns: ColumnMap | None = None, *,
                      extra_files: dict[str, bytes] | None = None) -> pd.DataFrame:
    """Canonical events from an upload; ``extra_files`` may hold item titles/categories (e.g. MovieLens
    ``movies.csv``, ``movies.dat``, ``u.item``, or any table with an item column and a title/category column)."""
    try:
        raw, extra = _read(name, data, fmt, dict(extra_files or {}))
        if raw.fixed is not None:
            cols = with_columns(columns, **{k: getattr(raw.fixed, k) for k in ColumnMap.__dataclass_fields__})
            cols = detect_columns(raw.frame, cols, source=raw.ref.source)
        else:
            cols = detect_columns(raw.frame, columns, source=raw.ref.source)
        log.info("%s: columns %s", raw.ref.source, cols)
        events = to_canonical(raw.frame, cols, raw.ref)
        for meta_name, meta_data in extra.items():
            events = attach_item_metadata(events, meta_name, meta_data, raw.ref.source)
    except InputError as err:
        raise _in_upload(name, err) from None
    return events


def load_events(path: str | Path, fmt: str = "auto", columns: ColumnMap | None = None) -> pd.DataFrame:
    """Canonical events from a file; a MovieLens ratings file picks up the titles file beside it, and a folder
    holding a MovieLens ratings file is accepted for that file."""
    _check_format(fmt)
    path = Path(path)
    try:  # a name too long for the file system makes even is_dir() raise
        if path.is_dir():
            found = next((path / b for b in ML_EVENT_FILES if (path / b).is_file()), None)
            if found is None:
                raise InputError(f"'{path}' is a folder; pass the log file inside it")
            path = found
        if not path.is_file():
            raise InputError(f"data file '{str(path)[:200]}' does not exist; check the path")
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read '{str(path)[:200]}' ({err.strerror}); check the path and permissions") from None
    extra: dict[str, bytes] = {}
    if fmt in ("auto", "movielens") and data[:2] != b"\x1f\x8b" and data[:4] != b"PK\x03\x04" \
            and (fmt == "movielens" or detect_format(path.name, data[:_HEAD]) == "movielens"):
        side = metadata.titles_file_beside(path)
        if side is not None:
            extra[side[0]] = side[1]
    return load_events_bytes(path.name, data, fmt, columns, extra_files=extra)
