"""Runs from strangers: pickles never opened, configs held to the schema, weights checked before loading, and
uploaded archives size- and member-checked. A run is a file people share, so loading one must not run code."""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec_core import runs
from seqrec_core.data import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.models import MODEL_FAMILIES, build_model
from seqrec_core.runs import load_run, save_run, unpack_run_zip, validate_run_config


@pytest.fixture(scope="module")
def data():
    rows = [(f"u{u}", f"i{(u + t) % 12}", t) for u in range(20) for t in range(6)]
    return build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


@pytest.fixture()
def run_dir(tmp_path: Path, data) -> Path:
    torch.manual_seed(0)
    model = build_model("sasrec", data.vocab.n_items, hidden_size=8, num_layers=1, num_heads=1, max_len=6).eval()
    return save_run(tmp_path / "run", model=model, config={"data": {"fingerprint": data.fingerprint}},
                    vocab=data.vocab, metrics={"test": {"NDCG@10": 0.1}}, history=[])


class _Plant:
    """Unpickling this creates ``marker``: the proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def plants(marker: Path) -> dict[str, bytes]:
    """Files whose usual readers (pickle, torch.load, joblib, np.load(allow_pickle=True)) would create marker."""
    payload = pickle.dumps(_Plant(marker), protocol=2)
    buf = io.BytesIO()
    np.save(buf, np.array([_Plant(marker)], dtype=object), allow_pickle=True)
    return {"weights.pkl": payload, "pytorch_model.bin": payload, "model.pt": payload, "ckpt.ckpt": payload,
            "embeddings.npy": buf.getvalue(), "model.joblib": payload, "nested/deeper/state.pth": payload,
            "WEIGHTS.PKL": payload}


@pytest.fixture()
def no_unpickling(monkeypatch: pytest.MonkeyPatch):
    """Every unpickling entry point fails the test if called at all."""
    def forbidden(*_a, **_k):
        raise AssertionError("a run loader tried to unpickle")

    for target, name in ((pickle, "load"), (pickle, "loads"), (torch, "load"), (np, "load")):
        monkeypatch.setattr(target, name, forbidden)


def test_the_plant_is_live(tmp_path: Path) -> None:
    """Sanity: these files really would run code if a reader unpickled them."""
    proof = tmp_path / "proof"
    pickle.loads(plants(proof)["weights.pkl"])
    assert proof.exists()
    proof.unlink()
    np.load(io.BytesIO(plants(proof)["embeddings.npy"]), allow_pickle=True)
    assert proof.exists()


@pytest.mark.parametrize("name", list(plants(Path("x"))))
def test_a_planted_pickle_is_refused_and_never_runs(run_dir: Path, tmp_path: Path, name: str, no_unpickling) -> None:
    marker = tmp_path / "pwned"
    planted = run_dir / name
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(plants(marker)[name])
    with pytest.raises(InputError, match="pickled files are refused"):
        load_run(run_dir)
    assert not marker.exists()


def test_a_pickle_disguised_as_the_weights_is_refused_unopened_by_pickle(run_dir: Path, tmp_path: Path,
                                                                         no_unpickling) -> None:
    marker = tmp_path / "pwned"
    (run_dir / "model.safetensors").write_bytes(plants(marker)["model.pt"])
    with pytest.raises(InputError, match="unreadable weights"):
        load_run(run_dir)
    assert not marker.exists()


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buf.getvalue()


def run_files(run_dir: Path, prefix: str = "run/") -> dict[str, bytes]:
    return {prefix + p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


def test_an_archive_with_a_planted_pickle_is_refused_and_never_runs(run_dir: Path, tmp_path: Path,
                                                                    no_unpickling) -> None:
    marker = tmp_path / "pwned"
    for name, payload in plants(marker).items():
        with pytest.raises(InputError, match="pickled"):
            unpack_run_zip(zip_of(run_files(run_dir) | {"run/" + Path(name).name: payload}), tmp_path / "up")
    assert not marker.exists() and not (tmp_path / "up").exists()  # refused before unpacking anything


# ------------------------------------------------------------------------------------------------- config schema
def rewrite(run_dir: Path, change) -> None:  # noqa: ANN001
    config = json.loads((run_dir / "config.json").read_text())
    change(config)
    (run_dir / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("change, word", [
    (lambda c: c.update(best_epoch="three"), "best_epoch"),
    (lambda c: c.update(best_epoch=True), "best_epoch"),
    (lambda c: c.update(epochs_trained=-1), "epochs_trained"),
    (lambda c: c.update(train_seconds=float("nan")), "train_seconds"),
    (lambda c: c.update(exclude_seen="yes"), "exclude_seen"),
    (lambda c: c.update(data=["not", "an", "object"]), "data"),
    (lambda c: c.update(data={"fingerprint": 42}), "fingerprint"),
    (lambda c: c.update(stopped_reason="rm -rf"), "stopped_reason"),
    (lambda c: c.update(format_version=0), "format version"),
    (lambda c: c.update(created="x" * 20_000), "characters"),
    (lambda c: c["model"].update(n_items=True), "n_items"),
    (lambda c: c["model"].update(n_items=10**12), "n_items"),
    (lambda c: c["model"].update(run_this="import os"), "unknown option"),
    (lambda c: c["model"].update(num_layers=10**6), "num_layers"),
    (lambda c: c.update(family=["sasrec"]), "family"),
])
def test_config_fields_are_typed_and_ranged(run_dir: Path, change, word: str) -> None:
    rewrite(run_dir, change)
    with pytest.raises(InputError, match=word):
        load_run(run_dir)


def test_unknown_top_level_keys_are_ignored_with_a_reason(run_dir: Path) -> None:
    rewrite(run_dir, lambda c: c.update(__class__="os.system", note="hi"))
    run = load_run(run_dir)
    assert "__class__" not in run.config and "note" not in run.config
    assert any("'__class__'" in w and "ignored" in w for w in run.warnings) and len(run.warnings) == 2


def test_metrics_keep_only_numbers(run_dir: Path) -> None:
    (run_dir / "metrics.json").write_text(json.dumps({"test": {"NDCG@10": 0.2, "HR@10": "<script>"}, "val": [1],
                                                      "exclude_seen": True}))
    run = load_run(run_dir)
    assert run.metrics == {"test": {"NDCG@10": 0.2}, "exclude_seen": True} and len(run.warnings) == 2


@pytest.mark.parametrize("family", sorted(MODEL_FAMILIES))
def test_every_family_checks_its_options_through_its_config_class(family: str) -> None:
    good = {"family": family, "model": {"n_items": 10, "hidden_size": 8, "max_len": 6}}
    assert validate_run_config(good, Path("config.json"))["family"] == family
    for bad, word in (({"hidden_size": 0}, "hidden_size"), ({"dropout": 2.0}, "dropout"),
                      ({"max_len": "long"}, "max_len"), ({"no_such_option": 1}, "unknown option")):
        with pytest.raises(InputError, match=word):
            validate_run_config({**good, "model": {**good["model"], **bad}}, Path("config.json"))


@pytest.mark.parametrize("text", ["[" * 100_000, '{"family": "sasrec", "model": ' + "[" * 50_000])
def test_deeply_nested_json_is_refused_in_one_line(run_dir: Path, text: str) -> None:
    (run_dir / "config.json").write_text(text)
    with pytest.raises(InputError, match="config"):
        load_run(run_dir)


def test_oversized_json_is_refused_before_parsing(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(runs.MAX_JSON_BYTES, "vocabulary", 100)
    with pytest.raises(InputError, match="vocabulary file is .* over"):
        load_run(run_dir)


# ---------------------------------------------------------------------------------------------------- weights
def header_file(header: dict | bytes, body: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(raw) if length is None else length).to_bytes(8, "little") + raw + body


def real_header(run_dir: Path) -> tuple[dict, bytes]:
    blob = (run_dir / "model.safetensors").read_bytes()
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def test_a_huge_safetensors_header_is_refused_without_reading_it(run_dir: Path) -> None:
    (run_dir / "model.safetensors").write_bytes(header_file(b"{}", length=2**40))
    with pytest.raises(InputError, match="header of 1099511627776 bytes"):
        load_run(run_dir)


@pytest.mark.parametrize("edit, word", [
    # the same bytes in all, so the tensor-by-tensor check against the built model is what refuses
    (lambda h: h.update({"evil.weight": h.pop("item_emb.weight")}), "missing item_emb.weight; unexpected evil"),
    (lambda h: h["item_emb.weight"].update(shape=h["item_emb.weight"]["shape"][::-1]), "shape"),
    (lambda h: h["item_emb.weight"].update(dtype="I32"), "dtype"),
    (lambda h: h["item_emb.weight"].update(data_offsets=[0, 10**12]), "byte range"),
    (lambda h: h["item_emb.weight"].update(data_offsets="0-4"), "byte range"),
    # other sizes than the config implies: refused from the header's sizes alone, before the model is built
    (lambda h: h.update({"evil.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}), "belong together"),
    (lambda h: h.pop("item_emb.weight"), "belong together"),
    (lambda h: h["item_emb.weight"].update(shape=[999, 8]), "belong together"),
    (lambda h: h["item_emb.weight"].update(dtype="F64"), "belong together"),
    (lambda h: h["item_emb.weight"].update(shape=[13, "8"]), "lacks a shape"),
])
def test_tensor_names_shapes_and_offsets_are_checked_before_loading(run_dir: Path, edit, word: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    header, body = real_header(run_dir)
    edit(header)
    (run_dir / "model.safetensors").write_bytes(header_file(header, body))

    def not_reached(*_a, **_k):
        raise AssertionError("weights were loaded before the header was checked")

    monkeypatch.setattr(safetensors.torch, "load_file", not_reached)
    with pytest.raises(InputError, match=word):
        load_run(run_dir)


# --------------------------------------------------------------------------------------------------- archives
def test_archives_with_too_many_members_are_refused(run_dir: Path, tmp_path: Path) -> None:
    files = run_files(run_dir) | {f"run/._fork{i}": b"" for i in range(runs.MAX_ZIP_MEMBERS)}
    with pytest.raises(InputError, match="entries"):
        unpack_run_zip(zip_of(files), tmp_path / "up")


def test_the_declared_unpacked_size_is_bounded_before_unpacking(run_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    archive = zip_of(run_files(run_dir) | {"run/history.jsonl": b"\n" * 50_000})  # compresses to ~100 bytes
    monkeypatch.setattr(runs, "MAX_UNPACKED_BYTES", 40_000)
    with pytest.raises(InputError, match="unpacks to"):
        unpack_run_zip(archive, tmp_path / "up")
    assert not (tmp_path / "up").exists()  # refused before anything was written


@pytest.mark.parametrize("name, word", [("/etc/config.json", "unsafe"), ("run\\..\\config.json", "unsafe"),
                                        ("C:/config.json", "unsafe"), ("run/../../x/config.json", "unsafe")])
def test_archive_paths_cannot_escape(run_dir: Path, tmp_path: Path, name: str, word: str) -> None:
    with pytest.raises(InputError, match=word):
        unpack_run_zip(zip_of(run_files(run_dir) | {name: b"{}"}), tmp_path / "up")
    assert not (tmp_path / "x").exists()


def test_archive_links_are_refused(run_dir: Path, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in run_files(run_dir).items():
            if not name.endswith("metrics.json"):
                z.writestr(name, content)
        link = zipfile.ZipInfo("run/metrics.json")
        link.external_attr = (0o120777 << 16)
        z.writestr(link, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        unpack_run_zip(buf.getvalue(), tmp_path / "up")


def test_a_corrupt_member_is_one_line_not_a_traceback(run_dir: Path, tmp_path: Path) -> None:
    archive = bytearray(zip_of(run_files(run_dir)))
    at = archive.find(b"PK\x03\x04")
    archive[at + 60: at + 80] = bytes(20)  # damage the first member's compressed data
    with pytest.raises(InputError):
        unpack_run_zip(bytes(archive), tmp_path / "up")
    assert [p.name for p in (tmp_path / "up").iterdir()] == []


# ------------------------------------------------------------------------------------------- corrupted at random
def corrupt(blob: bytes, rng, limit: int | None = None) -> bytes:  # noqa: ANN001 - random.Random
    """Flip, cut or insert a few bytes (within the first ``limit`` bytes, e.g. a safetensors header)."""
    out = bytearray(blob)
    if not out:
        return bytes([rng.randrange(256)])
    span = max(1, min(limit or len(out), len(out)))
    kind = rng.choice(["flip", "truncate", "insert"])
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(span)
        if kind == "truncate":
            return bytes(out[:pos])
        if kind == "flip":
            out[pos] = rng.randrange(256)
        else:
            out[pos:pos] = bytes([rng.randrange(256)])
    return bytes(out)


def test_randomly_damaged_runs_load_or_are_refused_in_one_line(run_dir: Path, tmp_path: Path) -> None:
    """300 seeded corruptions of every run file: each run either loads or raises InputError, nothing else."""
    import random

    rng = random.Random(0)
    original = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    header_end = 8 + int.from_bytes(original["model.safetensors"][:8], "little")
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(300):
        name = rng.choice(sorted(original))
        limit = header_end if name == "model.safetensors" and rng.random() < 0.7 else None
        folder = tmp_path / f"r{i}"
        folder.mkdir()
        for other, blob in original.items():
            (folder / other).write_bytes(corrupt(blob, rng, limit) if other == name else blob)
        try:
            load_run(folder)
            outcomes["loaded"] += 1
        except InputError as err:
            assert "\n" not in str(err)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 150 and outcomes["loaded"] + outcomes["refused"] == 300


def test_randomly_damaged_archives_unpack_or_are_refused(run_dir: Path, tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    archive = zip_of(run_files(run_dir))  # bytes differ per session (save times): each run fuzzes anew
    # 400 draws: a corrupted header offset ("negative seek value", ValueError) and a bad version field
    # (NotImplementedError) escaped as tracebacks until session 10; 2,400 draws over 6 seeds now all refuse cleanly
    for i in range(400):
        dest = tmp_path / f"up{i}"
        try:
            unpack_run_zip(corrupt(archive, rng), dest)
        except InputError:
            assert not dest.exists() or list(dest.iterdir()) == []  # nothing half-unpacked is left


# ------------------------------------------------------------------------------------- model size, before building
def test_the_size_a_config_implies_is_what_every_family_stores() -> None:
    """The count the loader trusts before building is exact: it equals the built model's state dict, for every
    family and every option that changes a tensor's shape (a family that gains a tensor fails here first)."""
    from seqrec_core.models.size_limits import model_bytes

    cases = [("sasrec", {"positions": p, "loss": loss, "tied_output": tied, "time_features": tf, "num_heads": 2})
             for p in ("rotary", "learned") for loss in ("full", "gbce") for tied in (None, True, False)
             for tf in (False, True)]
    cases += [("sasrec", {"text_encoder": "enc", "text_dim": 5, "tied_output": False, "loss": "bce", "num_heads": 2}),
              ("bert4rec", {"num_heads": 2}), ("bert4rec", {"text_encoder": "enc", "text_dim": 3, "num_heads": 4}),
              ("gru4rec", {}), ("lstm", {"text_encoder": "enc", "text_dim": 3}), ("lsi", {"short_window": 3}),
              ("lsi", {"short_window": 100, "text_encoder": "enc", "text_dim": 3})]
    for family, options in cases:
        model = build_model(family, 17, hidden_size=12, num_layers=2, max_len=7, **options)
        stored = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        assert model_bytes(model.config) == stored, (family, options)


def test_the_train_path_and_the_loader_share_one_size_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """`train --hidden-size 4096 --num-layers 48` asks for the same model the crafted run does: one function
    refuses both, from the config alone (48 GB of weights here: building it would exhaust the machine)."""
    from seqrec_core.models import build_config
    from seqrec_core.models.size_limits import MAX_MODEL_ENV, check_model_size, max_model_mb

    refusal = (r"sasrec \(48 layers x hidden 4096, 1,000 items\) is 48.0 GB, over the model-size limit of 4,096 MB; "
               r".*SEQREC_MAX_MODEL_MB=49171 \(0 = no limit\)")
    with pytest.raises(InputError, match=refusal):  # the train path: building the config refuses it
        build_config("sasrec", 1000, hidden_size=4096, num_layers=48, num_heads=2)
    monkeypatch.setenv(MAX_MODEL_ENV, "0")  # 0 = no limit
    big = build_config("sasrec", 1000, hidden_size=4096, num_layers=48, num_heads=2)
    monkeypatch.delenv(MAX_MODEL_ENV)
    with pytest.raises(InputError, match=refusal):  # the loader's check on the same config
        check_model_size(big)
    check_model_size(build_config("sasrec", 1000, hidden_size=64, num_layers=2))  # an ordinary model passes
    monkeypatch.setenv(MAX_MODEL_ENV, "lots")
    with pytest.raises(InputError, match="SEQREC_MAX_MODEL_MB='lots' is not a number"):
        max_model_mb()


def big_config(run_dir: Path) -> None:
    rewrite(run_dir, lambda c: c["model"].update(hidden_size=4096, num_layers=48, num_heads=2))


def test_a_run_asking_for_a_huge_model_is_refused_before_it_is_built(run_dir: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from seqrec_core.models import sasrec

    def not_built(*_a, **_k):
        raise AssertionError("the model was built before its size was checked")

    monkeypatch.setattr(sasrec.SASRec, "__init__", not_built)
    big_config(run_dir)
    with pytest.raises(InputError, match=r"config.json: the model sasrec \(48 layers x hidden 4096.* model-size limit"):
        load_run(run_dir)
    with pytest.raises(InputError, match="model-size limit"):
        unpack_run_zip(zip_of(run_files(run_dir)), tmp_path / "up")
    assert list((tmp_path / "up").iterdir()) == []
    # under the limit but not what the weights hold: refused from the header, still nothing built
    rewrite(run_dir, lambda c: c["model"].update(hidden_size=64, num_layers=2))
    with pytest.raises(InputError, match="hold 4,640 bytes of tensors but config.json describes the model sasrec "
                                         r"\(2 layers x hidden 64, 12 items\) with 529,152; the two files do not"):
        load_run(run_dir)


def test_a_weights_file_longer_or_shorter_than_its_header_is_refused(run_dir: Path) -> None:
    header, body = real_header(run_dir)
    for damaged in (body + b"\0" * 16, body[:-4]):
        (run_dir / "model.safetensors").write_bytes(header_file(header, damaged))
        with pytest.raises(InputError, match="after its header but the header lists 4,640"):
            load_run(run_dir)


CRAFTED_PROBE = """
import json, resource, sys, time
from pathlib import Path
from seqrec_core.errors import InputError
from seqrec_core.runs import unpack_run_zip
archive, dest = Path(sys.argv[1]).read_bytes(), sys.argv[2]
start = time.perf_counter()
try:
    unpack_run_zip(archive, dest)
    outcome = "loaded"
except InputError as err:
    outcome = str(err)
seconds = time.perf_counter() - start
# VmHWM: this program's own peak. ru_maxrss would start at the RSS of the (large) pytest process that forked it.
status = Path("/proc/self/status")
hwm = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:")] \
    if status.exists() else []
peak_kb = int(hwm[0]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "seconds": seconds, "peak_mb": peak_kb / 1024}))
"""


def test_the_crafted_48_layer_archive_is_refused_fast_and_small(run_dir: Path, tmp_path: Path) -> None:
    """The reviewer's probe: a small run archive (theirs 538 KB, this one 7 KB zipped, 0.5 MB unpacked) whose
    config asks for 48 layers x hidden 4096 (each field in range) made the loader allocate 11 GB. Now: refused in
    one line within 2 s, peak memory of the whole process (imports included) under 1 GB, nothing unpacked."""
    import subprocess
    import sys

    big_config(run_dir)
    archive = tmp_path / "crafted.zip"
    archive.write_bytes(zip_of(run_files(run_dir) | {"run/history.jsonl": b'{"epoch": 1}\n' * 40_000}))
    proc = subprocess.run([sys.executable, "-c", CRAFTED_PROBE, str(archive), str(tmp_path / "up")],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "model-size limit" in probe["outcome"] and "\n" not in probe["outcome"]
    assert probe["seconds"] <= 2.0, probe
    assert probe["peak_mb"] < 1000, probe
    assert list((tmp_path / "up").iterdir()) == []


def test_the_cli_refuses_the_crafted_run_in_one_line(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from seqrec_core.cli import main

    big_config(run_dir)
    code = main(["evaluate", "--run", str(run_dir), "--data", "demo"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "model-size limit" in lines[0] and "Traceback" not in captured.err


# ------------------------------------------------------------------------------------------- JSON nesting depth
@pytest.mark.parametrize("name, what", [("config.json", "config"), ("metrics.json", "metrics"),
                                        ("vocab.json", "vocabulary")])
def test_json_nested_past_the_bound_is_refused_before_parsing(run_dir: Path, name: str, what: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    deep, parse = '{"a": ' * 65 + "1" + "}" * 65, json.loads

    def loads(text, *args, **kwargs):  # noqa: ANN001, ANN202 - json.loads's signature
        assert text != deep, "json.loads ran on text nested past the bound"
        return parse(text, *args, **kwargs)

    (run_dir / name).write_text(deep)
    monkeypatch.setattr(json, "loads", loads)
    with pytest.raises(InputError, match=rf"{name}: cannot read the run's {what} \(nested deeper than 64 levels\)"):
        load_run(run_dir)


def test_depth_counts_brackets_of_the_json_not_of_its_strings() -> None:
    from seqrec_core.run_checks import nests_deeper_than

    assert not nests_deeper_than(json.dumps({"ids": ["[" * 500, "{" * 500, 'a"[[[' * 100, "\\" + "[" * 99]}))
    assert not nests_deeper_than("[" * 64 + "]" * 64)
    assert nests_deeper_than("[" * 65 + "]" * 65)
    assert nests_deeper_than('{"x": "]]]]", "y": ' + "[" * 70)  # brackets in a string do not close anything
    assert nests_deeper_than("[]" * 3_000_000 + "[" * 65)  # past the first 1 MiB chunk


def test_the_compare_pages_readers_refuse_deep_json_in_one_line(run_dir: Path) -> None:
    """The Compare page reads each run's config and weights header itself (meta, parameter count) and the analysis
    store hashes the config: a nested file there is one line or 'unknown', never a RecursionError."""
    from seqrec_core.analysis.store import read_meta
    from seqrec_core.compare import count_parameters, get_run_meta

    assert count_parameters(run_dir / "model.safetensors") and get_run_meta(run_dir).family == "sasrec"
    (run_dir / "config.json").write_text("[" * 100_000)
    with pytest.raises(InputError, match=r"config.json: cannot read the run's config \(nested deeper than 64"):
        get_run_meta(run_dir)
    weights = run_dir / "model.safetensors"
    header = b"[" * 100_000
    weights.write_bytes(len(header).to_bytes(8, "little") + header)
    assert count_parameters(weights) is None
    (run_dir / "meta.json").write_text('{"params": ' * 100_000)
    assert read_meta(run_dir) is None


def test_a_listed_run_that_cannot_be_read_is_skipped_not_raised(run_dir: Path, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """One deeply nested config.json or metrics.json in the runs folder raised RecursionError on every page that
    lists runs (Home, Train, Compare)."""
    import logging
    import shutil

    for name, file in (("deep-config", "config.json"), ("deep-metrics", "metrics.json"), ("junk", "config.json")):
        shutil.copytree(run_dir, tmp_path / name)
        (tmp_path / name / file).write_text("[" * 100_000 if name.startswith("deep") else '{"family": 7}')
    (tmp_path / "shown").mkdir()
    shutil.copytree(run_dir, tmp_path / "shown" / "ok")
    (tmp_path / "shown" / "ok" / "metrics.json").write_text(json.dumps({"test": {"NDCG@10": 0.1, "HR@10": 10**400}}))
    with caplog.at_level(logging.WARNING):
        listed = runs.list_runs(tmp_path)
    assert [info.name for info in listed] == ["run"]
    assert sorted(r.getMessage().split()[3] for r in caplog.records) == ["deep-config:", "deep-metrics:", "junk:"]
    assert runs.list_runs(tmp_path / "shown")[0].metrics == {"NDCG@10": 0.1}  # a page formats every number shown


# ------------------------------------------------------------------------------------- which data a run may score
def test_a_run_without_a_fingerprint_is_used_only_on_data_its_vocabulary_maps(run_dir: Path, data) -> None:
    """`"data": null` passes the schema; such a run was evaluated against any log given (IndexError for another
    catalogue size, wrong item names and plausible metrics with exit 0 for a same-size one)."""
    rewrite(run_dir, lambda c: c.update(data=None))
    run = runs.read_run_files(run_dir)
    runs.check_run_data(run, data, "the same log")  # its own data: same items at the same indices

    def log_of(item) -> object:  # noqa: ANN001 - item id per (user, step)
        rows = [(f"u{u}", item(u, t), t) for u in range(20) for t in range(6)]
        return build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))

    for other, detail in ((log_of(lambda u, t: f"i{(u + t) % 13}"), "the run knows 12 items, the data has 13"),
                          (log_of(lambda u, t: f"i{(u + t) % 11}"), "the run knows 12 items, the data has 11"),
                          (log_of(lambda u, t: f"x{(u + t) % 12}"), "item 'x0' of the data is not in the run's")):
        with pytest.raises(InputError, match=f"records no data fingerprint.*other.log is not such data.*{detail}"):
            runs.check_run_data(run, other, "other.log")
    vocab = json.loads((run_dir / "vocab.json").read_text())
    vocab["item_ids"] = vocab["item_ids"][::-1]  # the same items at other indices (a vocabulary in another order)
    (run_dir / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(InputError, match="item 'i0' is item 1 of the data but item 12 of the run"):
        runs.check_run_data(runs.read_run_files(run_dir), data, "the same log")
    rewrite(run_dir, lambda c: c.update(data={"fingerprint": "0" * 16}))
    with pytest.raises(InputError, match="is not the data this run was trained on"):
        runs.check_run_data(runs.read_run_files(run_dir), data, "the same log")


@pytest.mark.parametrize("command", ["evaluate", "recommend"])
def test_cli_refuses_a_fingerprintless_run_on_another_log(run_dir: Path, tmp_path: Path, command: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The probe as the reviewer ran it: before, an IndexError traceback (another catalogue size)."""
    from seqrec_core.cli import main

    rewrite(run_dir, lambda c: c.update(data=None))
    other = tmp_path / "other.csv"
    other.write_text("user_id,item_id,timestamp\n" + "".join(f"u{u},i{(u + t) % 13},{1_700_000_000 + 60 * t}\n"
                                                           for u in range(20) for t in range(6)))
    extra = ["--user", "u1"] if command == "recommend" else []
    assert main([command, "--run", str(run_dir), "--data", str(other), *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert "records no data fingerprint" in captured.err and "the run knows 12 items, the data has 13" in captured.err


# ------------------------------------------------------------------------------------- a load racing a replacement
def test_loads_racing_a_save_that_replaces_the_run_retry_or_refuse_in_one_line(tmp_path: Path, data) -> None:
    """4 of 3,390 loads beside a save loop raised an uncaught safetensors RuntimeError (the weights file vanished
    between two reads), and a load could read one run's files beside the next run's weights. A thread swaps two
    runs in turn with save_run's two renames (fast, so the loads race it often); every load must return one whole
    run, or say in one line that the folder kept changing."""
    import os
    import threading
    import time

    torch.manual_seed(1)
    models = [build_model("sasrec", data.vocab.n_items, hidden_size=8, num_layers=1, num_heads=1, max_len=6)
              for _ in range(2)]
    for turn, model in enumerate(models):  # the metrics say which model's weights belong with them
        save_run(tmp_path / f"ready{turn}", model=model, config={"data": {"fingerprint": data.fingerprint}},
                 vocab=data.vocab, metrics={"test": {"NDCG@10": float(turn)}}, history=[])
    target, stop = tmp_path / "run", threading.Event()
    os.rename(tmp_path / "ready0", target)

    def replace_in_a_loop() -> None:  # as run_save.swap_into_place: old run set aside, new one renamed in
        ready = tmp_path / "ready1"
        while not stop.is_set():
            aside = tmp_path / f".run.old-{runs.writer_id()}-{time.time_ns()}"
            os.rename(target, aside)
            os.rename(ready, target)
            os.rename(aside, ready)
            time.sleep(0.02)

    writer = threading.Thread(target=replace_in_a_loop, daemon=True)
    writer.start()
    outcomes = {"loaded": 0, "refused": 0}
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                run = load_run(target)
            except InputError as err:
                assert "was replaced while it was read" in str(err) and "\n" not in str(err), err
                outcomes["refused"] += 1
                continue
            expected = models[int(run.metrics["test"]["NDCG@10"])].state_dict()["item_emb.weight"]
            assert torch.equal(run.model.state_dict()["item_emb.weight"], expected), "files of two runs mixed"
            outcomes["loaded"] += 1
    finally:
        stop.set()
        writer.join(timeout=10)
    assert outcomes["loaded"] >= 10 and outcomes["refused"] <= outcomes["loaded"], outcomes
