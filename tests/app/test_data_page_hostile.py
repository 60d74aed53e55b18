"""The Data page refuses every hostile file through its real upload path (AppTest drives ``st.file_uploader``):
an ``st.error`` naming the file, no exception, and no dataset put in use. Also the upload size limit."""
from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_hostile_inputs import HOSTILE_EXPECT, make_hostile_corpus  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")
# A valid file whose failure needs a column override the page cannot make (its selectors only list real columns).
NOT_FOR_THE_PAGE = {"wrong_user_override.csv"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_hostile_corpus(tmp_path_factory.mktemp("hostile_page"))


def data_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("app_pages/1_Data.py")
    at.run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
    at.run()
    assert not at.exception, (name, at.exception)
    return at


def use_this_data(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "Use this data").click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("name", sorted(set(HOSTILE_EXPECT) - NOT_FOR_THE_PAGE))
def test_data_page_refuses_hostile_upload(name: str, corpus: dict[str, Path]) -> None:
    at = upload(data_page(), name, corpus[name].read_bytes())
    if not at.error:  # readable as a table: the refusal comes when the data is used
        use_this_data(at)
    assert len(at.error) == 1, (name, [e.value for e in at.error])
    message = at.error[0].value
    assert name in message and "\n" not in message and "Traceback" not in message, (name, message)
    assert all(fragment in message for fragment in HOSTILE_EXPECT[name]), (name, message)
    assert at.session_state["dataset"] is None if "dataset" in at.session_state else True
    assert not at.success


def test_upload_over_the_size_limit_is_refused_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQREC_MAX_UPLOAD_MB", "0.001")  # about 1 KB
    log = ("user_id,item_id,timestamp\n" + "".join(f"u{k % 5},i{k},{1700000000 + k}\n" for k in range(200))).encode()
    assert len(log) > 2**10
    at = upload(data_page(), "big_log.csv", log)
    assert len(at.error) == 1
    message = at.error[0].value
    assert ("big_log.csv is 3.6 KB" in message and "upload limit of 0.001 MB" in message
            and "SEQREC_MAX_UPLOAD_MB" in message)
    assert not at.dataframe  # nothing was read: no preview
    monkeypatch.setenv("SEQREC_MAX_UPLOAD_MB", "1")
    at = upload(data_page(), "big_log.csv", log)
    assert not at.error and at.dataframe  # the same upload under a higher limit is read and previewed


def test_a_movielens_zip_upload_still_loads() -> None:
    """Control: the zip checks refuse hostile archives, not the MovieLens zip as GroupLens ships it."""
    ratings = "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{m},{1 + (u + m) % 5},{1700000000 + 60 * (u * 10 + m)}\n" for u in range(1, 9) for m in range(1, 7))
    movies = "movieId,title,genres\n" + "".join(f"{m},Movie {m} (1999),Drama|Comedy\n" for m in range(1, 7))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-tiny/ratings.csv", ratings)
        zf.writestr("ml-tiny/movies.csv", movies)
    at = use_this_data(upload(data_page(), "ml-tiny.zip", buf.getvalue()))
    assert not at.error, [e.value for e in at.error]
    ds = at.session_state["dataset"]
    assert ds.sequences.n_users == 8 and "item_title" in ds.events.columns


def test_a_junk_titles_file_is_refused_by_name() -> None:
    """The second uploader (item titles) goes through the same checks: its own name in the error, no dataset."""
    log = ("user_id,item_id,timestamp\n" + "".join(f"u{k % 4},i{k % 6},{1700000000 + k}\n" for k in range(24))).encode()
    at = upload(data_page(), "log.csv", log)
    at.get("file_uploader")[1].set_value(("movies.csv", b"\x00\x01\x02 not a table", "text/csv"))
    use_this_data(at)
    assert len(at.error) == 1 and "movies.csv" in at.error[0].value and "binary" in at.error[0].value, \
        [e.value for e in at.error]
    assert at.session_state["dataset"] is None if "dataset" in at.session_state else True
