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
import logging
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

import torch
from torch import nn

from seqrec_core.data.sequences import SequenceData, Vocab
from seqrec_core.errors import InputError
from seqrec_core.models.base import Scorer
from seqrec_core.models.size_limits import check_weights_size
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
    read_safetensors_header,
    stored_model_config,
    validate_run_config,
)
from seqrec_core.run_save import _HOST as _HOST  # for tests that name temp folders as a writer here would
from seqrec_core.run_save import STALE_SECONDS, clean_stale_temp, is_run_folder, save_run, temp_of, writer_id

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [  # names defined here, and those re-exported from run_save and run_checks that callers import from here
    "CONFIG_SCHEMA", "FORMAT_VERSION", "MAX_FOLDER_ENTRIES", "MAX_HEADER_BYTES", "MAX_JSON_BYTES", "MAX_TEXT",
    "MAX_UNPACKED_BYTES", "MAX_ZIP_BYTES", "MAX_ZIP_MEMBERS", "PICKLE_SUFFIXES", "REQUIRED_FILES", "RUN_FILES",
    "STALE_SECONDS", "STOP_REASONS", "Run", "RunFiles", "RunInfo", "check_run_data", "check_run_folder",
    "check_safetensors", "clean_stale_temp", "is_pickle_name", "is_run_folder", "list_runs", "load_run",
    "read_run_files", "read_steadily", "runs_root", "save_run", "unpack_run_zip", "validate_run_config",
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
        return int(self.config["model"].get("max_len") or (self.config.get("train") or {}).get("max_len", 50))


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
    return read_steadily(folder, lambda: _read_files(folder))


def _read_files(folder: Path) -> RunFiles:
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
    for what, ids in (("item", vocab.item_ids), ("user", vocab.user_ids)):
        if len(set(ids)) != len(ids):  # one id at two indices: which one a person's id means would be a guess
            raise InputError(f"{folder / 'vocab.json'}: the same {what} id is listed twice; the run folder is damaged")
    metrics = read_json(folder / "metrics.json", "metrics") if (folder / "metrics.json").is_file() else {}
    return RunFiles(path=folder, config=config, vocab=vocab, metrics=clean_metrics(metrics, warnings),
                    history=read_jsonl(folder / "history.jsonl"), warnings=warnings)


def load_run(path: str | Path, device: str | torch.device = "cpu", files: RunFiles | None = None) -> Run:
    """Load a run folder: JSON + safetensors only, config validated, weights checked against the model first.
    ``files``: its JSON files when already read (:func:`read_run_files`)."""
    folder = files.path if files is not None else Path(path)
    given = [files] if files is not None else []

    def load_once() -> Run:  # the caller's files on the first try; a retry after a replacement reads them again
        return _load(given.pop() if given else _read_files(folder), device)

    return read_steadily(folder, load_once)


def _load(files: RunFiles, device: str | torch.device) -> Run:
    """The model of a run whose JSON files are read: its size checked against the weights file's header, then
    built, checked tensor by tensor and loaded (in that order, so a config asking for a model its weights do not
    hold is refused before a byte of the model is allocated)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from seqrec_core.models import family_of
    from seqrec_core.training.config import resolve_device

    folder, config = files.path, files.config
    saved_by = str(config.get("library_version") or "?")
    model_config = stored_model_config(config["family"], config["model"])
    weights = folder / "model.safetensors"
    header = read_safetensors_header(weights)
    check_weights_size(weights, *header, model_config)
    model = family_of(config["family"]).model_cls(model_config)
    check_safetensors(weights, model.state_dict(), saved_by, header)
    try:
        state = load_file(str(weights), device="cpu")
    # RuntimeError: torch cannot open (or map) the file, e.g. it was deleted in between
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise InputError(f"{weights}: unreadable weights ({reason})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:2]
        raise InputError(f"{weights}: weights do not match the config ({' '.join(first)}); the run was saved by "
                         f"seqrec_core {saved_by} with another layout of this model family: retrain it") from None
    dev = resolve_device(device) if isinstance(device, str) else device
    model.to(dev).eval()
    return Run(path=folder, config=config, vocab=files.vocab, model=model, metrics=files.metrics,
               history=files.history, warnings=list(files.warnings))


LOAD_TRIES = 4  # reads of a run folder that a save keeps replacing, before the load gives up in one line


def _stamp(folder: Path) -> tuple[int, ...] | None:
    """What changes when a save swaps a new run in: the folder's inode and times, and its weights file's."""
    try:
        own, weights = folder.stat(), (folder / "model.safetensors").stat()
    except OSError:
        return None
    return own.st_ino, own.st_mtime_ns, own.st_ctime_ns, weights.st_ino, weights.st_mtime_ns, weights.st_size


def _save_in_progress(folder: Path) -> bool:
    """Whether a save is swapping ``folder`` right now: its temp or set-aside sibling exists (see run_save)."""
    try:
        return any(temp_of(entry.name) == folder.name for entry in folder.parent.iterdir())
    except OSError:
        return False


def read_steadily(folder: Path, read: Callable[[], T]) -> T:
    """``read()`` of a run folder, repeated when a save replaced the folder while it ran.

    Why: :func:`save_run` swaps a new run in with two renames, so a read that races it may see the old run's
    config beside the new run's weights, a missing file, or no folder at all for an instant (4 of 3,390 loads
    beside a save loop raised a safetensors RuntimeError). A read whose folder changed under it (inode, times,
    weights file) is thrown away and repeated a few times with a short pause; errors of a folder that stayed the
    same are the folder's own and pass through unchanged."""
    for attempt in range(LOAD_TRIES):
        before = _stamp(folder)
        try:
            result = read()
        except Exception:
            after = _stamp(folder)
            if before == after and not (after is None and _save_in_progress(folder)):
                raise  # the folder's own problem, not a race
        else:
            if before is not None and _stamp(folder) == before:
                return result
        if attempt < LOAD_TRIES - 1:
            time.sleep(0.02 * 2**attempt)
    raise InputError(f"run folder '{folder}' was replaced while it was read, {LOAD_TRIES} times in a row (a training "
                     "is saving to it?); open it again when the save has finished")


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
    """Runs under ``root`` (default :func:`runs_root`), newest first; hidden folders are skipped, and so is (with a
    logged warning naming it and why) any run whose config or metrics cannot be read, so that one damaged run
    never stops a page that lists runs.

    Temp folders that a killed save left behind are cleaned first (a set-aside old run is restored)."""
    base = Path(root) if root is not None else runs_root()
    if not base.is_dir():
        return []
    clean_stale_temp(base)
    found = []
    for folder in base.iterdir():
        if folder.name.startswith(".") or not is_run_folder(folder):
            continue
        try:
            found.append(_run_info(folder))
        except (InputError, OSError) as err:
            log.warning("skipping run folder %s: %s", folder.name, err)
    return [info for _key, info in sorted(found, key=lambda pair: pair[0], reverse=True)]


def _run_info(folder: Path) -> tuple[tuple[str, float], RunInfo]:
    """A run's list entry and its sort key (creation time, then folder time), read with the loader's bounds."""
    config = read_json(folder / "config.json", "config")
    metrics = read_json(folder / "metrics.json", "metrics") if (folder / "metrics.json").is_file() else {}
    if not isinstance(config, dict) or not isinstance(config.get("family"), str):
        raise InputError(f"{folder / 'config.json'}: lacks the model 'family'; the run folder is damaged")
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    fingerprint = data.get("fingerprint")
    created = str(config.get("created", ""))[:MAX_TEXT]
    info = RunInfo(path=folder, name=folder.name, family=config["family"][:MAX_TEXT], created=created,
                   metrics=clean_metrics(metrics, []).get("test", {}),
                   fingerprint=fingerprint if isinstance(fingerprint, str) else None)
    return (created, folder.stat().st_mtime), info


def check_run_data(run: Run | RunFiles, sequences: SequenceData, name: str) -> None:
    """Refuse to use a run on data whose item indices are not the run's own (``name``: the data, for the message).

    A run that records its data's fingerprint is used only on that data. A run that records none (``"data":
    null`` passes the schema) is used only on data whose vocabulary is the run's, item for item: the model's
    scores are columns of the run's item indices, so on another catalogue they would name the wrong items (or
    index past the end) while every metric still looked plausible."""
    expected = (run.config.get("data") or {}).get("fingerprint")
    if expected:
        if expected != sequences.fingerprint:
            raise InputError(f"the data ({name}, fingerprint {sequences.fingerprint}) is not the data this run was "
                             f"trained on (fingerprint {expected}); pass the same log and filtering options")
        return
    ours, theirs = run.vocab.item_ids, sequences.vocab.item_ids
    if ours == theirs:
        return
    known = set(ours)
    stranger = next((item for item in theirs if item not in known), None)
    if len(ours) != len(theirs):
        detail = f"the run knows {len(ours):,} items, the data has {len(theirs):,}"
    elif stranger is not None:
        detail = f"item '{stranger[:60]}' of the data is not in the run's vocabulary"
    else:
        at = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
        detail = (f"item '{theirs[at][:60]}' is item {at + 1} of the data but item "
                  f"{ours.index(theirs[at]) + 1} of the run")
    raise InputError(f"run '{run.path}' records no data fingerprint, so it is used only on data its vocabulary maps "
                     f"item for item, and {name} is not such data ({detail}); pass the log the run was trained on")


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
        try:
            load_run(tmp)  # the same checks as any run: schema, weights, vocabulary
        except InputError as err:  # name the archive's files, not the temp folder they were unpacked to
            raise InputError(str(err).replace(f"{tmp}/", "the archive's ").replace(str(tmp), "the archive")) from None
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
