"""Every format loads into the same canonical table; columns are found by name, content or override."""
from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data.loaders import detect_format, load_events, load_events_bytes, read_raw_table
from seqrec_core.data.schema import ColumnMap, detect_columns
from seqrec_core.errors import InputError

SHARED = Path(__file__).parents[3] / "shared" / "data"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
ROWS = [("u2", "b", T0 + 50), ("u1", "a", T0 + 10), ("u1", "c", T0), ("u2", "a", T0 + 20), ("u1", "b", T0 + 10)]


def _expected() -> pd.DataFrame:
    """ROWS in canonical order: by user, then time; the two u1 events at T0+10 keep file order (a before b)."""
    return pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2", "u2"], "item_id": ["c", "a", "b", "a", "b"],
                         "timestamp": pd.to_datetime([T0, T0 + 10, T0 + 10, T0 + 20, T0 + 50], unit="s", utc=True)})


def _check(events: pd.DataFrame, expected: pd.DataFrame | None = None) -> None:
    expected = _expected() if expected is None else expected
    assert list(events.columns[:3]) == ["user_id", "item_id", "timestamp"]
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert pd.api.types.is_string_dtype(events["user_id"]) and pd.api.types.is_string_dtype(events["item_id"])
    assert events["user_id"].tolist() == expected["user_id"].tolist()
    assert events["item_id"].tolist() == expected["item_id"].tolist()
    assert (events["timestamp"] == expected["timestamp"]).all()


def _csv(rows=ROWS, header="user_id,item_id,timestamp", sep=",") -> bytes:
    lines = [header] if header else []
    lines += [sep.join(map(str, r)) for r in rows]
    return ("\n".join(lines) + "\n").encode()


# ------------------------------------------------------------------------------------------------ formats

@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimited_text_with_sniffed_delimiter(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(_csv(header=sep.join(["user_id", "item_id", "timestamp"]), sep=sep))
    _check(load_events(path))


def test_tsv_extension_headerless_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    path.write_bytes(_csv(header="", sep="\t").replace(b"\n", b"\r\n"))
    _check(load_events(path))  # no header: user, item by position, time by content


def test_parquet_with_native_types(tmp_path: Path) -> None:
    frame = pd.DataFrame({"visitorid": [2, 1, 1, 2, 1], "itemid": ["b", "a", "c", "a", "b"],
                          "timestamp": pd.to_datetime([r[2] for r in ROWS], unit="s")})  # naive = UTC
    frame["visitorid"] = frame["visitorid"].map({1: "u1", 2: "u2"})
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    _check(load_events(path))
    ints = pd.DataFrame({"user": [1, 1, 2], "item": [10, 11, 10], "ts": [T0, T0 + 1, T0 + 2]})
    ints.to_parquet(path)
    events = load_events(path)
    assert events["user_id"].tolist() == ["1", "1", "2"] and events["item_id"].tolist() == ["10", "11", "10"]


def test_jsonl_and_json_array(tmp_path: Path) -> None:
    records = [{"user": u, "item": i, "time": t, "extra": {"x": 1}} for u, i, t in ROWS]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    _check(load_events(path))
    path = tmp_path / "log.json"
    path.write_text(json.dumps(records, indent=1))
    _check(load_events(path))


def test_jsonl_mixed_int_and_string_ids_become_the_same_strings(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"user_id": 7, "item_id": 3.0, "ts": 1}\n{"user_id": "7", "item_id": "3", "ts": 2}\n')
    events = load_events(path)
    assert events["user_id"].tolist() == ["7", "7"] and events["item_id"].tolist() == ["3", "3"]


def test_movielens_100k_with_u_item(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250900\n")
    flags = ["0"] * 19
    toy, other = flags.copy(), flags.copy()
    toy[3] = toy[4] = "1"  # Animation, Children's
    other[8] = "1"  # Drama
    (tmp_path / "u.item").write_bytes(
        ("242|Kolya (1996)|24-Jan-1997||http://x|" + "|".join(other) + "\n"
         "302|L.A. Confidential (1997)|01-Jan-1997||http://y|" + "|".join(toy) + "\n").encode("latin-1"))
    events = load_events(tmp_path / "u.data")
    assert events["user_id"].tolist() == ["186", "196", "196"]
    assert events["item_id"].tolist() == ["302", "302", "242"]  # user 196: 302 came first in time
    assert events["weight"].tolist() == [3.0, 5.0, 3.0]
    assert events["item_title"].tolist()[2] == "Kolya (1996)"
    assert events["item_category"].tolist() == ["Animation", "Animation", "Drama"]  # first listed genre


def test_movielens_1m_dat_files(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (tmp_path / "movies.dat").write_bytes("1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                                          "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
                                          .encode("latin-1"))
    events = load_events(tmp_path / "ratings.dat")
    assert events["item_id"].tolist() == ["1193", "661", "1193"]
    assert events["item_category"].tolist() == ["Drama", "Animation", "Drama"]
    assert str(events["timestamp"].iloc[0]) == "2000-12-31 22:12:40+00:00"


def test_movielens_csv_pair_and_extra_files_upload(tmp_path: Path) -> None:
    ratings = b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,3.0,964982224\n"
    movies = (b'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
              b'3,"Grumpier Old Men, The (1995)",Comedy|Romance\n')
    events = load_events_bytes("ratings.csv", ratings, extra_files={"movies.csv": movies})
    assert events["item_title"].tolist() == ["Grumpier Old Men, The (1995)", "Toy Story (1995)", "Toy Story (1995)"]
    assert events["item_category"].tolist() == ["Comedy", "Adventure", "Adventure"]
    (tmp_path / "ratings.csv").write_bytes(ratings)
    (tmp_path / "movies.csv").write_bytes(movies)
    assert load_events(tmp_path / "ratings.csv").equals(events)
    assert load_events(tmp_path).equals(events)  # a MovieLens folder works too
    with pytest.raises(InputError, match="none of the item ids"):
        load_events_bytes("ratings.csv", ratings, extra_files={"movies.csv": b"movieId,title\n99,Nothing\n"})


def test_gzip_and_zip_containers() -> None:
    data = _csv()
    _check(load_events_bytes("log.csv.gz", gzip.compress(data)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml/ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
        zf.writestr("ml/movies.csv", b"movieId,title,genres\n1,Toy Story (1995),Animation\n")
        zf.writestr("ml/README.txt", b"hello")
    events = load_events_bytes("ml-latest-small.zip", buf.getvalue())
    assert events["item_title"].tolist() == ["Toy Story (1995)"]


def test_sequence_text_orders_within_user_and_continues_across_lines(tmp_path: Path) -> None:
    path = tmp_path / "seq.txt"
    path.write_text("1 5 6 7\n2 7 8\n1 9\n")
    events = load_events(path)
    assert events["timestamp"].dtype == np.int64
    assert events["user_id"].tolist() == ["1"] * 4 + ["2"] * 2
    assert events["item_id"].tolist() == ["5", "6", "7", "9", "7", "8"]
    assert events["timestamp"].tolist() == [0, 1, 2, 3, 0, 1]
    raw = read_raw_table("seq.txt", path.read_bytes())
    assert list(raw.columns) == ["user_id", "item_id", "timestamp"]


def test_detect_format() -> None:
    assert detect_format("x.parquet", b"PAR1") == "parquet"
    assert detect_format("blob", b"PAR1\x00\x01") == "parquet"
    assert detect_format("u.data", b"196\t242\t3\t881250949\n") == "movielens"
    assert detect_format("ratings.dat", b"1::1193::5::978300760\n") == "movielens"
    assert detect_format("my_ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4,9\n") == "movielens"
    assert detect_format("log.csv", b"user,item,ts\n") == "csv"
    assert detect_format("log.tsv", b"user\titem\n") == "tsv"
    assert detect_format("log.jsonl", b'{"a": 1}\n') == "jsonl"
    assert detect_format("log", b'{"a": 1}\n') == "jsonl"
    assert detect_format("Beauty.txt", b"1 1 2 3 4 5\n2 6 7 8 9 10 4 11\n") == "seqtxt"
    assert detect_format("pairs.txt", b"1 5\n1 6\n2 5\n") == "seqtxt"
    assert detect_format("data.txt", b"1\t2\t3\t1700000000\n4\t5\t6\t1700000001\n") == "tsv"


def test_read_raw_table_keeps_raw_columns() -> None:
    raw = read_raw_table("log.csv", b"Customer ID,Product,When\nc1,p1,2024-01-01\n")
    assert list(raw.columns) == ["Customer ID", "Product", "When"]
    raw = read_raw_table("u.data", b"196\t242\t3\t881250949\n")
    assert list(raw.columns) == ["user_id", "item_id", "rating", "timestamp"]


# ------------------------------------------------------------------------------------------ column detection

@pytest.mark.parametrize("header,expected", [
    ("userId,movieId,rating,timestamp", ("userId", "movieId", "timestamp", "rating")),
    ("visitorid,itemid,event,timestamp", ("visitorid", "itemid", "timestamp", None)),
    ("customer_id,product_id,event_time,score", ("customer_id", "product_id", "event_time", "score")),
    ("reviewerID,asin,overall,unixReviewTime", ("reviewerID", "asin", "unixReviewTime", "overall")),
    ("Customer Number,SKU code,Order Date", ("Customer Number", "SKU code", "Order Date", None)),
])
def test_detect_columns_by_name(header: str, expected: tuple) -> None:
    names = header.split(",")
    values = {expected[2]: ["1700000000", "1700000500"], expected[3]: ["3", "4"]}
    raw = pd.DataFrame({c: values.get(c, [f"{c}-1", f"{c}-2"]) for c in names})
    cols = detect_columns(raw)
    assert (cols.user, cols.item, cols.time, cols.rating) == expected


def test_detect_columns_by_content_when_names_say_nothing() -> None:
    raw = read_raw_table("x.csv", b"a,b,c,d\n196,242,3,881250949\n186,302,4,891717742\n22,377,1,878887116\n")
    cols = detect_columns(raw)
    assert (cols.user, cols.item, cols.time, cols.rating) == ("a", "b", "d", "c")
    raw = read_raw_table("x.csv", b"u1,i1,2024-01-05T10:00:00Z\nu2,i1,2024-01-06T11:00:00Z\n")
    assert list(raw.columns) == ["column1", "column2", "column3"]  # no header detected
    cols = detect_columns(raw)
    assert (cols.user, cols.item, cols.time) == ("column1", "column2", "column3")


def test_overrides_win_and_are_checked() -> None:
    data = b"a,b,when\nx1,y1,1700000000\nx1,y2,1700000001\n"
    events = load_events_bytes("x.csv", data, columns=ColumnMap(user="b", item="a"))
    assert events["user_id"].tolist() == ["y1", "y2"] and events["item_id"].tolist() == ["x1", "x1"]
    events = load_events_bytes("x.csv", data, columns=ColumnMap(user="A", item="2"))  # case, 1-based position
    assert events["user_id"].tolist() == ["x1", "x1"] and events["item_id"].tolist() == ["y1", "y2"]
    with pytest.raises(InputError, match="'nope'.*--item-col"):
        load_events_bytes("x.csv", data, columns=ColumnMap(item="nope"))
    with pytest.raises(InputError, match="both user and item"):
        load_events_bytes("x.csv", data, columns=ColumnMap(user="a", item="a"))


def test_no_time_column_means_file_order() -> None:
    events = load_events_bytes("x.csv", b"user,item\nu2,a\nu1,b\nu2,c\nu1,d\n")
    assert events["timestamp"].dtype == np.int64
    assert events["item_id"].tolist() == ["b", "d", "a", "c"] and events["timestamp"].tolist() == [0, 1, 0, 1]
    # an empty-string override says "no time column" even when one would be detected
    events = load_events_bytes("x.csv", b"user,item,ts\nu1,a,1700000009\nu1,b,1700000001\n", columns=ColumnMap(time=""))
    assert events["item_id"].tolist() == ["a", "b"] and events["timestamp"].tolist() == [0, 1]


# ------------------------------------------------------------------------------------------------ timestamps

@pytest.mark.parametrize("values", [
    [T0, T0 + 3600, T0 + 7200],  # unix seconds
    [T0 * 1000, (T0 + 3600) * 1000, (T0 + 7200) * 1000],  # milliseconds
    ["2023-11-14T22:13:20Z", "2023-11-14T23:13:20+00:00", "2023-11-15T02:13:20+02:00"],  # ISO-8601, offsets
    ["2023-11-14 22:13:20", "2023-11-14 23:13:20", "2023-11-15 00:13:20"],  # naive = UTC
])
def test_timestamp_units_give_the_same_instants(values: list) -> None:
    data = "user,item,timestamp\n" + "".join(f"u1,i{k},{v}\n" for k, v in enumerate(values))
    events = load_events_bytes("t.csv", data.encode())
    expected = pd.to_datetime([T0, T0 + 3600, T0 + 7200], unit="s", utc=True)
    assert (events["timestamp"].to_numpy() == expected.to_numpy()).all()


def test_small_integer_times_are_an_order_not_1970_dates() -> None:
    events = load_events_bytes("t.csv", b"user,item,timestamp\nu1,a,3\nu1,b,1\nu1,c,2\n")
    assert events["timestamp"].dtype == np.int64 and events["item_id"].tolist() == ["b", "c", "a"]


def test_ratings_become_float_weights_and_titles_are_text() -> None:
    data = b"user,item,rating,title,category,time\nu1,i1,4,Shoes,Sport|Outdoor,1700000000\nu1,i2,,Hat,,1700000001\n"
    events = load_events_bytes("t.csv", data)
    assert events["weight"].dtype == float and events["weight"].iloc[0] == 4.0 and np.isnan(events["weight"].iloc[1])
    assert events["item_title"].tolist() == ["Shoes", "Hat"]
    assert events["item_category"].iloc[0] == "Sport" and pd.isna(events["item_category"].iloc[1])


def test_latin1_text_is_read() -> None:
    data = "user,item,title,time\nu1,i1,Café crème,1700000000\n".encode("cp1252")
    assert load_events_bytes("t.csv", data)["item_title"].tolist() == ["Café crème"]


# ------------------------------------------------------------------------------------------------- real data

def test_real_beauty_sequence_text() -> None:
    path = SHARED / "amazon-beauty-s3" / "Beauty.txt"
    if not path.exists():
        pytest.skip("shared Beauty.txt not available")
    events = load_events(path)
    assert (events["user_id"].nunique(), events["item_id"].nunique(), len(events)) == (22363, 12101, 198502)
    first = events[events["user_id"] == "1"]
    assert first["item_id"].tolist() == ["1", "2", "3", "4", "5"] and first["timestamp"].tolist() == [0, 1, 2, 3, 4]


def test_real_movielens_small_with_titles() -> None:
    path = SHARED / "ml-latest-small" / "ratings.csv"
    if not path.exists():
        pytest.skip("shared ml-latest-small not available")
    events = load_events(path)
    assert (events["user_id"].nunique(), events["item_id"].nunique(), len(events)) == (610, 9724, 100836)
    assert events["item_title"].notna().all() and events["weight"].between(0.5, 5).all()
    toy = events[events["item_id"] == "1"].iloc[0]
    assert toy["item_title"] == "Toy Story (1995)" and toy["item_category"] == "Adventure"
    assert events.groupby("user_id")["timestamp"].apply(lambda s: s.is_monotonic_increasing).all()
