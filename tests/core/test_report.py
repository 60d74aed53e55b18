"""The review report: one self-contained HTML file built from a run's stored analysis (plotly.js inline once, no
network), every section present or saying how to compute it, data text escaped, sentences from the data, and the
CLI's ``report`` contract (one JSON document; bad input exit 2 with one line)."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from seqrec_core.cli import main
from seqrec_core.explain.attribution import Attribution
from seqrec_core.report import build_review
from seqrec_core.report.sentences import fmt_ago, positive_share, when_text, why_sentence

SECTIONS = ("data", "patterns", "model", "metrics", "longrange", "faithfulness", "users")
HOSTILE = "<script>alert('x')</script> & <b>bold</b>"


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the session's analysed tiny run (a report may add users to its store)."""
    return Path(shutil.copytree(tiny_run, tmp_path / "tiny-sasrec"))


def analysis_state(run_dir: Path) -> dict[str, str]:
    return {p.name: (p / "meta.json").read_text() for p in (run_dir / "analysis").iterdir() if p.is_dir()}


def assert_self_contained(html: str) -> None:
    """plotly.js inline exactly once (in the head), and outside that bundle not one address on the network: no
    script, stylesheet, image, font or link that a browser without network would try to fetch."""
    bundles = re.findall(r"<script type=\"text/javascript\">(.*?)</script>", html, re.S)
    assert len([b for b in bundles if "plotly.js v" in b[:300]]) == 1
    rest = html.replace(next(b for b in bundles if "plotly.js v" in b[:300]), "")
    assert "plotly.js v" not in rest  # the bundle is not loaded a second time
    assert not re.search(r"https?:|//cdn|@import|url\(", rest, re.I)
    assert not re.search(r"<(link|img|iframe|source|video|audio|object|embed)\b", rest, re.I)
    assert not re.search(r"<script[^>]*\bsrc=", rest, re.I)


def plotly_divs(html: str) -> int:
    return len(re.findall(r'class="plotly-graph-div"', html))


def test_report_of_stored_analysis_is_complete_and_self_contained(run_copy, small_dataset):
    before = analysis_state(run_copy)
    review = build_review(run_copy, small_dataset, compute_missing=False)
    html = review.html
    assert analysis_state(run_copy) == before  # the dashboard's report never computes or writes
    assert_self_contained(html)
    assert review.figures == plotly_divs(html) >= 15
    assert review.missing == []  # the tiny run's stored analysis covers everything that applies to it
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert "Not shown" not in html
    assert "planted" not in review.missing  # not the demo log: the planted check does not apply
    assert 1 <= len(review.users) <= 5
    for user in review.users:
        assert f"User {user}" in html
    # the header: run, data fingerprint, versions; every stored part says when and how it was computed
    assert small_dataset.fingerprint in html and "tiny-sasrec" in html and "seqrec_core" in html
    assert html.count("Stored analysis “") >= 7
    assert "95% CI" in html and "[" in html  # metrics with intervals
    assert "ranks" in html and "mostly because of" in html


def test_missing_parts_are_named_with_the_command_that_computes_them(run_copy, small_dataset):
    for folder in (run_copy / "analysis").glob("faithfulness-*"):
        shutil.rmtree(folder)
    review = build_review(run_copy, small_dataset, compute_missing=False)
    assert review.missing == ["faithfulness"]
    assert "Not shown" in review.html and "--parts faithfulness" in review.html
    assert "Deletion curves" not in review.html
    assert review.figures == plotly_divs(review.html)


def test_item_titles_are_escaped(run_copy, small_dataset):
    """Titles come from people's files: a title that is HTML must show as text, never run or render."""
    from seqrec_core.data.dataset import dataset_from_events

    events = small_dataset.events.copy()
    events["item_title"] = HOSTILE + " " + events["item_id"].astype(str)
    hostile = dataset_from_events(events, "hostile.parquet", source=small_dataset.source)
    assert hostile.fingerprint == small_dataset.fingerprint  # titles are not part of the data's identity
    review = build_review(run_copy, hostile, compute_missing=False)
    assert "<script>alert" not in review.html and "<b>bold</b>" not in review.html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in review.html
    assert_self_contained(review.html)


def test_users_asked_for_are_explained_and_stored(run_copy, small_dataset):
    from seqrec_core.analysis.kinds_explain import stored_users
    from seqrec_core.analysis.lookup import find

    found = find(run_copy, "explanations", None, small_dataset.fingerprint)
    have = set(stored_users(found.unit))
    new = next(u for u in small_dataset.sequences.vocab.user_ids if u not in have)
    review = build_review(run_copy, small_dataset, [new], compute_missing=True, device="cpu")
    assert review.users == [new] and review.missing == []
    assert f"User {new}" in review.html and "mostly because of" in review.html
    found = find(run_copy, "explanations", None, small_dataset.fingerprint)
    assert new in stored_users(found.unit) and have <= set(stored_users(found.unit))


def test_cli_report_json_contract(run_copy, tmp_path, capsys):
    out = tmp_path / "review.html"
    assert main(["report", "--run", str(run_copy), "--out", str(out), "--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"report", "bytes", "figures", "users"}
    assert Path(doc["report"]) == out and doc["bytes"] == out.stat().st_size
    html = out.read_text(encoding="utf-8")
    assert doc["figures"] == plotly_divs(html) and doc["users"]
    assert all(f"User {u}" in html for u in doc["users"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["review.html", "tiny-sasrec"]  # no temp file left


@pytest.mark.parametrize("args, needle", [
    (["--out", "{tmp}/review.pdf"], ".html"),
    (["--out", "{tmp}/no/such/folder/review.html"], "does not exist"),
    (["--out", "{tmp}/review.html", "--users", "nobody-here"], "nobody-here"),
    (["--out", "{tmp}/review.html", "--users", " , "], "names no user"),
])
def test_cli_report_bad_input_exits_2_with_one_line(run_copy, tmp_path, capsys, args, needle):
    argv = ["report", "--run", str(run_copy), "--device", "cpu"] + [a.format(tmp=tmp_path) for a in args]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], captured.err
    assert captured.out == "" and "Traceback" not in captured.err
    assert not (tmp_path / "review.html").exists()


def test_cli_report_refuses_a_missing_run_a_folder_as_out_and_an_unwritable_folder(tmp_path, run_copy, capsys):
    assert main(["report", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "taken.html").mkdir()
    assert main(["report", "--run", str(run_copy), "--out", str(tmp_path / "taken.html")]) == 2
    assert "is a folder" in capsys.readouterr().err
    if os.geteuid() == 0:
        return  # root writes anywhere: there is no unwritable folder to refuse
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert main(["report", "--run", str(run_copy), "--out", str(locked / "r.html")]) == 2
        assert "cannot write" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


# ------------------------------------------------------------------------------------------- sentences
def test_fmt_ago_picks_a_readable_unit():
    assert fmt_ago(None) is None and fmt_ago(float("nan")) is None
    assert fmt_ago(30) == "30 seconds" and fmt_ago(60 * 60 * 5) == "5 hours"
    assert fmt_ago(86400 * 12) == "12 days" and fmt_ago(86400 * 21) == "3 weeks"
    assert fmt_ago(86400) == "24 hours" and fmt_ago(86400 * 2) == "2 days"


def test_when_text_says_events_only_without_time():
    assert when_text(38, None) == "38 events earlier"
    assert when_text(38, 86400 * 12) == "38 events (12 days) earlier"
    assert when_text(1, None) == "the latest event"


def attribution(scores, seconds=None, method="ig", titles=None) -> Attribution:
    n = len(scores)
    ids = [f"i{k}" for k in range(n)]
    return Attribution(user="u1", method=method, target_item="t9", target_title="Lawn fertiliser #5", target_index=9,
                       item_index=np.arange(1, n + 1), item_ids=ids, titles=titles or [f"Item {k}" for k in range(n)],
                       categories=[None] * n, lags=np.arange(n, 0, -1), timestamps=None,
                       seconds_before=None if seconds is None else np.asarray(seconds, dtype=float),
                       scores=np.asarray(scores, dtype=float), target_score=4.256, baseline_score=3.4,
                       convergence_delta=0.0, target_rank=1)


def test_why_sentence_names_the_top_event_its_distance_and_the_concentration():
    scores = [0.1, 2.0, 0.5, -0.3, 0.4]  # event 1 (lag 4) is the most supportive; top 3 = 2.9 of 3.0 positive
    a = attribution(scores, seconds=[5e6, 86400 * 12, 3600, 60, 10])
    text = why_sentence(a)
    assert text.startswith("The model ranks Lawn fertiliser #5 first (score 4.26) mostly because of Item 1, "
                           "4 events (12 days) earlier")
    assert "IG puts 97% of the positive attribution on the top 3 events" in text
    timeless = why_sentence(attribution(scores))
    assert "4 events earlier" in timeless and "days" not in timeless
    other = attribution([0.0, 1.0, 0.0, 0.0, 0.0], method="occlusion")
    assert "Occlusion also ranks that event first" in why_sentence(a, {"occlusion": other})
    assert "no event" in why_sentence(attribution([-1.0, -0.5, 0.0, -0.2, -0.1]))


def test_positive_share_is_a_share_of_the_positive_mass():
    assert positive_share(np.array([-5.0, 1.0, 1.0, 1.0, 1.0]), k=3) == pytest.approx(0.75)
    assert positive_share(np.array([-1.0, 0.0])) is None


# ------------------------------------------------------------------------------ a log without timestamps
@pytest.fixture(scope="module")
def timeless_gru_run(tmp_path_factory: pytest.TempPathFactory):
    """A GRU4Rec run (no attention maps) on a sequence-text log (event order only), with no stored analysis."""
    from seqrec_core.data.dataset import DataSource, open_dataset
    from seqrec_core.jobs import run_training_job
    from seqrec_core.training import TrainConfig

    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("timeless")
    lines = [f"{u} " + " ".join(str(int(i)) for i in (rng.integers(1, 30, size=rng.integers(6, 14))))
             for u in range(1, 41)]
    path = root / "seq.txt"
    path.write_text("\n".join(lines) + "\n")
    ds = open_dataset(DataSource(path=str(path), format="seqtxt"))
    assert not ds.sequences.has_time
    out = root / "gru"
    run_training_job(ds.sequences, "gru4rec", {"hidden_size": 8}, TrainConfig(epochs=1, batch_size=16, max_len=12,
                                                                               device="cpu", seed=0),
                     out, ds.info())
    return out, ds


def test_timeless_gru_report_computes_what_is_missing_and_skips_attention(timeless_gru_run, tmp_path):
    run, ds = timeless_gru_run
    run = Path(shutil.copytree(run, tmp_path / "gru"))
    review = build_review(run, ds, compute_missing=True, device="cpu")
    html = review.html
    assert review.missing == []
    assert "no timestamps" in html  # the patterns section says why it is empty
    assert "has no attention maps" in html and "Attention rollout" not in html
    assert "Planted truth check" not in html
    assert re.search(r"mostly because of [^.]*\d+ events earlier|the latest event", html)
    assert " days" not in re.sub(r"<script.*?</script>", "", html, flags=re.S).split('id="users"')[1]
    assert review.figures == plotly_divs(html)
    assert_self_contained(html)
