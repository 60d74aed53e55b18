"""A run is a folder: what was trained, on which data, how well, and its weights (safetensors + JSON only).

Layout: ``config.json`` (family, model and training configs, data info with fingerprint and source, versions,
device, timings), ``model.safetensors``, ``vocab.json``, ``metrics.json`` (``{"val", "test", "exclude_seen"}``),
``history.jsonl`` (one validated epoch per line) and ``progress.jsonl`` (every training event).

Why so strict: runs travel (trained on a GPU server, zipped, uploaded to the dashboard), and a pickle in such a
folder would run arbitrary code on load. Saving is atomic (temp folder beside the target, then one rename), so
a crash or a cancel never leaves half a run that the dashboard would list.

This module loads, lists and unpacks runs. Saving (atomic writes, and cleaning the temp folders a killed save
leaves) lives in :mod:`seqrec_core.run_save`, the checks of untrusted run files in :mod:`seqrec_core.run_checks`;
both are re-exported here, so ``from seqrec_core.runs import save_run`` and the like keep working.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import torch
from torch import nn

from seqrec_core.data.sequences import Vocab
from seqrec_core.errors import InputError
from seqrec_core.models.base import Scorer
from seqrec_core.run_checks import (
    CONFIG_SCHEMA,
    FORMAT_VERSION,
    MAX_FOLDER_ENTRIES,
    MAX_HEADER_BYTES,
    MAX_JSON_BYTES,
    MAX_TEXT,
    MAX_ZIP_MEMBERS,
    PICKLE_SUFFIXES,
    REQUIRED_FILES,
    RUN_FILES,
    STOP_REASONS,
    check_run_archive,
    check_run_folder,
    check_safetensors,
    clean_metrics,
    is_pickle_name,
    member_path,
    read_json,
    read_jsonl,
    validate_run_config,
)
from seqrec_core.run_save import _HOST as _HOST  # for tests that name temp folders as a writer here would
from seqrec_core.run_save import STALE_SECONDS, clean_stale_temp, is_run_folder, save_run, writer_id

log = logging.getLogger(__name__)

__all__ = [  # names defined here, and those re-exported from run_save and run_checks that callers import from here
    "CONFIG_SCHEMA", "FORMAT_VERSION", "MAX_FOLDER_ENTRIES", "MAX_HEADER_BYTES", "MAX_JSON_BYTES", "MAX_TEXT",
    "MAX_UNPACKED_BYTES", "MAX_ZIP_BYTES", "MAX_ZIP_MEMBERS", "PICKLE_SUFFIXES", "REQUIRED_FILES", "RUN_FILES",
    "STALE_SECONDS", "STOP_REASONS", "Run", "RunFiles", "RunInfo", "check_run_folder", "check_safetensors",
    "clean_stale_temp", "is_pickle_name", "is_run_folder", "list_runs", "load_run", "read_run_files", "runs_root",
    "save_run", "unpack_run_zip", "validate_run_config",
]

MAX_ZIP_BYTES = 1 << 30  # an uploaded archive, compressed
MAX_UNPACKED_BYTES = 2 << 30  # and unpacked (declared and actual): a zip bomb stops here


def runs_root() -> Path:
    """Where runs live: $SEQREC_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("SEQREC_RUNS_DIR") or "runs")


class _ConfigFacts:
    """What :class:`Run` and :class:`RunFiles` both read off a run's config."""

    config: dict

    @property
    def family(self) -> str:
        return str(self.config["family"])

    @property
    def max_len(self) -> int:
        return int(self.config["model"].get("max_len") or self.config.get("train", {}).get("max_len", 50))


@dataclass
class Run(_ConfigFacts):
    """A loaded run: its config, vocabulary, model (eval mode) and recorded results.

    ``warnings`` lists what loading ignored (unknown config keys), each with its reason."""

    path: Path
    config: dict
    vocab: Vocab
    model: nn.Module
    metrics: dict
    history: list[dict]
    warnings: list[str] = field(default_factory=list)

    def scorer(self, device: str | torch.device = "cpu", batch_size: int = 256) -> Scorer:
        """The model as a :class:`Scorer` (numpy float32 scores) on ``device`` ("auto" picks a GPU if any)."""
        from seqrec_core.models.neural import NeuralScorer
        from seqrec_core.training.config import resolve_device

        dev = resolve_device(device) if isinstance(device, str) else device
        first = next(iter(self.model.parameters()), None)
        if first is not None and first.device != dev:  # no mutation of a shared model in the usual CPU case
            self.model.to(dev)
        return NeuralScorer(self.model, self.max_len, dev, batch_size=batch_size, name=self.path.name)


@dataclass(frozen=True)
class RunFiles(_ConfigFacts):
    """Everything of a run but its weights: config (validated), vocabulary, recorded metrics and history.

    Why apart from :class:`Run`: building the model imports transformers (seconds on a cold start); pages that show
    stored results need only these JSON files, and load the model when a person asks for something live."""

    path: Path
    config: dict
    vocab: Vocab
    metrics: dict
    history: list[dict]
    warnings: list[str] = field(default_factory=list)


def read_run_files(path: str | Path) -> RunFiles:
    """A run folder's JSON files, checked as :func:`load_run` checks them (the weights are not read)."""
    folder = Path(path)
    check_run_folder(folder)
    warnings: list[str] = []
    config = validate_run_config(read_json(folder / "config.json", "config"), folder / "config.json", warnings)
    vocab_obj = read_json(folder / "vocab.json", "vocabulary")
    try:
        vocab = Vocab.from_json(vocab_obj)  # type: ignore[arg-type]
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise InputError(f"{folder / 'vocab.json'}: malformed vocabulary ({err}); the run folder is damaged") from None
    if vocab.n_items != config["model"]["n_items"]:
        raise InputError(f"{folder}: vocab.json has {vocab.n_items} items but the model was built for "
                         f"{config['model']['n_items']}; the run folder is inconsistent")
    metrics = read_json(folder / "metrics.json", "metrics") if (folder / "metrics.json").is_file() else {}
    return RunFiles(path=folder, config=config, vocab=vocab, metrics=clean_metrics(metrics, warnings),
                    history=read_jsonl(folder / "history.jsonl"), warnings=warnings)


def load_run(path: str | Path, device: str | torch.device = "cpu", files: RunFiles | None = None) -> Run:
    """Load a run folder: JSON + safetensors only, config validated, weights checked against the model first.
    ``files``: its JSON files when already read (:func:`read_run_files`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from seqrec_core.models import model_from_config
    from seqrec_core.training.config import resolve_device

    files = files if files is not None else read_run_files(path)
    folder, config = files.path, files.config
    model = model_from_config({"family": config["family"], **config["model"]})
    weights = folder / "model.safetensors"
    check_safetensors(weights, model.state_dict(), str(config.get("library_version") or "?"))
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"{weights}: unreadable weights ({err})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:2]
        raise InputError(f"{weights}: weights do not match the config ({' '.join(first)}); "
                         f"the run was saved by seqrec_core {config.get('library_version', '?')} with another layout "
                         "of this model family: retrain it") from None
    dev = resolve_device(device) if isinstance(device, str) else device
    model.to(dev).eval()
    return Run(path=folder, config=config, vocab=files.vocab, model=model, metrics=files.metrics,
               history=files.history, warnings=list(files.warnings))


@dataclass(frozen=True)
class RunInfo:
    """What a list of runs shows, read from JSON only (no weights loaded)."""

    path: Path
    name: str
    family: str
    created: str
    metrics: dict  # test metrics
    fingerprint: str | None


def list_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Runs under ``root`` (default :func:`runs_root`), newest first; broken or hidden folders are skipped.

    Temp folders that a killed save left behind are cleaned first (a set-aside old run is restored)."""
    base = Path(root) if root is not None else runs_root()
    if not base.is_dir():
        return []
    clean_stale_temp(base)
    infos = []
    for folder in base.iterdir():
        if folder.name.startswith(".") or not is_run_folder(folder):
            continue
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            metrics_path = folder / "metrics.json"
            metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
            data = config.get("data") or {}
            infos.append(RunInfo(path=folder, name=folder.name, family=str(config["family"]),
                                 created=str(config.get("created", "")),
                                 metrics=dict((metrics or {}).get("test") or {}),
                                 fingerprint=data.get("fingerprint") if isinstance(data, dict) else None))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("skipping broken run folder %s", folder)
    return sorted(infos, key=lambda r: (r.created, r.path.stat().st_mtime), reverse=True)


def unpack_run_zip(data: bytes, dest_root: str | Path) -> Path:
    """Unpack an uploaded run archive into a new folder under ``dest_root`` and return it.

    Accepts the run files at the top level or inside one folder; refuses other names (pickles included), path
    tricks, links, more than :data:`MAX_ZIP_MEMBERS` entries, archives over 1 GiB or unpacking (declared or
    actual) past 2 GiB, and any run that does not load.
    """
    if len(data) > MAX_ZIP_BYTES:
        raise InputError(f"the archive is {len(data) / 2**20:.0f} MiB; runs over {MAX_ZIP_BYTES >> 20} MiB are refused")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise InputError("the upload is not a zip archive; "
                         "zip the run folder (config.json, model.safetensors, ...)") from None
    members, prefix = check_run_archive(archive, MAX_UNPACKED_BYTES)
    root = Path(dest_root)
    root.mkdir(parents=True, exist_ok=True)
    clean_stale_temp(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".upload.tmp-{writer_id()}-", dir=root))
    try:
        written = 0
        for info in members:
            name = member_path(PurePosixPath(info.filename))  # a run file, or analysis/<unit>/<file> (checked)
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(tmp / name, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > MAX_UNPACKED_BYTES:
                            raise InputError("the archive unpacks to more than 2 GiB; refused")
                        dst.write(chunk)
            except InputError:
                raise
            # ValueError: a damaged header can point before the start of the file ("negative seek value")
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error, ValueError) as err:
                raise InputError(f"the archive entry '{info.filename}' cannot be unpacked ({err}); "
                                 "zip the run folder again without encryption") from None
        load_run(tmp)  # the same checks as any run: schema, weights, vocabulary
        base = prefix or f"uploaded-{time.strftime('%Y%m%d-%H%M%S')}"
        target = root / base
        n = 1
        while target.exists():
            n += 1
            target = root / f"{base}-{n}"
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
