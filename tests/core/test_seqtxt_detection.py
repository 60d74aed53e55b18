"""Format detection between sequence text (``user item item ...``) and space-separated event tables when every
line has the same number of fields: sequences cut to one length must load as sequences, and a real
``user item time`` (or ``user item rating time``) log must stay a table."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from seqrec_core.data.loaders import detect_format, load_events, load_events_bytes

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _sequences(n_users: int, length: int, seed: int = 0) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    return {str(u): [str(i) for i in rng.integers(1, 5000, length)] for u in range(1, n_users + 1)}


def _as_seqtxt(seqs: dict[str, list[str]]) -> bytes:
    return "".join(f"{u} {' '.join(items)}\n" for u, items in seqs.items()).encode()


def _assert_sequences(events, seqs: dict[str, list[str]]) -> None:
    assert set(events["user_id"]) == set(seqs)
    for user, items in seqs.items():
        rows = events[events["user_id"] == user]
        assert rows["item_id"].tolist() == items
        assert rows["timestamp"].tolist() == list(range(len(items)))


@pytest.mark.parametrize("length", [3, 4, 10])
def test_sequences_of_one_length_load_as_sequence_text(length: int) -> None:
    seqs = _sequences(40, length)
    data = _as_seqtxt(seqs)
    assert detect_format("seqs.txt", data) == "seqtxt"
    _assert_sequences(load_events_bytes("seqs.txt", data), seqs)
    _assert_sequences(load_events_bytes("seqs.txt.gz", gzip.compress(data)), seqs)


def test_three_column_user_item_time_stays_a_table() -> None:
    """Events one per line: users repeat on consecutive lines, the third column is a unix time."""
    lines = ["1 10 1700000300", "1 11 1700000100", "2 10 1700000200", "3 12 1700000000", "3 10 1700000400"]
    data = ("\n".join(lines) + "\n").encode()
    assert detect_format("log.txt", data) == "csv"  # the CSV reader, splitting on runs of spaces
    events = load_events_bytes("log.txt", data)
    assert len(events) == 5 and events["user_id"].tolist() == ["1", "1", "2", "3", "3"]
    assert events["item_id"].tolist() == ["11", "10", "10", "12", "10"]  # sorted by time within each user
    assert events["timestamp"].dt.tz is not None and events["timestamp"].iloc[0].timestamp() == 1700000100
    # each user on one line only (a log sorted by time): three fields are still a table, not 2-item sequences
    data = b"1 10 1700000000\n2 11 1700000100\n3 12 1700000200\n"
    assert detect_format("log.txt", data) == "csv"


@pytest.mark.parametrize("data", [
    b"1 5 3 1700000000\n1 6 4 1700000100\n2 5 5 1700000200\n",  # a user on consecutive lines
    b"1 5 3 1700000000\n2 6 4 1700000100\n3 5 5 1700000200\n",  # one line per user, but a rating beside a time
    b"1 5 3 1700000000\n",  # (one line: it counts as sequence text, as before)
])
def test_four_column_event_rows_stay_a_table(data: bytes) -> None:
    expected = "seqtxt" if data.count(b"\n") == 1 else "csv"
    assert detect_format("log.txt", data) == expected
    if expected == "csv":
        events = load_events_bytes("log.txt", data)
        assert len(events) == data.count(b"\n")
        assert sorted(events["weight"].tolist()) == [3.0, 4.0, 5.0]


def test_tab_separated_integer_tables_and_headers_stay_tables() -> None:
    assert detect_format("data.txt", b"1\t2\t3\t4\t5\n6\t7\t8\t9\t10\n") == "tsv"
    assert detect_format("log.txt", b"user a b c d\n1 2 3 4 5\n6 7 8 9 10\n") == "csv"


def test_sequences_of_one_length_with_huge_ids_do_not_crash_detection() -> None:
    big = "9" * 5000  # more digits than Python's int() takes from text
    head = f"1 {big} 2 3 4\n2 5 6 7 8\n3 {big} 9 9 9\n".encode()[:8192]  # the last line is cut off
    assert detect_format("seqs.txt", head) == "seqtxt"


def test_real_beauty_cut_to_one_length(tmp_path: Path) -> None:
    path = SHARED / "amazon-beauty-s3" / "Beauty.txt"
    if not path.exists():
        pytest.skip("shared Beauty.txt not available")
    seqs = {}
    for line in path.read_text().splitlines()[:3000]:
        user, *items = line.split()
        if len(items) >= 6:
            seqs[user] = items[-6:]
    cut = tmp_path / "beauty_last6.txt"
    cut.write_bytes(_as_seqtxt(seqs))
    assert detect_format(cut.name, cut.read_bytes()[:8192]) == "seqtxt"
    _assert_sequences(load_events(cut), seqs)
