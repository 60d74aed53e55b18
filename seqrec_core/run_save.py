"""Writing a run folder atomically, and cleaning up after writers that were killed.

Why a module of its own: the write path (temp folder beside the target, fsync, one rename, an old run set aside
and restored if the new one never arrives) is the part of the run format that must survive crashes and cancels,
and it has its own small protocol for naming temp folders (writer pid and host) that :mod:`seqrec_core.runs`
also uses when it unpacks an uploaded run, and :mod:`seqrec_core.jobs.claim` when a train job claims its run
folder before training. Loading and listing runs stay in ``runs``, which re-exports everything public here.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

from torch import nn

from seqrec_core.data.sequences import Vocab
from seqrec_core.errors import InputError
from seqrec_core.run_checks import FORMAT_VERSION, REQUIRED_FILES

log = logging.getLogger(__name__)

STALE_SECONDS = 3600  # a temp folder this old is abandoned even if a process with its writer's pid is alive
# Temp and set-aside folders beside runs: ".<name>.tmp-<pid>-<host>-<random>", ".<name>.old-<pid>-<host>-<ns>",
# ".upload.tmp-<pid>-<host>-..."; <host> (8 hex digits of the machine's name) because a runs folder on a shared
# disk may hold the temp folder of a live writer on another machine, whose pid means nothing here.
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[^/]*$")


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
    mix; temp folders a killed writer left beside it are removed here and by :func:`seqrec_core.runs.list_runs`."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"'{out}' exists and is a file; choose a folder path for the run")
    if out.is_dir() and any(out.iterdir()) and not is_run_folder(out):
        raise InputError(f"'{out}' is a non-empty folder that is not a run; refusing to overwrite it, "
                         "choose a new folder")
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{writer_id()}-", dir=out.parent))
    try:
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"family": str(config.get("family"))})
        fsync_path(tmp / "model.safetensors")
        _write(tmp / "config.json", _json_bytes(config))
        _write(tmp / "vocab.json", _json_bytes(vocab.to_json()))
        _write(tmp / "metrics.json", _json_bytes(metrics))
        _write(tmp / "history.jsonl", _jsonl_bytes(history))
        if progress_path is not None and Path(progress_path).is_file():
            shutil.copyfile(progress_path, tmp / "progress.jsonl")
            fsync_path(tmp / "progress.jsonl")
        fsync_path(tmp)
        swap_into_place(tmp, out)
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


def fsync_path(path: Path) -> None:
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


def swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temp folder onto ``out``; an old run there is moved aside first, then deleted.

    A kill between the two renames leaves the old run set aside as ``.<name>.old-<pid>-...``; the next
    :func:`clean_stale_temp` puts it back, so the previous run is never lost."""
    old = None
    if out.is_dir() and any(out.iterdir()):
        old = out.with_name(f".{out.name}.old-{writer_id()}-{time.time_ns()}")
        os.rename(out, old)
    try:
        try:
            # Onto an empty folder (the one claim_run_dir made) in one step: removing it first would leave a
            # moment in which another job could claim the name and then have its claim replaced by this run.
            os.rename(tmp, out)
        except OSError:
            if old is not None or not out.is_dir() or any(out.iterdir()):
                raise
            out.rmdir()  # where a rename cannot replace a folder (Windows)
            os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    fsync_path(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def temp_of(entry_name: str) -> str | None:
    """The run folder a temp or set-aside folder belongs to (``.<name>.tmp-...`` / ``.<name>.old-...``), or None
    when ``entry_name`` is not one."""
    match = _TEMP_NAME.match(entry_name)
    return match["name"] if match else None


def writer_id() -> str:
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


# What a save adds to the run folder's name for the folders it writes beside it: ".<name>.old-<pid>-<host>-<ns>"
# (pid up to 7 digits, Linux's pid_max being at most 2**22; time_ns 19 digits); the temp folder
# ".<name>.tmp-<pid>-<host>-<8 random>" is shorter. A name the file system takes but these do not would fail
# only when the trained model is saved (seqrec_core.jobs.claim refuses it before training).
SAVE_NAME_OVERHEAD = len(".") + len(".old-") + 7 + 1 + 8 + 1 + 19


def max_run_name_bytes(folder: Path) -> int:
    """The longest run folder name (in bytes) whose save's temp and set-aside folders still fit the file system
    of ``folder`` (the folder the run goes in)."""
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    return int(name_max) - SAVE_NAME_OVERHEAD
