"""Sequence text whose ids are not integers (``u1 itemA itemB``): auto-detection picks ``seqtxt`` and the ids load
as strings (the canonical table's ids are strings); look-alike tables stay tables; and where a file cannot be
read this way, the one-line message says what is wrong and which --format to pass."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqrec_core.cli import main
from seqrec_core.data.loaders import detect_format, load_events, load_events_bytes, read_raw_table
from seqrec_core.errors import InputError

WORDS = b"u1 itemA itemB itemC\nu2 itemB itemC\nu3 itemA itemC itemD itemB\n"


def _items(events, user: str) -> list[str]:
    rows = events[events["user_id"] == user]
    assert rows["timestamp"].tolist() == list(range(len(rows)))  # file order becomes the event order
    return rows["item_id"].tolist()


def test_text_id_sequences_are_detected_and_load_as_strings() -> None:
    assert detect_format("seqs.txt", WORDS) == "seqtxt"
    events = load_events_bytes("seqs.txt", WORDS)
    assert str(events["timestamp"].dtype) == "int64"
    assert _items(events, "u1") == ["itemA", "itemB", "itemC"]
    assert _items(events, "u3") == ["itemA", "itemC", "itemD", "itemB"]
    assert list(read_raw_table("seqs.txt", WORDS).columns[:2]) == ["user_id", "item_id"]


def test_asin_like_ids_mixed_with_digits_load() -> None:
    """Amazon ids mix all-digit ISBNs and B0... ASINs: a legitimate file, not damage."""
    data = b"A1X B00ABC 0123456789 B00XYZ\nA2Y 0123456789 B00QQQ\nA3Z B00ABC B00QQQ B00XYZ 0987654321\n"
    assert detect_format("reviews_seq.txt", data) == "seqtxt"
    events = load_events_bytes("reviews_seq.txt", data)
    assert _items(events, "A1X") == ["B00ABC", "0123456789", "B00XYZ"]


def test_text_sequences_of_one_length_are_sequences() -> None:
    lines = [f"user{u} " + " ".join(f"sku{(u * 7 + j) % 50:03d}" for j in range(5)) for u in range(30)]
    data = ("\n".join(lines) + "\n").encode()
    assert detect_format("seqs.txt", data) == "seqtxt"
    assert len(load_events_bytes("seqs.txt", data)) == 150


@pytest.mark.parametrize("data", [
    b"u1 i1 click 2024-01-01T10:00:00Z\nu1 i2 view 2024-01-02T10:00:00Z\nu2 i1 click 2024-01-03T10:00:00Z\n",
    b"u1 i1 click 2024-01-01T10:00:00Z\nu2 i2 view 2024-01-02T10:00:00Z\nu3 i1 buy 2024-01-03T10:00:00Z\n",
    b"user item time\nu1 i1 1700000000\nu2 i2 1700000100\n",
    b"u1 i1 1700000000\nu2 i2 1700000100\nu3 i1 1700000200\n",
])
def test_space_separated_event_tables_stay_tables(data: bytes) -> None:
    """One event per line (a user repeating, a time column of another size, a header, three fields)."""
    assert detect_format("log.txt", data) == "csv"
    events = load_events_bytes("log.txt", data)
    assert len(events) == data.count(b"\n") - data.startswith(b"user")
    assert str(events["timestamp"].dtype).startswith("datetime64")


def test_cli_validate_on_text_id_sequences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "seq.txt"
    path.write_bytes(b"".join(f"u{u} a{u} b{u % 3} c d{u % 2}\n".encode() for u in range(6)) + WORDS)
    assert main(["validate", "--data", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    # u1-u3 appear in both blocks: a user on several lines continues, so 6 users, none too short
    assert report["users"] == 6 and report["events"] == 6 * 4 + 9 and report["time_span"] is None


def test_stray_text_token_in_integer_sequence_text_is_refused_unless_asked(tmp_path: Path) -> None:
    """SASRec-style integer files: a lone text token is more likely damage; --format seqtxt reads it anyway."""
    path = tmp_path / "Beauty.txt"
    path.write_bytes(b"1 10 11 12\n2 20 21\n3 30 abc 31\n4 40 41\n")
    with pytest.raises(InputError) as info:
        load_events(path)
    msg = str(info.value)
    assert "\n" not in msg and "Beauty.txt line 3" in msg and "'abc'" in msg and "--format seqtxt" in msg
    events = load_events(path, "seqtxt")
    assert _items(events, "3") == ["30", "abc", "31"]


def test_a_table_forced_as_sequence_text_names_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("u1 i1,2024-01-01\nu2 i2,2024-01-02\n")
    with pytest.raises(InputError) as info:
        load_events(path, "seqtxt")
    msg = str(info.value)
    assert "log.txt line 1" in msg and "'i1,2024-01-01'" in msg and "--format csv" in msg and "--user-col" in msg


def test_unsplit_lines_say_to_pass_seqtxt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A header above ragged sequences is not auto-detected; the refusal points at --format seqtxt instead of
    asking for a user column that the file does have."""
    path = tmp_path / "seq_with_header.txt"
    path.write_text("user items\nu1 a b c\nu2 d e\nu3 a e f g\n")
    assert main(["validate", "--data", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seq_with_header.txt" in err and "--format seqtxt" in err
    assert "single column" in err


def test_ragged_space_separated_rows_suggest_seqtxt() -> None:
    """A space-separated table whose first 50 lines agree and a later one does not: the row is named, and
    sequence text is offered as the other reading."""
    rows = [f"u{k} i{k} {1_700_000_000 + k}" for k in range(60)]
    rows[55] += " extra"
    with pytest.raises(InputError, match=r"log\.txt line 56: 4 fields where the first row has 3; pass --format seqtxt"):
        load_events_bytes("log.txt", ("\n".join(rows) + "\n").encode(), "csv")


def test_integer_sequence_text_is_unchanged() -> None:
    data = b"1 1 2 3 4 5\n2 6 7 8 9 10 4 11\n3 4 12 13\n"
    assert detect_format("Beauty.txt", data) == "seqtxt"
    assert _items(load_events_bytes("Beauty.txt", data), "2") == ["6", "7", "8", "9", "10", "4", "11"]
