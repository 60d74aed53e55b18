"""A run is a folder: what was trained, on which data, how well, and its weights (safetensors + JSON only).

Layout: ``config.json`` (family, model and training configs, data info with fingerprint and source, versions,
device, timings), ``model.safetensors``, ``vocab.json``, ``metrics.json`` (``{"val", "test", "exclude_seen"}``),
``history.jsonl`` (one validated epoch per line) and ``progress.jsonl`` (every training event).

Why so strict: runs travel (trained on a GPU server, zipped, uploaded to the dashboard), and a pickle in such a
folder would run arbitrary code on load. Saving is atomic (temp folder beside the target, then one rename), so
a crash or a cancel never leaves half a run that the dashboard would list.

This module saves, loads, lists and unpacks runs and cleans the temp folders a killed save leaves; the checks of
untrusted run files live in :mod:`seqrec_core.run_checks` (re-exported here, so existing imports keep working).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
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
    read_json,
    read_jsonl,
    validate_run_config,
)

log = logging.getLogger(__name__)

__all__ = [  # names defined here, and the checks re-exported from run_checks that callers import from here
    "CONFIG_SCHEMA", "FORMAT_VERSION", "MAX_FOLDER_ENTRIES", "MAX_HEADER_BYTES", "MAX_JSON_BYTES", "MAX_TEXT",
    "MAX_UNPACKED_BYTES", "MAX_ZIP_BYTES", "MAX_ZIP_MEMBERS", "PICKLE_SUFFIXES", "REQUIRED_FILES", "RUN_FILES",
    "STALE_SECONDS", "STOP_REASONS", "Run", "RunInfo", "check_run_folder", "check_safetensors", "clean_stale_temp",
    "is_pickle_name", "is_run_folder", "list_runs", "load_run", "runs_root", "save_run", "unpack_run_zip",
    "validate_run_config",
]

MAX_ZIP_BYTES = 1 << 30  # an uploaded archive, compressed
MAX_UNPACKED_BYTES = 2 << 30  # and unpacked (declared and actual): a zip bomb stops here
STALE_SECONDS = 3600  # a temp folder this old is abandoned even if a process with its writer's pid is alive
# Temp and set-aside folders beside runs: ".<name>.tmp-<pid>-<host>-<random>", ".<name>.old-<pid>-<host>-<ns>",
# ".upload.tmp-<pid>-<host>-..."; <host> (8 hex digits of the machine's name) because a runs folder on a shared
# disk may hold the temp folder of a live writer on another machine, whose pid means nothing here.
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[^/]*$")


def runs_root() -> Path:
    """Where runs live: $SEQREC_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("SEQREC_RUNS_DIR") or "runs")


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and all((path / name).is_file() for name in REQUIRED_FILES)


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=1, allow_nan=True, default=str).encode("utf-8")


def _jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows).encode("utf-8")


def save_run(out_dir: str | Path, *, model: nn.Module, config: dict, vocab: Vocab, metrics: dict,
             history: list[dict], progress_path: str | Path | None = None) -> Path:
    """Write a run folder atomically; replaces an existing run there, refuses any other non-empty folder.

    Files are fsynced before the rename, so after a crash the folder holds the old run or the new one, never a
    mix; temp folders a killed writer left beside it are removed here and by :func:`list_runs`."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"'{out}' exists and is a file; choose a folder path for the run")
    if out.is_dir() and any(out.iterdir()) and not is_run_folder(out):
        raise InputError(f"'{out}' is a non-empty folder that is not a run; refusing to overwrite it, choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp(out.parent)
    model_cfg = getattr(model, "config", None)
    config = dict(config)
    if model_cfg is not None and hasattr(model_cfg, "to_dict"):
        config.setdefault("family", model_cfg.family)
        config.setdefault("model", model_cfg.to_dict())
    config.setdefault("format_version", FORMAT_VERSION)
    config.setdefault("library_version", _library_version())
    config.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{_writer()}-", dir=out.parent))
    try:
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"family": str(config.get("family"))})
        _fsync(tmp / "model.safetensors")
        _write(tmp / "config.json", _json_bytes(config))
        _write(tmp / "vocab.json", _json_bytes(vocab.to_json()))
        _write(tmp / "metrics.json", _json_bytes(metrics))
        _write(tmp / "history.jsonl", _jsonl_bytes(history))
        if progress_path is not None and Path(progress_path).is_file():
            shutil.copyfile(progress_path, tmp / "progress.jsonl")
            _fsync(tmp / "progress.jsonl")
        _fsync(tmp)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved run to %s", out)
    return out


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk; best effort where the OS refuses folders."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temp folder onto ``out``; an old run there is moved aside first, then deleted.

    A kill between the two renames leaves the old run set aside as ``.<name>.old-<pid>-...``; the next
    :func:`clean_stale_temp` puts it back, so the previous run is never lost."""
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = out.with_name(f".{out.name}.old-{_writer()}-{time.time_ns()}")
            os.rename(out, old)
        else:
            out.rmdir()
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    _fsync(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _writer() -> str:
    """Who writes a temp folder: "<pid>-<host>" (see :data:`_TEMP_NAME`)."""
    return f"{os.getpid()}-{_HOST}"


def _pid_alive(pid: int, host: str) -> bool:
    if host != _HOST:
        return True  # another machine's writer: only the age rule applies
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process (or cannot tell): only the age rule may remove its folders
    return True


def clean_stale_temp(root: str | Path) -> list[Path]:
    """Remove temp folders that a killed writer left under ``root``, and restore runs it had set aside.

    A folder is stale when its writer (pid on this machine, in its name) is dead, or it is older than
    :data:`STALE_SECONDS`.
    A set-aside old run whose place is empty is renamed back (the new run never arrived); any other stale
    folder is deleted. Returns what was removed or restored."""
    base = Path(root)
    touched: list[Path] = []
    try:
        entries = [e for e in base.iterdir() if e.name.startswith(".")]
    except OSError:
        return touched
    now = time.time()
    for entry in sorted(entries, key=lambda e: e.name):
        match = _TEMP_NAME.match(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        if _pid_alive(int(match["pid"]), match["host"]) and age < STALE_SECONDS:
            continue
        target = base / match["name"]
        try:
            if match["kind"] == "old" and is_run_folder(entry) and not is_run_folder(target):
                if target.is_dir() and not any(target.iterdir()):
                    target.rmdir()
                if target.exists():  # something else took its place: keep the old run where it is
                    log.warning("kept %s: an interrupted save set it aside and %s is not a run", entry, target)
                    continue
                os.rename(entry, target)
                log.warning("restored run %s that an interrupted save had set aside", target)
                touched.append(target)
                continue
            shutil.rmtree(entry)
            log.info("removed stale temp folder %s", entry)
            touched.append(entry)
        except OSError as err:
            log.warning("could not clean %s: %s", entry, err)
    return touched


def _library_version() -> str:
    from seqrec_core import __version__

    return __version__


@dataclass
class Run:
    """A loaded run: its config, vocabulary, model (eval mode) and recorded results.

    ``warnings`` lists what loading ignored (unknown config keys), each with its reason."""

    path: Path
    config: dict
    vocab: Vocab
    model: nn.Module
    metrics: dict
    history: list[dict]
    warnings: list[str] = field(default_factory=list)

    @property
    def family(self) -> str:
        return str(self.config["family"])

    @property
    def max_len(self) -> int:
        return int(self.config["model"].get("max_len") or self.config.get("train", {}).get("max_len", 50))

    def scorer(self, device: str | torch.device = "cpu", batch_size: int = 256) -> Scorer:
        """The model as a :class:`Scorer` (numpy float32 scores) on ``device`` ("auto" picks a GPU if any)."""
        from seqrec_core.models.neural import NeuralScorer
        from seqrec_core.training import resolve_device

        dev = resolve_device(device) if isinstance(device, str) else device
        first = next(iter(self.model.parameters()), None)
        if first is not None and first.device != dev:  # no mutation of a shared model in the usual CPU case
            self.model.to(dev)
        return NeuralScorer(self.model, self.max_len, dev, batch_size=batch_size, name=self.path.name)


def load_run(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """Load a run folder: JSON + safetensors only, config validated, weights checked against the model first."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from seqrec_core.models import model_from_config
    from seqrec_core.training import resolve_device

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
    metrics = read_json(folder / "metrics.json", "metrics") if (folder / "metrics.json").is_file() else {}
    return Run(path=folder, config=config, vocab=vocab, model=model, metrics=clean_metrics(metrics, warnings),
               history=read_jsonl(folder / "history.jsonl"), warnings=warnings)




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
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise InputError("the upload is not a zip archive; zip the run folder (config.json, model.safetensors, ...)") from None
    members, prefix = check_run_archive(archive, MAX_UNPACKED_BYTES)
    root = Path(dest_root)
    root.mkdir(parents=True, exist_ok=True)
    clean_stale_temp(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".upload.tmp-{_writer()}-", dir=root))
    try:
        written = 0
        for info in members:
            name = PurePosixPath(info.filename).name
            try:
                with archive.open(info) as src, open(tmp / name, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > MAX_UNPACKED_BYTES:
                            raise InputError("the archive unpacks to more than 2 GiB; refused")
                        dst.write(chunk)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error) as err:
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
