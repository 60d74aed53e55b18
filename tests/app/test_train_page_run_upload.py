"""The Train page's run-zip upload refuses a crafted archive (a few KB whose config asks for 48 layers x hidden 4096,
which once made the loader allocate 11 GB) with one st.error naming the upload, and unpacks nothing."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def crafted_archive(tmp_path: Path, dataset) -> bytes:  # noqa: ANN001 - Dataset
    from seqrec_core.models import build_model
    from seqrec_core.runs import save_run

    torch.manual_seed(0)
    model = build_model("sasrec", dataset.sequences.vocab.n_items, hidden_size=8, num_layers=1, num_heads=1,
                        max_len=6)
    run = save_run(tmp_path / "crafted", model=model, config={"data": {"fingerprint": dataset.fingerprint}},
                   vocab=dataset.sequences.vocab, metrics={}, history=[])
    config = json.loads((run / "config.json").read_text())
    config["model"].update(hidden_size=4096, num_layers=48, num_heads=2)  # every field within its allowed range
    (run / "config.json").write_text(json.dumps(config))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in run.iterdir():
            z.writestr(f"crafted/{path.name}", path.read_bytes())
    return buf.getvalue()


def test_a_crafted_run_zip_is_refused_on_the_train_page(runs_dir: Path, small_dataset, tmp_path: Path) -> None:
    before = sorted(p.name for p in runs_dir.iterdir())
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["dataset"] = small_dataset
    at.run()
    at.switch_page("app_pages/3_Train.py")
    at.run()
    uploader = next(u for u in at.get("file_uploader") if u.label == "Run archive (.zip of the run folder)")
    uploader.set_value(("crafted-run.zip", crafted_archive(tmp_path, small_dataset), "application/zip"))
    at.run()
    next(b for b in at.button if b.label == "Load run").click().run()
    assert not at.exception, at.exception
    (message,) = [e.value for e in at.error]
    assert message.startswith("crafted-run.zip: ") and "\n" not in message
    assert "48 layers x hidden 4096" in message and "model-size limit" in message
    assert sorted(p.name for p in runs_dir.iterdir()) == before  # nothing unpacked, no temp folder left
