"""Reading a behaviour log from a file (or an upload's bytes) into the canonical event table: the per-format
readers and the entry points.

Each format only has to produce a raw table plus the file line of every row; column meaning, types and
validation are shared (``schema.to_canonical``), so a bad value is reported the same way in every format:
file, line, column and the fix, as an :class:`InputError`. The format guess lives in ``formats``, the CSV/TSV
reader in ``delimited``; gzip and zip containers are opened transparently (a MovieLens zip as GroupLens ships it
works as one upload) by ``containers``, which also reads files by path in bounded chunks; titles and genres
files are read by ``metadata``; the size, line-length and memory bounds are ``limits``. Their public names stay
importable from here.

Memory: a log's bytes are handed to the reader in an :class:`Opened` that the reader empties, so the bytes die
once decoded instead of living on in the caller's frame beside the text and the table.
"""
from __future__ import annotations

import io
import json
import logging
import re
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from seqrec_core.data import metadata
from seqrec_core.data.arrow_ingest import decode_dictionaries
from seqrec_core.data.containers import MAX_UNPACKED_MB as MAX_UNPACKED_MB
from seqrec_core.data.containers import MAX_ZIP_MEMBERS as MAX_ZIP_MEMBERS
from seqrec_core.data.containers import ML_EVENT_FILES, Opened, decode_text, open_log_file, unwrap
from seqrec_core.data.containers import is_metadata_name as is_metadata_name
from seqrec_core.data.containers import max_unpacked_bytes as max_unpacked_bytes
from seqrec_core.data.delimited import iter_lines, read_delimited
from seqrec_core.data.formats import FORMATS as FORMATS
from seqrec_core.data.formats import HEAD_BYTES, check_format, integer_lines, refuse_prose
from seqrec_core.data.formats import detect_format as detect_format
from seqrec_core.data.limits import check_parse_memory
from seqrec_core.data.schema import ColumnMap, RowRef, detect_columns, short, to_canonical, with_columns
from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

_NOT_SEQTXT = re.compile(r"[,;|]")  # table delimiters: never inside sequence text
_NOT_INTEGER = re.compile(r"[^0-9\s]")
_ML_FIXED = ("user_id", "item_id", "rating", "timestamp")
MAX_COLUMNS = 1000


@dataclass
class _Raw:
    frame: pd.DataFrame
    ref: RowRef
    fixed: ColumnMap | None = None  # column roles fixed by the format (MovieLens .dat/u.data, sequence text)


# -------------------------------------------------------------------------------------------- text formats

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
        for ln, line in enumerate(iter_lines(text), 1):
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


def _read_seqtxt(name: str, text: str, integer_ids: bool = False) -> _Raw:
    """``user item item ...`` per line, ids any tokens without spaces (integers as in the SASRec files, or
    strings such as ASINs); a user on several lines continues in file order. A comma, semicolon or pipe means
    the file is a table read with the wrong format, so it is refused with the flags to pass instead. With
    ``integer_ids`` (auto-detected SASRec-style files, mostly integer lines) a text token is refused as damage
    unless the person asks for sequence text explicitly."""
    bad = _NOT_SEQTXT.search(text) or (_NOT_INTEGER.search(text) if integer_ids else None)
    if bad:
        line_start = text.rfind("\n", 0, bad.start()) + 1
        row = text[line_start:].split("\n", 1)[0]
        line = text.count("\n", 0, bad.start()) + 1
        if bad.group() in ",;|":
            token = next((t for t in row.split() if bad.group() in t), bad.group())
            raise InputError(f"{name} line {line}: '{short(token, 30)}' holds '{bad.group()}', which sequence text "
                             f"('user item item ...' separated by spaces) never has; if this is a table, pass --format "
                             f"csv (or auto) and name columns with --user-col/--item-col/--time-col")
        token = next((t for t in row.split() if not t.isdigit()), "?")
        raise InputError(f"{name} line {line}: token '{short(token, 30)}' is not an integer id like the rest of this "
                         f"sequence text; fix that line, or pass --format seqtxt to read every id as text")
    users: list[str] = []
    items: list[str] = []
    line_no, per_line = array("q"), array("q")  # a line's number and its item count: 16 bytes a line, not a row
    for ln, line in enumerate(iter_lines(text), 1):
        tokens = line.split()
        if len(tokens) >= 2:
            users.extend([tokens[0]] * (len(tokens) - 1))
            items.extend(tokens[1:])
            line_no.append(ln)
            per_line.append(len(tokens) - 1)
    if not items:
        raise InputError(f"{name} has no 'user item item ...' lines with at least one item; check the file")
    lines = np.repeat(np.frombuffer(line_no, dtype=np.int64), np.frombuffer(per_line, dtype=np.int64))
    frame = pd.DataFrame({"user_id": pd.array(users, dtype="str"), "item_id": pd.array(items, dtype="str")})
    del users, items  # the Python strings are copied into Arrow columns
    frame["timestamp"] = frame.groupby("user_id", sort=False).cumcount().astype(np.int64)
    fixed = ColumnMap(user="user_id", item="item_id", time="timestamp", rating="", title="", category="",
                      event_type="")
    return _Raw(frame, RowRef(name, lines), fixed)


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


def _parquet_shape(name: str, data: bytes) -> tuple[int, int]:
    """Rows and uncompressed column bytes from the footer: what the memory estimate needs, read before the data."""
    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        return meta.num_rows, sum(meta.row_group(k).total_byte_size for k in range(meta.num_row_groups))
    except Exception:  # a damaged footer: read_table below says so in its own words
        return 0, 0


def _read_parquet(name: str, data: bytes) -> _Raw:
    rows, unpacked = _parquet_shape(name, data)
    check_parse_memory(name, "parquet", max(unpacked, len(data)), rows)
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

def _read(opened: Opened, fmt: str) -> tuple[_Raw, dict[str, bytes]]:
    """The raw table of an opened log. Takes the bytes out of ``opened``: from here on this frame holds the only
    reference, dropped as soon as the text is decoded (bytes, text and table are never all alive at once)."""
    name, extra = opened.name, opened.extra
    data, opened.data = opened.data, b""
    if not data or data.isspace():
        raise InputError(f"{name} is empty; choose a file with events (user, item, time)")
    head = data[:HEAD_BYTES]
    resolved = detect_format(name, head) if fmt == "auto" else fmt
    if resolved == "parquet":
        raw = _read_parquet(name, data)
    else:
        text = decode_text(name, data)
        del data  # the text is what the readers use from here
        if not text.strip():
            raise InputError(f"{name} is empty; choose a file with events (user, item, time)")
        if fmt == "auto" and resolved != "seqtxt":
            refuse_prose(name, head)
        if resolved == "jsonl":
            raw = _read_jsonl(name, text)
        elif resolved == "seqtxt":
            raw = _read_seqtxt(name, text, integer_ids=fmt == "auto" and integer_lines(head))
        elif resolved == "movielens":
            raw = _read_movielens(name, text)
        else:
            raw = _Raw(*read_delimited(name, text, resolved))
    if raw.frame.shape[1] > MAX_COLUMNS:  # column detection costs per column: a very wide table would stall it
        raise InputError(f"{name} has {raw.frame.shape[1]:,} columns; an event log needs a user, an item and a time "
                         f"column (at most {MAX_COLUMNS:,} are read): keep only the columns you need")
    return raw, extra


def _open_upload(name: str, data: bytes, fmt: str, extra: dict[str, bytes]) -> Opened:
    check_format(fmt)
    if not data or data.isspace():
        raise InputError(f"{name} is empty; choose a file with events (user, item, time)")
    return unwrap(name, data, fmt, extra)


def _in_upload(name: str, err: InputError) -> InputError:
    """A message about a file inside a zip (or a titles file) also names the upload a person chose."""
    msg = str(err)
    return err if name in msg or Path(name).name in msg else InputError(f"{name}: {msg}")


def read_raw_table(name: str, data: bytes, fmt: str = "auto") -> pd.DataFrame:
    """The file's columns as read (text for text formats), for previews and column mapping; formats with fixed
    columns (sequence text, MovieLens .dat/u.data) come back with canonical names."""
    try:
        raw, _ = _read(_open_upload(name, data, fmt, {}), fmt)
    except InputError as err:
        raise _in_upload(name, err) from None
    return raw.frame


def _load(source: str, opened: Opened, fmt: str, columns: ColumnMap | None) -> pd.DataFrame:
    raw, extra = _read(opened, fmt)
    if raw.fixed is not None:
        cols = with_columns(columns, **{k: getattr(raw.fixed, k) for k in ColumnMap.__dataclass_fields__})
        cols = detect_columns(raw.frame, cols, source=raw.ref.source)
    else:
        cols = detect_columns(raw.frame, columns, source=raw.ref.source)
    log.info("%s: columns %s", raw.ref.source, cols)
    events = to_canonical(raw.frame, cols, raw.ref)
    del raw  # the raw table is not needed once the canonical one exists
    for meta_name, meta_data in extra.items():
        events = attach_item_metadata(events, meta_name, meta_data, source)
    return events


def load_events_bytes(name: str, data: bytes, fmt: str = "auto", columns: ColumnMap | None = None, *,
                      extra_files: dict[str, bytes] | None = None) -> pd.DataFrame:
    """Canonical events from an upload; ``extra_files`` may hold item titles/categories (e.g. MovieLens
    ``movies.csv``, ``movies.dat``, ``u.item``, or any table with an item column and a title/category column)."""
    try:
        opened = _open_upload(name, data, fmt, dict(extra_files or {}))
        return _load(opened.name, opened, fmt, columns)
    except InputError as err:
        raise _in_upload(name, err) from None


def load_events(path: str | Path, fmt: str = "auto", columns: ColumnMap | None = None) -> pd.DataFrame:
    """Canonical events from a file; a MovieLens ratings file picks up the titles file beside it, and a folder
    holding a MovieLens ratings file is accepted for that file. Never blocks on a FIFO or a device, and reads
    in bounded chunks (see ``containers.open_log_file``)."""
    check_format(fmt)
    path = Path(path)
    try:  # a name too long for the file system makes even is_dir() raise
        if path.is_dir():
            found = next((path / b for b in ML_EVENT_FILES if (path / b).is_file()), None)
            if found is None:
                raise InputError(f"'{path}' is a folder; pass the log file inside it")
            path = found
        opened = open_log_file(path, fmt)
    except OSError as err:
        raise InputError(f"cannot read '{str(path)[:200]}' ({err.strerror}); check the path and permissions") from None
    except InputError as err:
        raise _in_upload(path.name, err) from None
    if not opened.container and fmt in ("auto", "movielens") \
            and (fmt == "movielens" or detect_format(path.name, opened.data[:HEAD_BYTES]) == "movielens"):
        side = metadata.titles_file_beside(path)
        if side is not None:
            opened.extra[side[0]] = side[1]
    try:
        return _load(opened.name, opened, fmt, columns)
    except InputError as err:
        raise _in_upload(path.name, err) from None
