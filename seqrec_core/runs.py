"""A run is a folder: what was trained, on which data, how well, and its weights (safetensors + JSON only).

Layout: ``config.json`` (family, model and training configs, data info with fingerprint and source, versions,
device, timings), ``model.safetensors``, ``vocab.json``, ``metrics.json`` (``{"val", "test", "exclude_seen"}``),
``history.jsonl`` (one validated epoch per line) and ``progress.jsonl`` (every training event).

Why so strict: runs travel (trained on a GPU server, zipped, uploaded to the dashboard), and a pickle in such a
folder would run arbitrary code on load. Saving is atomic (temp folder beside the target, then one rename), so
a crash or a cancel never leaves half a run that the dashboard would list.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
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
from seqrec_core.models import build_config, family_of
from seqrec_core.models.base import Scorer

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
REQUIRED_FILES = ("config.json", "model.safetensors", "vocab.json")
RUN_FILES = frozenset(REQUIRED_FILES + ("metrics.json", "history.jsonl", "progress.jsonl"))
# Formats whose readers unpickle (torch.load, pickle, joblib, numpy object arrays, ...): refused by name, never opened.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt", ".joblib", ".npy", ".npz", ".dill", ".sav",
                   ".pkl.gz", ".pt.gz", ".tar")
MAX_ZIP_BYTES = 1 << 30  # an uploaded archive, compressed
MAX_UNPACKED_BYTES = 2 << 30  # and unpacked: a zip bomb stops here
MAX_ZIP_MEMBERS = 32  # a run has 6 files; room for folders and macOS forks, not for a million empty entries
MAX_FOLDER_ENTRIES = 1000  # files looked at (by name only) when checking a run folder for pickles
MAX_JSON_BYTES = {"config": 1 << 20, "vocabulary": 1 << 29, "metrics": 16 << 20, "history": 64 << 20}
MAX_HEADER_BYTES = 16 << 20  # safetensors header (JSON); its own reader allows 100 MB, a model here needs ~100 KB
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


def _read_bounded(path: Path, what: str) -> str:
    limit = MAX_JSON_BYTES[what]
    try:
        if path.stat().st_size > limit:
            raise InputError(f"{path}: the run's {what} file is {path.stat().st_size / 2**20:.1f} MiB, over the "
                             f"{limit / 2**20:.0f} MiB a run may hold; the run folder is damaged or not a run")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the run's {what} ({err}); the run folder is damaged") from None


def _read_json(path: Path, what: str) -> object:
    text = _read_bounded(path, what)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise InputError(f"{path}: cannot read the run's {what} ({reason}); the run folder is damaged") from None


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in _read_bounded(path, "history").splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def is_pickle_name(name: str) -> bool:
    """Whether a file name is one that torch.load, pickle, joblib or numpy would unpickle (judged by name only)."""
    lower = name.lower()
    return any(lower.endswith(suffix) for suffix in PICKLE_SUFFIXES)


def check_run_folder(path: Path) -> None:
    """Refuse anything that could unpickle (anywhere in the folder, judged by name, never opened) and folders
    missing a required file."""
    if not path.is_dir():
        raise InputError(f"run folder '{path}' does not exist; pick a folder made by `train`")
    seen = 0
    for parent, dirs, files in os.walk(path):
        for name in files + dirs:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                raise InputError(f"run folder '{path}' holds over {MAX_FOLDER_ENTRIES} files; a run holds six")
            if is_pickle_name(name):
                where = Path(parent, name).relative_to(path)
                raise InputError(f"run folder '{path}' contains '{where}': pickled files are refused for safety; "
                                 "a run holds only safetensors and JSON")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise InputError(f"run folder '{path}' lacks {', '.join(missing)}; it is not a complete run")


_NONE = type(None)
# config.json's top level: key -> allowed types. Required: family, model. Unknown keys are ignored with a warning.
CONFIG_SCHEMA: dict[str, tuple[type, ...]] = {
    "family": (str,), "model": (dict,), "train": (dict, _NONE), "data": (dict, _NONE), "device": (str, _NONE),
    "train_seconds": (int, float, _NONE), "stopped_reason": (str, _NONE), "best_epoch": (int, _NONE),
    "epochs_trained": (int, _NONE), "exclude_seen": (bool, _NONE), "versions": (dict, _NONE),
    "format_version": (int,), "library_version": (str, _NONE), "created": (str, _NONE),
}
STOP_REASONS = ("converged", "max_epochs", "time_budget", "cancelled")
MAX_TEXT = 10_000  # longest string a config field may hold


def _check_fields(config: dict, where: Path, warnings: list[str]) -> dict:
    """Types and ranges of the top-level fields; returns the config without unknown keys."""
    kept = {}
    for key, value in config.items():
        if key not in CONFIG_SCHEMA:
            warnings.append(f"config.json key '{key}' is not part of the run format; ignored")
            continue
        allowed = CONFIG_SCHEMA[key]
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            names = " or ".join("null" if t is _NONE else t.__name__ for t in allowed)
            raise InputError(f"{where}: '{key}' is {type(value).__name__} {str(value)[:40]!r}; it must be {names}")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise InputError(f"{where}: '{key}' is {len(value):,} characters long; at most {MAX_TEXT:,} are allowed")
        kept[key] = value
    for key in ("best_epoch", "epochs_trained"):
        if kept.get(key) is not None and not 0 <= kept[key] <= 1_000_000:
            raise InputError(f"{where}: '{key}' {kept[key]} is out of range; use a whole number from 0 to 1000000")
    seconds = kept.get("train_seconds")
    if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
        raise InputError(f"{where}: 'train_seconds' {seconds!r} must be a number >= 0")
    if kept.get("stopped_reason") is not None and kept["stopped_reason"] not in STOP_REASONS:
        raise InputError(f"{where}: 'stopped_reason' {kept['stopped_reason'][:40]!r} is not one of "
                         f"{', '.join(STOP_REASONS)}")
    data = kept.get("data") or {}
    for key in ("fingerprint", "name"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InputError(f"{where}: 'data.{key}' must be a string")
    return kept


def validate_run_config(config: object, where: Path, warnings: list[str] | None = None) -> dict:
    """Check config.json against the run schema; returns it without unknown keys (each noted in ``warnings``).

    Every family's options are checked by building its config dataclass, so a run can only describe a model
    this library would build itself. Every problem is one InputError line."""
    from seqrec_core.training import TrainConfig

    notes = warnings if warnings is not None else []
    if not isinstance(config, dict):
        raise InputError(f"{where}: config.json must hold a JSON object")
    family = config.get("family")
    if not isinstance(family, str):
        raise InputError(f"{where}: config.json lacks the model 'family'")
    family_of(family)  # unknown family -> InputError naming the known ones
    model = config.get("model")
    if not isinstance(model, dict) or isinstance(model.get("n_items"), bool) or not isinstance(model.get("n_items"), int):
        raise InputError(f"{where}: config.json 'model' must be an object with an integer 'n_items'")
    if model.get("family", family) != family:
        raise InputError(f"{where}: config.json family '{family}' disagrees with its model config")
    config = _check_fields(config, where, notes)
    options = {k: v for k, v in model.items() if k not in ("n_items", "family")}
    try:
        build_config(family, model["n_items"], **options)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    train = config.get("train")
    if train is not None:
        try:
            TrainConfig(**train)
        except TypeError as err:
            raise InputError(f"{where}: config.json 'train' has an unknown field ({err})") from None
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
    version = config.get("format_version", FORMAT_VERSION)
    if version > FORMAT_VERSION or version < 1:
        raise InputError(f"{where}: run format version {version!r} is not one this library understands "
                         f"(1 to {FORMAT_VERSION}); upgrade seqrec_core")
    for note in notes:
        log.warning("%s: %s", where, note)
    return config


# safetensors dtype names and their sizes in bytes
_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
              torch.bool: "BOOL"}
_ST_SIZES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def check_safetensors(path: Path, expected: dict[str, torch.Tensor], saved_by: str = "?") -> None:
    """Read only the header of a safetensors file and check it against the model before any weight is loaded.

    Refuses a header over :data:`MAX_HEADER_BYTES` (a hostile file could ask for gigabytes), tensors the model
    does not have or lacks, other shapes or dtypes, and byte ranges that overlap the file's end."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
                raise InputError(f"{path}: unreadable weights (safetensors header of {n} bytes in a {size}-byte "
                                 f"file; at most {MAX_HEADER_BYTES >> 20} MiB allowed); the file is damaged or not safetensors")
            header = json.loads(fh.read(n).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise InputError(f"{path}: unreadable weights (bad safetensors header: {type(err).__name__}); "
                         "the file is damaged or not safetensors") from None
    if not isinstance(header, dict):
        raise InputError(f"{path}: unreadable weights (the safetensors header is not an object)")
    header.pop("__metadata__", None)

    def mismatch(detail: str) -> InputError:
        return InputError(f"{path}: weights do not match the config ({detail}); the run was saved by seqrec_core "
                          f"{saved_by} with another layout of this model family: retrain it")

    missing, unexpected = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected[:3])}"] if unexpected else [])
        raise mismatch("; ".join(parts))
    body = size - 8 - n
    for name, entry in header.items():
        want = expected[name]
        if not isinstance(entry, dict):
            raise InputError(f"{path}: unreadable weights (header entry '{name[:60]}' is not an object)")
        shape, dtype, offsets = entry.get("shape"), entry.get("dtype"), entry.get("data_offsets")
        if shape != list(want.shape):
            raise mismatch(f"{name} has shape {str(shape)[:40]}, the model needs {list(want.shape)}")
        if dtype != _ST_DTYPES.get(want.dtype):
            raise mismatch(f"{name} has dtype {str(dtype)[:10]}, the model needs {_ST_DTYPES.get(want.dtype)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= body
                or offsets[1] - offsets[0] != want.numel() * _ST_SIZES[dtype]):
            raise InputError(f"{path}: unreadable weights (byte range {str(offsets)[:40]} of '{name}' does not fit "
                             "the file); the file is damaged")


def load_run(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """Load a run folder: JSON + safetensors only, config validated, weights checked against the model first."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from seqrec_core.models import model_from_config
    from seqrec_core.training import resolve_device

    folder = Path(path)
    check_run_folder(folder)
    warnings: list[str] = []
    config = validate_run_config(_read_json(folder / "config.json", "config"), folder / "config.json", warnings)
    vocab_obj = _read_json(folder / "vocab.json", "vocabulary")
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
    metrics = _read_json(folder / "metrics.json", "metrics") if (folder / "metrics.json").is_file() else {}
    return Run(path=folder, config=config, vocab=vocab, model=model, metrics=_clean_metrics(metrics, warnings),
               history=_read_jsonl(folder / "history.jsonl"), warnings=warnings)


def _clean_metrics(metrics: object, warnings: list[str]) -> dict:
    """metrics.json as pages use it: {part: {metric: number}} plus the exclude_seen flag; anything else dropped
    with a warning (a page formatting a planted string as a number would fail)."""
    if not isinstance(metrics, dict):
        warnings.append("metrics.json is not an object; ignored")
        return {}
    clean: dict = {}
    for part, values in metrics.items():
        if part == "exclude_seen" and isinstance(values, bool):
            clean[part] = values
        elif isinstance(values, dict):
            clean[part] = {str(k): v for k, v in values.items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if len(clean[part]) < len(values):
                warnings.append(f"metrics.json '{str(part)[:40]}' holds non-numbers; those were ignored")
        else:
            warnings.append(f"metrics.json key '{str(part)[:40]}' is not a metrics table; ignored")
    return clean


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
    members, prefix = _run_members(archive)
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


def _run_members(archive: zipfile.ZipFile) -> tuple[list[zipfile.ZipInfo], str | None]:
    """The archive's run files and its single top folder (if any), after refusing anything unexpected."""
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_MEMBERS:
        raise InputError(f"the archive holds {len(entries):,} entries; a run archive holds at most {MAX_ZIP_MEMBERS}")
    declared = sum(i.file_size for i in entries)
    if declared > MAX_UNPACKED_BYTES:
        raise InputError(f"the archive says it unpacks to {declared / 2**30:.1f} GiB; over 2 GiB is refused")
    files = [i for i in entries if not i.is_dir()]
    prefixes = set()
    for info in files:
        raw = info.filename
        path = PurePosixPath(raw)
        if raw.startswith("/") or "\\" in raw or ".." in path.parts or ":" in raw:
            raise InputError(f"the archive entry '{raw}' has an unsafe path; refused")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise InputError(f"the archive entry '{raw}' is a symbolic link; refused")
        if path.name.startswith("._") or path.parts[0] == "__MACOSX":
            continue  # macOS resource forks, harmless
        if is_pickle_name(path.name):
            raise InputError(f"the archive holds '{path.name}': pickled files are refused; a run holds only "
                             "safetensors and JSON")
        if path.name not in RUN_FILES or len(path.parts) > 2:
            raise InputError(f"unexpected file '{raw}' in the archive; a run holds only {', '.join(sorted(RUN_FILES))}")
        prefixes.add(path.parts[0] if len(path.parts) == 2 else "")
    kept = [i for i in files if not (PurePosixPath(i.filename).name.startswith("._")
                                     or PurePosixPath(i.filename).parts[0] == "__MACOSX")]
    if len(prefixes) > 1:
        raise InputError("the archive holds files from several folders; zip exactly one run folder")
    names = [PurePosixPath(i.filename).name for i in kept]
    if len(set(names)) != len(names):
        raise InputError("the archive holds the same file twice; zip exactly one run folder")
    missing = [n for n in REQUIRED_FILES if n not in names]
    if missing:
        raise InputError(f"the archive lacks {', '.join(missing)}; zip a complete run folder")
    prefix = next(iter(prefixes), "") or None
    if prefix is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", prefix):
        prefix = None  # the folder name becomes ours: keep only plain names
    return kept, prefix
