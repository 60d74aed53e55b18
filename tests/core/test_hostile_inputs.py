"""Broken files must fail as a one-line InputError that names the file (and line/column where it matters).

``make_hostile_corpus`` is importable so CLI and app tests can feed the same files to ``validate`` or the
upload widget; ``HOSTILE_EXPECT`` lists the fragments each message must contain. Every case fails either in
``load_events`` or, for logs that load but cannot be evaluated, in ``prepare_events``.
"""
from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data.loaders import load_events, load_events_bytes
from seqrec_core.data.prep import prepare_events
from seqrec_core.errors import InputError

__all__ = ["HOSTILE_EXPECT", "make_hostile_corpus", "load_and_prepare"]

HEADER = "user_id,item_id,timestamp\n"
ROWS = "u1,i1,1700000000\nu1,i2,1700000100\nu2,i1,1700000200\n"

# case (file name) -> fragments the one-line message must contain (besides the file name)
HOSTILE_EXPECT: dict[str, list[str]] = {
    "empty.csv": ["empty"],
    "blank_lines.csv": ["empty"],
    "header_only.csv": ["no data rows"],
    "missing_item_column.csv": ["item column", "--item-col"],
    "binary_junk.csv": ["binary"],
    "bad_encoding.csv": ["line 3", "UTF-8"],
    "utf16_without_bom.csv": ["binary"],
    "bad_timestamp.csv": ["line 4", "'timestamp'", "yesterday"],
    "timestamp_out_of_range.csv": ["'timestamp'", "range"],
    "ragged_long_row.csv": ["line 3", "4 fields"],
    "ragged_short_row.csv": ["line 4", "2 fields"],
    "unclosed_quote.csv": ["line 3", "quote"],
    "empty_user_id.csv": ["'user_id'", "no row has a user id"],  # some missing: dropped, see test_sessions
    "bad_rating.csv": ["line 3", "'rating'", "five"],
    "empty_item_id.parquet": ["row 2", "'item_id'", "empty item id"],
    "broken.parquet": ["Parquet"],
    "broken.jsonl": ["line 2", "JSON"],
    "not_objects.jsonl": ["line 1", "object"],
    "non_integer_tokens.txt": ["line 3", "'abc'", "integer"],
    "spreadsheet.xlsx": ["Excel", "CSV"],
    "one_event_per_user.csv": ["fewer than 3 events"],
    "wrong_user_override.csv": ["'visitor'", "--user-col", "columns found"],
    "nan_ids.csv": ["'user_id'", "no row has a user id"],
    "nan_ids.parquet": ["'user_id'", "no row has a user id"],
    "only_user_column.csv": ["item column", "--item-col"],
    "prose.txt": ["reads like prose", "--format seqtxt"],  # words are fine as ids, sentences are not a log
    "latin1_bad_time.csv": ["line 3", "'timestamp'", "31.02.2024 25:00"],
    "truncated.parquet": ["Parquet"],
    "truncated.csv.gz": ["damaged gzip"],
    "traversal.zip": ["'../ratings.csv'", "'..'"],
    "absolute_path.zip": ["'/tmp/ratings.csv'", "absolute"],
    "zip_bomb.zip": ["more than 2,048 MB", "SEQREC_MAX_UNPACKED_MB"],
    "many_members.zip": ["1,001 files"],
    "two_logs.zip": ["2 data files"],
    "deep_nesting.json": ["not usable JSON", "recursion"],
    "huge_number.jsonl": ["line 2", "not usable JSON", "digits"],
    "too_many_columns.csv": ["1,001 columns", "at most 1,000"],
    "long_number_cell.csv": ["fewer than 3 events"],  # minutes in a backtracking regex before; now 0.2 s
}


def make_hostile_corpus(directory: Path) -> dict[str, Path]:
    """Write one small broken file per case of ``HOSTILE_EXPECT`` into ``directory``; returns name -> path.

    ``wrong_user_override.csv`` is a valid file meant to be loaded with ``--user-col visitor`` (a column it lacks).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    xlsx = io.BytesIO()
    with zipfile.ZipFile(xlsx, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    frame = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["i1", None, "i3"],
                          "timestamp": [1700000000, 1700000100, 1700000200]})
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    contents: dict[str, bytes] = {
        "empty.csv": b"",
        "blank_lines.csv": b"\n\n   \n\n",
        "header_only.csv": HEADER.encode(),
        "missing_item_column.csv": b"user_id,timestamp\nu1,2024-01-01T10:00:00Z\nu2,2024-01-02T10:00:00Z\n",
        "binary_junk.csv": rng.bytes(4096),
        "bad_encoding.csv": (HEADER + "u1,i1,1700000000\n").encode() + b"u2,caf\x81\x8d\x01,1700000001\n",
        "utf16_without_bom.csv": (HEADER + ROWS).encode("utf-16-le"),
        "bad_timestamp.csv": (HEADER + "u1,i1,2024-01-01T10:00:00Z\nu1,i2,2024-01-02T10:00:00Z\n"
                              "u2,i3,yesterday\n").encode(),
        "timestamp_out_of_range.csv": (HEADER + "u1,i1,1e20\nu1,i2,2e20\nu1,i3,3e20\n").encode(),
        "ragged_long_row.csv": (HEADER + "u1,i1,1700000000\nu1,i2,1700000100,extra\n").encode(),
        "ragged_short_row.csv": (HEADER + "u1,i1,1700000000\nu1,i2,1700000100\nu2,i3\n").encode(),
        "unclosed_quote.csv": (HEADER + 'u1,i1,1700000000\nu2,"i2,1700000001\nu3,i3,1700000002\n').encode(),
        "empty_user_id.csv": (HEADER + " ,i1,1700000000\n,i2,1700000100\n,i3,1700000200\n").encode(),
        "bad_rating.csv": b"user_id,item_id,rating,timestamp\nu1,i1,4,1700000000\nu1,i2,five,1700000100\n",
        "empty_item_id.parquet": parquet.getvalue(),
        "broken.parquet": b"PAR1" + rng.bytes(200) + b"PAR1",
        "broken.jsonl": b'{"user": "u1", "item": "i1", "ts": 1700000000}\n{"user": "u1", "item": \n',
        "not_objects.jsonl": b"1\n2\n3\n",
        "non_integer_tokens.txt": b"1 10 11 12\n2 20 21\n3 30 abc 31\n4 40 41\n",
        "spreadsheet.xlsx": xlsx.getvalue(),
        "one_event_per_user.csv": (HEADER + "".join(f"u{k},i{k % 3},{1700000000 + k}\n" for k in range(10))).encode(),
        "wrong_user_override.csv": (HEADER + ROWS).encode(),
        "nan_ids.csv": (HEADER + "NaN,i1,1700000000\nNaN,i2,1700000100\nNA,i3,1700000200\n").encode(),
        "nan_ids.parquet": _parquet({"user_id": [float("nan")] * 3, "item_id": ["i1", "i2", "i3"],
                                     "timestamp": [1700000000, 1700000100, 1700000200]}),
        "only_user_column.csv": b"user_id\nu1\nu2\nu3\n",
        "prose.txt": b"hello world\nthis is not a sequence file\n",
        "latin1_bad_time.csv": (HEADER + "caf\u00e9,i1,01.02.2024 10:00\n"
                                "na\u00efve,i2,31.02.2024 25:00\n").encode("cp1252"),
        "deep_nesting.json": b"[" * 100_000 + b"]" * 100_000,
        "huge_number.jsonl": b'{"user": "u1", "item": "i1", "ts": 1700000000}\n{"user": "u1", "item": "i2", "ts": '
                             + b"1" * 5000 + b"}\n",
        "too_many_columns.csv": (",".join(f"c{j}" for j in range(1001)) + "\n" + ",".join("1" * 1001) + "\n").encode(),
        "long_number_cell.csv": b"u1,i1," + b"1" * 100_000 + b"x\nu1,i2,5\nu2,i3,7\n",
    }
    contents.update(_hostile_containers(parquet.getvalue()))
    assert set(contents) == set(HOSTILE_EXPECT)
    paths = {}
    for name, data in contents.items():
        (directory / name).write_bytes(data)
        paths[name] = directory / name
    return paths


def _parquet(columns: dict) -> bytes:
    buf = io.BytesIO()
    pd.DataFrame(columns).to_parquet(buf, index=False)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A deflated zip archive of ``members`` (name -> bytes), in memory; the fuzz tests build theirs with it too."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return buf.getvalue()


def _hostile_containers(valid_parquet: bytes) -> dict[str, bytes]:
    """Damaged and hostile gzip/zip/Parquet containers around otherwise fine logs."""
    log = (HEADER + ROWS * 3).encode()
    bomb = bytearray(zip_bytes({"ratings.csv": log}))
    for sig, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):  # directory claims ~4 GB unpacked
        at = bomb.find(sig) + offset
        bomb[at:at + 4] = struct.pack("<I", 0xFFFFFFF0)
    return {
        "truncated.parquet": valid_parquet[: len(valid_parquet) // 2],
        "truncated.csv.gz": gzip.compress(log)[:40],
        "traversal.zip": zip_bytes({"../ratings.csv": log}),
        "absolute_path.zip": zip_bytes({"/tmp/ratings.csv": log}),
        "zip_bomb.zip": bytes(bomb),
        "many_members.zip": zip_bytes({f"part{k}.txt": b"" for k in range(1001)}),
        "two_logs.zip": zip_bytes({"a.csv": log, "b.csv": log}),
    }


def load_and_prepare(path: Path) -> None:
    """What ``validate`` does with a file: load, then clean (users need >= 3 events)."""
    from seqrec_core.data.schema import ColumnMap

    columns = ColumnMap(user="visitor") if path.name == "wrong_user_override.csv" else None
    events = load_events(path, columns=columns)
    prepare_events(events, source=path.name)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_hostile_corpus(tmp_path_factory.mktemp("hostile"))


def _check(message: str, name: str) -> None:
    assert "\n" not in message and message.strip() == message
    assert name in message, message
    for fragment in HOSTILE_EXPECT[name]:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert "Traceback" not in message and len(message) < 400


def test_corpus_has_at_least_twelve_distinct_cases(corpus: dict[str, Path]) -> None:
    assert len(corpus) >= 12
    assert len({p.read_bytes() for p in corpus.values()}) >= 12


@pytest.mark.parametrize("name", sorted(HOSTILE_EXPECT))
def test_file_path_fails_with_one_line_input_error(corpus: dict[str, Path], name: str) -> None:
    with pytest.raises(InputError) as info:
        load_and_prepare(corpus[name])
    _check(str(info.value), name)


@pytest.mark.parametrize("name", sorted(HOSTILE_EXPECT))
def test_upload_bytes_fail_the_same_way(corpus: dict[str, Path], name: str) -> None:
    from seqrec_core.data.schema import ColumnMap

    columns = ColumnMap(user="visitor") if name == "wrong_user_override.csv" else None
    with pytest.raises(InputError) as info:
        events = load_events_bytes(name, corpus[name].read_bytes(), columns=columns)
        prepare_events(events, source=name)
    _check(str(info.value), name)


def test_unknown_format_and_missing_file_are_input_errors(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(HEADER + ROWS)
    with pytest.raises(InputError, match="unknown format 'xls'"):
        load_events(path, fmt="xls")
    with pytest.raises(InputError, match="does not exist"):
        load_events(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="folder"):
        load_events(tmp_path)


def test_forced_wrong_format_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(HEADER + ROWS)
    for fmt in ("parquet", "jsonl", "seqtxt"):
        with pytest.raises(InputError, match="log.csv"):
            load_events(path, fmt=fmt)


def test_decompression_stops_at_the_configured_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gzip and zip bombs are cut off at SEQREC_MAX_UNPACKED_MB, whether or not the zip's directory tells the truth."""
    monkeypatch.setenv("SEQREC_MAX_UNPACKED_MB", "1")
    big = (HEADER + ROWS * 40_000).encode()  # ~2 MB of text, a few KB compressed
    assert len(big) > 2**20
    with pytest.raises(InputError, match=r"log\.csv\.gz unpacks to more than 1 MB"):
        load_events_bytes("log.csv.gz", gzip.compress(big))
    with pytest.raises(InputError, match=r"up\.zip unpacks to more than 1 MB"):
        load_events_bytes("up.zip", zip_bytes({"ratings.csv": big}))
    lying = bytearray(zip_bytes({"ratings.csv": big}))  # directory claims 1,000 bytes: the read itself must stop
    for sig, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        at = lying.find(sig) + offset
        lying[at:at + 4] = struct.pack("<I", 1000)
    with pytest.raises(InputError, match=r"up\.zip"):
        load_events_bytes("up.zip", bytes(lying))
    monkeypatch.setenv("SEQREC_MAX_UNPACKED_MB", "10")
    assert len(load_events_bytes("log.csv.gz", gzip.compress(big))) == 3 * 40_000


def test_zip_member_count_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    members = {"ratings.csv": (HEADER + ROWS).encode(), **{f"readme{k}.md": b"" for k in range(5)}}
    assert len(load_events_bytes("up.zip", zip_bytes(members))) == 3
    monkeypatch.setenv("SEQREC_MAX_ZIP_MEMBERS", "3")
    with pytest.raises(InputError, match=r"up\.zip holds 6 files \(at most 3"):
        load_events_bytes("up.zip", zip_bytes(members))


@pytest.mark.parametrize("member", ["../ratings.csv", "a/../../ratings.csv", "/etc/ratings.csv", "C:\\ratings.csv",
                                    "..\\ratings.csv"])
def test_zip_members_that_climb_out_or_are_absolute_are_refused(member: str) -> None:
    with pytest.raises(InputError, match=r"up\.zip contains the path"):
        load_events_bytes("up.zip", zip_bytes({member: (HEADER + ROWS).encode()}))


def test_errors_inside_a_zip_name_the_upload_and_the_member() -> None:
    members = {"ml/ratings.csv": (HEADER + ROWS).encode(), "ml/movies.csv": b"\x00\x01"}
    with pytest.raises(InputError) as info:
        load_events_bytes("ml-small.zip", zip_bytes(members))
    assert str(info.value).startswith("ml-small.zip: movies.csv line 1")


def test_impossible_paths_are_input_errors() -> None:
    """A path too long for the file system raises OSError from a mere stat; the loader turns it into one line."""
    with pytest.raises(InputError, match="cannot read"):
        load_events("a" * 5000 + ".csv")
