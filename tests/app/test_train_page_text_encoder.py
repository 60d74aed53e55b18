"""The Train page's item text encoder: once `make text-model` has installed all-MiniLM-L6-v2 the form offers it as
a choice (and trains with its absolute folder); without an install the box's help says how to get it."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from seqrec_core.models.text_model_setup import DEST_ENV, MARKER, REQUIRED

APP = str(Path(__file__).resolve().parents[2] / "app.py")
LABEL = "Item text encoder"


def fake_install(folder: Path) -> Path:
    """What installed_text_model looks for (the page never loads the encoder, so empty files do)."""
    folder.mkdir(parents=True)
    for name in (MARKER, *REQUIRED):
        (folder / name).write_text("{}")
    return folder


def train_page(dataset) -> AppTest:  # noqa: ANN001 - Dataset
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["dataset"] = dataset
    at.run()
    at.switch_page("app_pages/3_Train.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_installed_encoder_is_a_choice(runs_dir, small_dataset, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = fake_install(tmp_path / "minilm")
    monkeypatch.setenv(DEST_ENV, str(folder))
    at = train_page(small_dataset)
    choice = next(s for s in at.selectbox if s.label == LABEL)
    assert choice.options == ["none", f"all-MiniLM-L6-v2 (installed: {folder})"] and choice.value == "none"
    assert "make text-model" in choice.help and not choice.disabled
    other = next(t for t in at.text_input if t.label == "Other text encoder")
    assert other.value == "" and "instead of the choice above" in other.help


def test_without_an_install_the_box_says_how_to_get_one(runs_dir, small_dataset, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEST_ENV, str(tmp_path / "not-installed"))
    at = train_page(small_dataset)
    assert not [s for s in at.selectbox if s.label == LABEL]
    box = next(t for t in at.text_input if t.label == LABEL)
    assert "`make text-model` installs all-MiniLM-L6-v2" in box.help and str(tmp_path / "not-installed") in box.help


def encoder_form() -> None:
    """The form's text encoder input alone, its value written out (AppTest.from_function runs this source)."""
    import streamlit as st

    from ui.family_form import family_fields, option_widget

    spec = next(s for s in family_fields("sasrec")[1] if s.name == "text_encoder")
    st.code(repr(option_widget(st, "sasrec", spec)))


@pytest.mark.parametrize(("pick", "other", "expected"), [
    ("none", "", None), ("installed", "", "FOLDER"), ("installed", "my/encoder", "my/encoder"),
    ("none", "my/encoder", "my/encoder")])
def test_the_value_the_job_gets(pick: str, other: str, expected: str | None, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fake_install(tmp_path / "text_models" / "all-MiniLM-L6-v2")
    monkeypatch.delenv(DEST_ENV, raising=False)  # the default place, relative to where the dashboard started
    at = AppTest.from_function(encoder_form, default_timeout=60)
    at.run()
    choice = at.selectbox[0]
    choice.set_value(next(o for o in choice.options if o.startswith("all-MiniLM")) if pick == "installed" else "none")
    at.text_input[0].set_value(other)
    at.run()
    assert not at.exception, at.exception
    folder = str((tmp_path / "text_models" / "all-MiniLM-L6-v2").resolve())
    assert at.code[0].value == repr(folder if expected == "FOLDER" else expected)
