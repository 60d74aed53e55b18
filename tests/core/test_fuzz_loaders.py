"""Property-based fuzzing of every loader: whatever bytes arrive, the result is a valid canonical event table or
one InputError line naming the file, never another exception.

Strategies: random bytes under every format; valid-ish tables (CSV/TSV, JSON Lines, Parquet, MovieLens u.data /
ratings.dat / ratings.csv, sequence text) with junk cells mixed in; truncations, byte flips and insertions of
valid files (plain, gzip, zip); zips with hostile member names; mutated logs inside gzip, zip and nested
containers (gzip in zip, zip in gzip, gzip in gzip, zip in zip), with the container itself damaged too, also
under bounds lowered to a few hundred bytes. Deterministic (``derandomize=True``, no example database) so CI
sees the same examples every run. ``SEQREC_FUZZ_SCALE=10`` runs ten times the examples and
``SEQREC_FUZZ_RANDOM=1`` draws fresh ones, when hunting for new crashes by hand.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile_inputs import zip_bytes

from seqrec_core.data.dataset import dataset_from_events
from seqrec_core.data.loaders import FORMATS, load_events, load_events_bytes, read_raw_table
from seqrec_core.errors import InputError

SCALE = float(os.environ.get("SEQREC_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("SEQREC_FUZZ_RANDOM") == "1"  # fresh random examples each run (hunting), never in CI


def fuzz(n: int):  # noqa: ANN201 - a hypothesis settings decorator
    """``n`` examples per test (scaled by SEQREC_FUZZ_SCALE), deterministic, no deadline (CI machines vary)."""
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=not RANDOM, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(autouse=True)
def _quiet_logs():
    logging.disable(logging.INFO)  # "not UTF-8, read as Latin-1" notes would flood the output
    yield
    logging.disable(logging.NOTSET)


# ----------------------------------------------------------------------------------------------- the property

def _assert_canonical(ev: pd.DataFrame) -> None:
    assert list(ev.columns[:3]) == ["user_id", "item_id", "timestamp"], list(ev.columns)
    assert len(ev) > 0
    for col in ("user_id", "item_id"):
        assert pd.api.types.is_string_dtype(ev[col].dtype), ev.dtypes
        assert ev[col].notna().all() and (ev[col].str.strip() != "").all(), f"blank {col}"
    ts = ev["timestamp"]
    assert str(ts.dtype) in ("datetime64[ns, UTC]", "int64"), ts.dtype
    assert ts.notna().all()
    users = ev["user_id"].to_numpy()
    assert (users[1:] >= users[:-1]).all(), "not sorted by user"
    same = users[1:] == users[:-1]
    t = ts.to_numpy()
    assert not (same & (t[1:] < t[:-1])).any(), "not sorted by time within a user"
    if "weight" in ev.columns:
        assert pd.api.types.is_float_dtype(ev["weight"].dtype)
    assert set(ev.columns) <= {"user_id", "item_id", "timestamp", "weight", "item_title", "item_category",
                               "event_type"}


def _assert_refusal(err: InputError, name: str) -> None:
    msg = str(err)
    assert msg and "\n" not in msg and "Traceback" not in msg, repr(msg)
    assert name in msg or Path(name).name in msg, f"{name!r} not named in: {msg}"
    assert len(msg) < 600, msg


def _assert_line_in_file(err: InputError, data: bytes) -> None:
    """A 'line N' in a message about a plain text file points inside that file."""
    if data[:2] == b"\x1f\x8b" or data[:4] in (b"PK\x03\x04", b"PAR1") or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return
    found = re.search(r" line (\d+)", str(err))
    if found:
        assert 1 <= int(found.group(1)) <= max(data.count(b"\n"), data.count(b"\r")) + 1, (str(err), data[:200])


def check_loader(name: str, data: bytes, fmt: str = "auto") -> pd.DataFrame | None:
    """The property, for the preview path (``read_raw_table``) and the full path (load + clean + sequences)."""
    try:
        raw = read_raw_table(name, data, fmt)
        assert isinstance(raw, pd.DataFrame) and len(raw) > 0
    except InputError as err:
        _assert_refusal(err, name)
        _assert_line_in_file(err, data)
    try:
        events = load_events_bytes(name, data, fmt)
    except InputError as err:
        _assert_refusal(err, name)
        _assert_line_in_file(err, data)
        return None
    _assert_canonical(events)
    try:
        ds = dataset_from_events(events, name)
    except InputError as err:
        _assert_refusal(err, name)
        return events
    assert ds.sequences.n_users > 0
    return events


# ------------------------------------------------------------------------------------------------- strategies

JUNK = ["", " ", "nan", "NaN", "null", "None", "NA", "inf", "-inf", "1e400", "-1", "0", "1.5", "True", '"', "'",
        '""', "\\", "\u00e9", "\ufeff", "\u00a0", "１２３", "٣", "1,5", "::", "|", ";", "\t", "2024-13-45",
        "2024-01-01T10:00:00Z", "2024-01-01", "31/12/2023", "Jan 5 2020", "1700000000", "1700000000000",
        "99999999999999999999999", "-9223372036854775809", "yesterday", "=cmd|' /C calc'!A0", "<script>"]
junk_cell = st.one_of(st.sampled_from(JUNK), st.text(max_size=6), st.integers(-10**20, 10**20).map(str),
                      st.floats(allow_nan=True, allow_infinity=True).map(repr))
HEADERS = ["user_id", "item_id", "timestamp", "rating", "user", "item", "time", "ts", "date", "userId", "movieId",
           "genres", "title", "event_type", "x", "", "x" * 5000, "user_id"]


def _good_row(k: int) -> list[str]:
    return [f"u{k % 5}", f"i{k % 9}", str(1_700_000_000 + 3600 * k), str(1 + k % 5)]


@st.composite
def tables(draw: st.DrawFn) -> list[list[str]]:
    """A valid 4-column log (user, item, time, rating) with a few cells, rows or the header replaced by junk."""
    n = draw(st.integers(0, 12))
    rows = [_good_row(k) for k in range(n)]
    for _ in range(draw(st.integers(0, 4))):
        if not rows:
            break
        i = draw(st.integers(0, len(rows) - 1))
        action = draw(st.sampled_from(["cell", "cell", "drop_cell", "add_cell", "blank_row"]))
        if action == "cell" and rows[i]:
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = draw(junk_cell)
        elif action == "drop_cell" and rows[i]:
            rows[i].pop()
        elif action == "add_cell":
            rows[i].append(draw(junk_cell))
        elif action == "blank_row":
            rows[i] = []
    if draw(st.booleans()):
        header = ["user_id", "item_id", "timestamp", "rating"]
        if draw(st.booleans()):
            header[draw(st.integers(0, 3))] = draw(st.sampled_from(HEADERS))
        rows.insert(0, header)
    return rows


def _encode(text: str, draw: st.DrawFn) -> bytes:
    enc = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]))
    return text.encode(enc, errors="replace")


@st.composite
def delimited(draw: st.DrawFn) -> tuple[str, bytes]:
    rows = draw(tables())
    delim = draw(st.sampled_from([",", "\t", ";", "|", " "]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quote = draw(st.booleans())
    cells = [[f'"{c}"' if quote and delim in c else c for c in r] for r in rows]
    name = draw(st.sampled_from(["log.csv", "log.tsv", "events", "log.txt", "log.tab"]))
    return name, _encode(newline.join(delim.join(r) for r in cells), draw)


@st.composite
def movielens(draw: st.DrawFn) -> tuple[str, bytes]:
    rows = [[r[0][1:], r[1][1:], r[3], r[2]] if len(r) == 4 and r[0][:1] == "u" else r for r in draw(tables())]
    kind = draw(st.sampled_from(["u.data", "ratings.dat", "ratings.csv"]))
    if kind == "ratings.csv":
        body = [["userId", "movieId", "rating", "timestamp"], *rows] if draw(st.booleans()) else rows
        return kind, _encode("\n".join(",".join(r) for r in body), draw)
    return kind, _encode("\n".join(("\t" if kind == "u.data" else "::").join(r) for r in rows), draw)


@st.composite
def seqtxt(draw: st.DrawFn) -> tuple[str, bytes]:
    token = st.one_of(st.integers(0, 10**6).map(str), st.sampled_from(["abc", "-1", "1.5", "١٢", "１", "0x1f", "",
                                                                      "99999999999999999999999999"]))
    lines = []
    for u in range(draw(st.integers(0, 8))):
        items = [str(u * 7 + j) for j in range(draw(st.integers(0, 6)))]
        if draw(st.integers(0, 4)) == 0:
            items.insert(draw(st.integers(0, len(items))), draw(token))
        lines.append(" ".join([str(u + 1), *items]))
    return draw(st.sampled_from(["Beauty.txt", "seqs.txt", "seqs"])), _encode("\n".join(lines), draw)


json_scalar = st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats() | st.text(max_size=6)
json_value = json_scalar | st.lists(json_scalar, max_size=3) | st.dictionaries(
    st.text(max_size=4), json_scalar | st.lists(json_scalar, max_size=2), max_size=3)


@st.composite
def jsonl(draw: st.DrawFn) -> tuple[str, bytes]:
    records: list = []
    for k in range(draw(st.integers(0, 10))):
        rec: object = {"user": f"u{k % 4}", "item": f"i{k % 7}", "ts": 1_700_000_000 + k}
        if draw(st.integers(0, 3)) == 0:
            rec = dict(rec)
            rec[draw(st.sampled_from(["user", "item", "ts", "rating", "extra"]))] = draw(json_value)
        if draw(st.integers(0, 9)) == 0:
            rec = draw(json_value)
        records.append(rec)
    text = json.dumps(records) if draw(st.integers(0, 4)) == 0 else "\n".join(json.dumps(r) for r in records)
    return draw(st.sampled_from(["log.jsonl", "log.ndjson", "log.json"])), text.encode()


_ARROW_KINDS = ["str", "int", "float", "bool", "bin", "ts", "ts_tz", "date", "dict", "list", "null", "u64",
                "decimal", "duration"]


def _arrow_column(kind: str, n: int, draw: st.DrawFn) -> pa.Array:
    ints = st.lists(st.integers(-2**62, 2**62), min_size=n, max_size=n)
    if kind == "str":
        return pa.array(draw(st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=n, max_size=n)), pa.string())
    if kind == "int":
        return pa.array(draw(ints), pa.int64())
    if kind == "float":
        return pa.array(draw(st.lists(st.floats(), min_size=n, max_size=n)), pa.float64())
    if kind == "bool":
        return pa.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if kind == "bin":
        return pa.array(draw(st.lists(st.binary(max_size=4), min_size=n, max_size=n)), pa.binary())
    if kind in ("ts", "ts_tz"):
        return pa.array(draw(ints), pa.timestamp("ns", tz="UTC" if kind == "ts_tz" else None))
    if kind == "date":
        return pa.array(draw(st.lists(st.integers(-10**6, 10**6), min_size=n, max_size=n)), pa.date32())
    if kind == "dict":
        return pa.array(draw(st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n)),
                        pa.string()).dictionary_encode()
    if kind == "list":
        return pa.array(draw(st.lists(st.lists(st.integers(0, 5), max_size=2), min_size=n, max_size=n)))
    if kind == "u64":
        return pa.array(draw(st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n)), pa.uint64())
    if kind == "decimal":
        return pa.array(draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n)), pa.int64()).cast(
            pa.decimal128(38, 0))
    if kind == "duration":
        return pa.array(draw(st.lists(st.integers(0, 10**12), min_size=n, max_size=n)), pa.duration("s"))
    return pa.nulls(n)


@st.composite
def parquet(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real Parquet file: the usual columns, each of a random Arrow type (or the right one with junk in it)."""
    n = draw(st.integers(0, 8))
    names = draw(st.lists(st.sampled_from(HEADERS[:-1]), min_size=1, max_size=4, unique=True))
    columns = {}
    for name in names:
        if draw(st.booleans()) and n:  # the right type, with nulls and junk
            good = [_good_row(k)[{"user_id": 0, "item_id": 1, "timestamp": 2}.get(name, 3)] for k in range(n)]
            good[draw(st.integers(0, n - 1))] = draw(st.one_of(st.none(), st.sampled_from(JUNK)))
            columns[name] = pa.array(good, pa.string())
        else:
            columns[name] = _arrow_column(draw(st.sampled_from(_ARROW_KINDS)), n, draw)
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return draw(st.sampled_from(["log.parquet", "log.pq", "events"])), buf.getvalue()


def _valid_files() -> list[tuple[str, bytes]]:
    rows = [_good_row(k) for k in range(24)]
    csv = "user_id,item_id,timestamp,rating\n" + "\n".join(",".join(r) for r in rows)
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"]).astype({"timestamp": "int64"})
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    jl = "\n".join(json.dumps({"user": r[0], "item": r[1], "ts": int(r[2])}) for r in rows)
    udata = "\n".join("\t".join([r[0][1:], r[1][1:], r[3], r[2]]) for r in rows)
    seq = "\n".join(" ".join(str(u * 10 + j) for j in range(4 + u)) for u in range(1, 7))  # lengths vary, as in S3-Rec
    return [("log.csv", csv.encode()), ("log.tsv", csv.replace(",", "\t").encode()), ("log.parquet", buf.getvalue()),
            ("log.jsonl", jl.encode()), ("u.data", udata.encode()), ("ratings.dat", udata.replace("\t", "::").encode()),
            ("ratings.csv",
             csv.replace("user_id,item_id,timestamp,rating", "userId,movieId,timestamp,rating").encode()),
            ("Beauty.txt", seq.encode())]


VALID = _valid_files()


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid file (maybe gzipped or zipped) truncated, with bytes flipped or junk inserted."""
    name, data = draw(st.sampled_from(VALID))
    wrap = draw(st.sampled_from(["none", "none", "gzip", "zip"]))
    if wrap == "gzip":
        name, data = name + ".gz", gzip.compress(data)
    elif wrap == "zip":
        name, data = "upload.zip", zip_bytes({name: data})
    action = draw(st.sampled_from(["truncate", "truncate", "flip", "insert"]))
    if action == "truncate":
        return name, data[:draw(st.integers(0, len(data)))]
    buf = bytearray(data)
    if action == "flip":
        for _ in range(draw(st.integers(1, 4))):
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
        return name, bytes(buf)
    at = draw(st.integers(0, len(buf)))
    return name, bytes(buf[:at]) + draw(st.binary(min_size=1, max_size=12)) + bytes(buf[at:])


MEMBER_NAMES = ["ratings.dat", "u.data", "log.csv", "ml/ratings.csv", "../ratings.csv", "/etc/ratings.csv",
                "a/../../log.csv", "C:\\log.csv", "..\\log.csv", "movies.csv", "u.item", "__MACOSX/._log.csv",
                "notes.md", "dir/", ".hidden.csv", "second.csv"]


@st.composite
def zips(draw: st.DrawFn) -> tuple[str, bytes]:
    """Zips of valid and junk members under ordinary and hostile names."""
    members: dict[str, bytes] = {}
    for member in draw(st.lists(st.sampled_from(MEMBER_NAMES), min_size=0, max_size=4, unique=True)):
        members[member] = draw(st.one_of(st.sampled_from([d for _, d in VALID]), st.binary(max_size=30)))
    return "upload.zip", zip_bytes(members)


def _gzip(data: bytes, draw: st.DrawFn) -> bytes:
    """A gzip of ``data``: one member, two concatenated members, or with bytes after the end."""
    shape = draw(st.sampled_from(["one", "one", "members", "trailing"]))
    if shape == "members" and len(data) > 1:
        cut = draw(st.integers(1, len(data) - 1))
        return gzip.compress(data[:cut]) + gzip.compress(data[cut:])
    packed = gzip.compress(data, compresslevel=draw(st.integers(1, 9)))
    return packed + draw(st.binary(min_size=1, max_size=8)) if shape == "trailing" else packed


@st.composite
def compressed(draw: st.DrawFn) -> tuple[str, bytes]:
    """A log with junk in it (any text format), packed in one or two containers, the outer one maybe damaged."""
    name, data = draw(st.one_of(delimited(), jsonl(), seqtxt(), movielens(), st.sampled_from(VALID)))
    for layer in draw(st.lists(st.sampled_from(["gzip", "zip", "gzip_member"]), min_size=1, max_size=2)):
        if layer == "gzip":
            name, data = name + ".gz", _gzip(data, draw)
        elif layer == "zip":
            name, data = "upload.zip", zip_bytes({Path(name).name: data})
        else:  # a gzipped log inside a zip, as some exports ship it
            name, data = "upload.zip", zip_bytes({Path(name).name + ".gz": _gzip(data, draw)})
    action = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if action == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif action == "flip" and data:
        buf = bytearray(data)
        buf[draw(st.integers(0, len(buf) - 1))] ^= draw(st.integers(1, 255))
        data = bytes(buf)
    return name, data


# ------------------------------------------------------------------------------------------------------- tests

@fuzz(150)
@given(st.binary(max_size=400), st.sampled_from(["log.csv", "log.parquet", "log.jsonl", "u.data", "ratings.dat",
                                                 "Beauty.txt", "upload.zip", "log.gz", "log"]),
       st.sampled_from(FORMATS))
def test_random_bytes(data: bytes, name: str, fmt: str) -> None:
    check_loader(name, data, fmt)


@fuzz(150)
@given(st.sampled_from([b"PK\x03\x04", b"\x1f\x8b", b"PAR1", b"\xef\xbb\xbf", b"\xff\xfe", b"\xd0\xcf\x11\xe0",
                        b"{", b"["]), st.binary(max_size=300), st.sampled_from(FORMATS))
def test_random_bytes_behind_magic_numbers(magic: bytes, rest: bytes, fmt: str) -> None:
    check_loader("upload.bin", magic + rest, fmt)


@fuzz(200)
@given(delimited(), st.sampled_from(["auto", "auto", "csv", "tsv"]))
def test_csv_tsv_with_junk(file: tuple[str, bytes], fmt: str) -> None:
    check_loader(file[0], file[1], fmt)


@fuzz(150)
@given(movielens(), st.sampled_from(["auto", "movielens"]))
def test_movielens_with_junk(file: tuple[str, bytes], fmt: str) -> None:
    check_loader(file[0], file[1], fmt)


@fuzz(150)
@given(seqtxt(), st.sampled_from(["auto", "seqtxt"]))
def test_sequence_text_with_junk(file: tuple[str, bytes], fmt: str) -> None:
    check_loader(file[0], file[1], fmt)


@fuzz(150)
@given(jsonl(), st.sampled_from(["auto", "jsonl"]))
def test_jsonl_with_junk(file: tuple[str, bytes], fmt: str) -> None:
    check_loader(file[0], file[1], fmt)


@fuzz(120)
@given(parquet(), st.sampled_from(["auto", "parquet"]))
def test_parquet_of_any_arrow_types(file: tuple[str, bytes], fmt: str) -> None:
    check_loader(file[0], file[1], fmt)


@fuzz(250)
@given(damaged())
def test_truncated_and_corrupted_valid_files(file: tuple[str, bytes]) -> None:
    check_loader(*file)


@fuzz(120)
@given(zips())
def test_zips_with_hostile_members(file: tuple[str, bytes]) -> None:
    events = check_loader(*file)
    names = zipfile.ZipFile(io.BytesIO(file[1])).namelist()
    if events is not None:  # accepted only when no member name is absolute or climbs out with '..'
        assert not any(m.startswith(("/", "\\")) or ".." in m.replace("\\", "/").split("/") or m[1:2] == ":"
                       for m in names), names


@fuzz(200)
@given(compressed())
def test_compressed_and_nested_logs_with_junk(file: tuple[str, bytes]) -> None:
    """Every container path (streamed twice, measured, unpacked) ends in a table or one InputError line."""
    check_loader(*file)


@fuzz(60)
@given(compressed(), st.sampled_from(["0.0005", "0.002", "0.01"]), st.sampled_from(["SEQREC_MAX_LINE_MB",
                                                                                    "SEQREC_MEMORY_BUDGET_MB",
                                                                                    "SEQREC_MAX_UNPACKED_MB"]))
def test_compressed_logs_under_tiny_limits(file: tuple[str, bytes], limit: str, env: str) -> None:
    """With a bound lowered to a few hundred bytes, the refusals come from the streaming checks at any point of
    any container: still a table or one InputError line, never another exception."""
    old = os.environ.get(env)
    os.environ[env] = limit if env != "SEQREC_MEMORY_BUDGET_MB" else str(float(limit) + 16)  # 16 MB: the constant
    try:
        check_loader(*file)
    finally:
        if old is None:
            del os.environ[env]
        else:
            os.environ[env] = old


def test_every_valid_file_loads() -> None:
    """The seeds of the damage strategy really are valid, so the fuzzing starts from accepted inputs."""
    for name, data in VALID:
        events = check_loader(name, data)
        assert events is not None and len(events) >= 24, name


def test_path_loader_with_junk_titles_file_beside_it(tmp_path: Path) -> None:
    """``load_events(path)`` picks up movies.csv beside ratings.csv; a junk one is a one-line refusal too."""
    name, data = next(v for v in VALID if v[0] == "ratings.csv")
    (tmp_path / name).write_bytes(data)
    for junk in (b"", b"\x00\x01binary", b"movieId,title\n", b"movieId,title\n999,Other\n", np.arange(9).tobytes()):
        (tmp_path / "movies.csv").write_bytes(junk)
        try:
            events = load_events(tmp_path / name)
        except InputError as err:
            _assert_refusal(err, "movies.csv")
        else:
            _assert_canonical(events)


@fuzz(120)
@given(st.sampled_from(["movies.csv", "movies.dat", "u.item", "items.csv"]),
       st.one_of(st.binary(max_size=200), delimited().map(lambda f: f[1]),
                 st.lists(st.tuples(st.integers(0, 30), st.text(max_size=8), junk_cell), max_size=6).map(
                     lambda rows: "\n".join(f"{a}::{b}::{c}" for a, b, c in rows).encode())))
def test_item_titles_file_with_junk(meta_name: str, meta: bytes) -> None:
    """A titles file beside a valid log: titles attached, or a refusal naming the titles file."""
    name, data = VALID[0]
    try:
        events = load_events_bytes(name, data, extra_files={meta_name: meta})
    except InputError as err:
        _assert_refusal(err, meta_name)
    else:
        _assert_canonical(events)
        assert len(events) == 24


@fuzz(120)
@given(st.sampled_from(VALID[:5]), st.dictionaries(
    st.sampled_from(["user", "item", "time", "rating", "title", "category", "event_type"]),
    st.one_of(st.sampled_from(["", "0", "1", "3", "99", "user_id", "ITEM_ID", " timestamp ", "rating", "ts", "nope",
                               "1" * 5000, "²", "-1"]),
              st.text(max_size=5)), max_size=4))
def test_column_overrides_of_any_kind(file: tuple[str, bytes], overrides: dict[str, str]) -> None:
    """--user-col/--item-col/... with any value: a canonical table or a refusal naming the file."""
    from seqrec_core.data.schema import ColumnMap

    try:
        events = load_events_bytes(file[0], file[1], columns=ColumnMap(**overrides))
    except InputError as err:
        _assert_refusal(err, file[0])
    else:
        _assert_canonical(events)
