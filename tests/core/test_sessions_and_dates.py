"""Real log shapes read right: session clickstreams (anonymous "NA" users, a date plus a finer offset), one date
order per column, times of day refused as times, one unit per unix-time column, one id for 7 and 7.0, and a
column called "time" never taken as the rating."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from session_logs import KNOWN_USERS, diginetica_like, yoochoose_like  # noqa: E402

from seqrec_core.data.dataset import dataset_from_events
from seqrec_core.data.loaders import load_events_bytes, read_raw_table
from seqrec_core.data.schema import ColumnMap, detect_columns
from seqrec_core.errors import InputError


def sequences(events: pd.DataFrame) -> dict[str, list[str]]:
    return {u: g["item_id"].tolist() for u, g in events.groupby("user_id", sort=False)}


# ------------------------------------------------------------------------------------------------ sessions

@pytest.mark.parametrize(("name", "make"), [("train-item-views.csv", diginetica_like), ("yoochoose-clicks.dat",
                                                                                        yoochoose_like)])
def test_session_logs_load_as_sessions_in_time_order(name: str, make) -> None:  # noqa: ANN001
    data, true_order = make()
    events = load_events_bytes(name, data)
    got = sequences(events)
    assert "NA" not in got and not any(u.lower() == "na" for u in got)
    assert got == true_order  # one sequence per session, events in the order of the time columns, not the file
    report = dataset_from_events(events, name).report
    assert any("each sequence is one session" in w for w in report.warnings), report.warnings


def test_diginetica_date_and_timeframe_make_one_timestamp() -> None:
    data, _ = diginetica_like()
    raw = read_raw_table("train-item-views.csv", data)
    cols = detect_columns(raw, source="train-item-views.csv")
    assert (cols.user, cols.session, cols.time, cols.time_detail) == ("session_id", "session_id", "eventdate",
                                                                     "timeframe")
    events = load_events_bytes("train-item-views.csv", data)
    first = raw.iloc[0]
    row = events[(events["user_id"] == first["session_id"]) & (events["item_id"] == first["item_id"])].iloc[0]
    expected = pd.Timestamp(first["eventdate"], tz="UTC") + pd.Timedelta(milliseconds=int(first["timeframe"]))
    assert row["timestamp"] == expected
    notes = events.attrs["load_notes"]
    assert any("'eventdate' + 'timeframe' (milliseconds)" in n for n in notes), notes


def test_choosing_users_keeps_anonymous_rows_as_their_sessions() -> None:
    data, true_order = diginetica_like()
    events = load_events_bytes("views.csv", data, columns=ColumnMap(user="user_id", session="session_id"))
    got = sequences(events)
    assert set(KNOWN_USERS) <= set(got)  # logged-in visitors followed across their sessions
    assert "NA" not in got
    anonymous = [u for u in got if u.startswith("session ")]
    assert anonymous and all(got[u] == true_order[u.removeprefix("session ")] for u in anonymous)
    notes = " ".join(events.attrs["load_notes"])
    assert "have no user id ('user_id')" in notes and "sessions ('session_id')" in notes


def test_missing_user_ids_without_sessions_are_dropped_and_counted() -> None:
    rows = "".join(f"u{k % 4},i{k % 7},{1_700_000_000 + 60 * k}\n" for k in range(40))
    log = ("user_id,item_id,timestamp\n" + rows + "NA,i1,1700009000\n,i2,1700009100\nnull,i3,1700009200\n").encode()
    events = load_events_bytes("log.csv", log)
    assert set(events["user_id"]) == {"u0", "u1", "u2", "u3"}
    ds = dataset_from_events(events, "log.csv")
    step = ds.report.steps[0]
    assert (step.step, step.rows_dropped) == ("no user id", 3)
    assert ds.report.rows_in == 43 and ds.report.rows_out == 40
    assert any("3 events (7%) have no user id" in w for w in ds.report.warnings), ds.report.warnings


def test_a_mostly_present_user_column_stays_the_sequence_key() -> None:
    log = "session_id,user_id,item_id,timestamp\n" + "".join(
        f"s{k // 5},{'NA' if k % 10 == 0 else f'u{k % 3}'},i{k % 9},{1_700_000_000 + k}\n" for k in range(60))
    cols = detect_columns(read_raw_table("log.csv", log.encode()), source="log.csv")
    assert (cols.user, cols.session) == ("user_id", "session_id")


def test_date_only_time_is_named_and_its_ties_explained() -> None:
    log = "user,item,date\n" + "".join(f"u{k % 3},i{k},2024-01-{1 + k // 6:02d}\n" for k in range(30))
    events = load_events_bytes("log.csv", log.encode())
    assert any("holds dates without a time of day" in n for n in events.attrs["load_notes"])


def test_date_and_clock_columns_combine() -> None:
    log = "user,item,date,time\n" + "".join(
        f"u{k % 2},i{k},2024-03-0{1 + k % 3},{10 + k}:{k:02d}\n" for k in range(12))
    cols = detect_columns(read_raw_table("log.csv", log.encode()), source="log.csv")
    assert (cols.time, cols.time_detail) == ("date", "time")
    events = load_events_bytes("log.csv", log.encode())
    assert pd.Timestamp("2024-03-01 10:00", tz="UTC") in set(events["timestamp"])


# ------------------------------------------------------------------------------------------------ dates

def test_day_first_is_decided_once_for_the_whole_column() -> None:
    log = b"user,item,time\nu1,a,01/02/2024\nu1,b,13/02/2024\nu1,c,02/03/2024\n"
    events = load_events_bytes("log.csv", log)
    assert events["item_id"].tolist() == ["a", "b", "c"]
    assert events["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2024-02-01", "2024-02-13", "2024-03-02"]


def test_both_date_orders_in_one_column_are_refused_with_a_row_of_each() -> None:
    log = b"user,item,time\nu1,a,13/02/2024\nu1,b,02/13/2024\nu1,c,01/01/2024\n"
    with pytest.raises(InputError) as info:
        load_events_bytes("log.csv", log)
    message = str(info.value)
    assert "line 2" in message and "line 3" in message and "one date order" in message and "\n" not in message


def test_an_ambiguous_date_column_is_reported() -> None:
    log = b"user,item,time\nu1,a,01/02/2024\nu1,b,03/04/2024\nu1,c,05/06/2024\n"
    events = load_events_bytes("log.csv", log)
    assert events["timestamp"].dt.month.tolist() == [1, 3, 5]  # month-first, and said so
    assert any("fit both day-first and month-first" in n for n in events.attrs["load_notes"])


@pytest.mark.parametrize("clock", ["01:30", "23:59:59", "7:05:00.250"])
def test_times_of_day_are_never_stamped_with_today(clock: str) -> None:
    log = f"user,item,timestamp\nu1,a,{clock}\nu1,b,{clock}\nu1,c,{clock}\n".encode()
    with pytest.raises(InputError) as info:
        load_events_bytes("log.csv", log)
    assert "line 2" in str(info.value) and "time of day without a date" in str(info.value)


def test_parquet_time32_is_refused_as_a_time() -> None:
    import datetime as dt

    table = pa.table({"user_id": ["u1"] * 3, "item_id": ["a", "b", "c"],
                      "timestamp": pa.array([dt.time(1, 30), dt.time(2, 0), dt.time(3, 0)], pa.time32("s"))})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    with pytest.raises(InputError) as info:
        load_events_bytes("log.parquet", buf.getvalue())
    assert "row 1" in str(info.value) and "time of day without a date" in str(info.value)


def test_seconds_and_milliseconds_mixed_name_the_row() -> None:
    log = b"user,item,ts\nu1,a,1700000000\nu1,b,1700000100\nu1,c,1700000200000\nu1,d,1700000300\n"
    with pytest.raises(InputError) as info:
        load_events_bytes("log.csv", log)
    message = str(info.value)
    assert "line 4" in message and "milliseconds" in message and "seconds" in message and "one unit" in message


# ------------------------------------------------------------------------------------------------ ids, ratings

def test_seven_and_seven_point_zero_are_one_id_in_csv_as_in_jsonl() -> None:
    csv_log = b"user,item,ts\n7,1,1700000000\n7.0,2.0,1700000100\n7,3,1700000200\n"
    jsonl = "".join(json.dumps(r) + "\n" for r in [{"user": 7, "item": 1, "ts": 1700000000},
                                                   {"user": 7.0, "item": 2.0, "ts": 1700000100},
                                                   {"user": 7, "item": 3, "ts": 1700000200}]).encode()
    from_csv, from_jsonl = load_events_bytes("log.csv", csv_log), load_events_bytes("log.jsonl", jsonl)
    assert from_csv["user_id"].tolist() == from_jsonl["user_id"].tolist() == ["7", "7", "7"]
    assert from_csv["item_id"].tolist() == from_jsonl["item_id"].tolist() == ["1", "2", "3"]
    versions = load_events_bytes("v.csv", b"user,item,ts\nu,v1.0,1700000000\nu,v1.00,1700000001\n")
    assert versions["item_id"].tolist() == ["v1.0", "v1.00"]  # text ids are kept as written


def test_a_column_called_time_is_not_the_rating() -> None:
    log = "user,item,timestamp,time\n" + "".join(f"u{k % 2},i{k},{1_700_000_000 + k},{k % 5}\n" for k in range(10))
    cols = detect_columns(read_raw_table("log.csv", log.encode()), source="log.csv")
    assert cols.time == "timestamp" and cols.rating is None


# ------------------------------------------------------------------------------------------------ the CLI

def test_cli_validate_reads_sessions_and_names_the_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from seqrec_core.cli import main

    data, true_order = diginetica_like()
    path = tmp_path / "train-item-views.csv"
    path.write_bytes(data)
    assert main(["validate", "--data", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["users"] == len(true_order) and any("each sequence is one session" in w for w in out["warnings"])
    assert main(["validate", "--data", str(path), "--user-col", "user_id", "--session-col", "session_id",
                 "--time-detail-col", "timeframe"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["users"] > len(KNOWN_USERS) and any("have no user id ('user_id')" in w for w in out["warnings"])


def test_cli_validate_refuses_a_log_no_model_can_learn_from(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from seqrec_core.cli import main

    path = tmp_path / "three.csv"
    path.write_text("user,item,timestamp\n" + "".join(f"u{u},i{(u + k) % 9},{1_700_000_000 + 10 * u + k}\n"
                                                     for u in range(30) for k in range(3)))
    assert main(["validate", "--data", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "at least 4 events" in captured.err and "longest has 3" in captured.err
