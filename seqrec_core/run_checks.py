"""Checks of run files that arrive from elsewhere: folders, config.json, safetensors headers, JSON, zip archives.

Why a module of its own: runs travel (trained on a GPU server, zipped, uploaded to the dashboard), so everything a
run holds is untrusted input. These checks refuse, with one :class:`InputError` line each, whatever could run code
(pickles, judged by name and never opened), exhaust memory (huge JSON, headers, archives) or reach a page in a
shape it cannot show; :mod:`seqrec_core.runs` calls them when it loads or unpacks a run. Kept apart from saving and
listing so the whole trust boundary can be read (and reviewed) in one place; it never imports ``runs``.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import zipfile
from pathlib import Path, PurePosixPath

import torch

from seqrec_core.errors import InputError
from seqrec_core.models import build_config, family_of
from seqrec_core.models.size_limits import SAFETENSORS_BYTES, check_model_size
from seqrec_core.run_files import (  # noqa: F401 - re-exported: runs and its callers read run files through here
    MAX_HEADER_BYTES,
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    loads_bounded,
    nests_deeper_than,
    read_bounded,
    read_json,
    read_jsonl,
    read_safetensors_header,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
REQUIRED_FILES = ("config.json", "model.safetensors", "vocab.json")
RUN_FILES = frozenset(REQUIRED_FILES + ("metrics.json", "history.jsonl", "progress.jsonl"))
# Formats whose readers unpickle (torch.load, pickle, joblib, numpy object arrays, ...): refused by name, never opened.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt", ".joblib", ".npy", ".npz", ".dill", ".sav",
                   ".pkl.gz", ".pt.gz", ".tar")
# A run has 6 files, and its stored analyses (analysis/<kind>-<key>/meta.json + Parquet tables) a few hundred at
# most; room for folders and macOS forks, not for a million empty entries.
MAX_ZIP_MEMBERS = 2000
MAX_FOLDER_ENTRIES = 5000  # files looked at (by name only) when checking a run folder for pickles
# What an archive may hold under analysis/: one folder per stored unit, holding its meta.json and Parquet tables.
_ANALYSIS_UNIT = re.compile(r"^[a-z][a-z0-9_]{0,39}-[0-9a-f]{10}$")
_ANALYSIS_FILE = re.compile(r"^(meta\.json|[a-z][a-z0-9_]{0,39}\.parquet)$")



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
    "format_version": (int,), "library_version": (str, _NONE), "created": (str, _NONE), "verdict": (dict, _NONE),
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
    _check_data(kept.get("data") or {}, where)
    return kept


def _is_int(value: object, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _check_data(data: dict, where: Path) -> None:
    """The ``data`` record: what the run was trained on and how to reopen it (commands on the run reopen the
    source when no --data is given, so a wrong type there would surface as a traceback deep in data loading)."""
    for key in ("fingerprint", "name"):
        if data.get(key) is not None and not (isinstance(data[key], str) and len(data[key]) <= MAX_TEXT):
            raise InputError(f"{where}: 'data.{key}' must be a string of at most {MAX_TEXT:,} characters")
    for key in ("users", "items", "events"):
        if data.get(key) is not None and not _is_int(data[key], 0, 10**12):
            raise InputError(f"{where}: 'data.{key}' is {type(data[key]).__name__} {str(data[key])[:40]!r}; it must "
                             "be a whole number >= 0")
    source = data.get("source")
    if source is None:
        return
    if not isinstance(source, dict):
        raise InputError(f"{where}: 'data.source' must be an object (path, format, columns, prep, demo_seed) or null")
    _check_source(source, where)


def _check_source(source: dict, where: Path) -> None:
    """The source record as :meth:`DataSource.from_json` reads it, then each field by type and range."""
    from seqrec_core.data.dataset import DataSource
    from seqrec_core.data.formats import FORMATS

    try:
        parsed = DataSource.from_json(source)
    except InputError as err:
        raise InputError(f"{where}: 'data.source' is malformed ({str(err)[:120]})") from None
    prep, rating = parsed.prep, parsed.prep.min_rating
    rules = [("path", isinstance(source.get("path"), str) and 0 < len(parsed.path) <= MAX_TEXT,
              "the log's path (a non-empty string)"),
             ("format", parsed.format in FORMATS, f"one of {', '.join(FORMATS)}"),
             ("demo_seed", _is_int(parsed.demo_seed, 0, 2**63 - 1), "a whole number >= 0"),
             ("prep.k_core", _is_int(prep.k_core, 0, 10**9), "a whole number from 0 to 1000000000"),
             ("prep.min_user_events", _is_int(prep.min_user_events, 1, 10**9), "a whole number from 1 to 1000000000"),
             ("prep.drop_duplicates", isinstance(prep.drop_duplicates, bool), "true or false"),
             ("prep.min_rating", rating is None or (not isinstance(rating, bool) and isinstance(rating, (int, float))
                                                    and math.isfinite(rating)), "a finite number or null")]
    rules += [(f"columns.{key}", value is None or (isinstance(value, str) and len(value) <= MAX_TEXT),
               "a column name (a string) or null") for key, value in dataclasses.asdict(parsed.columns).items()]
    for key, ok, want in rules:
        if not ok:
            value = source.get(key) if "." not in key else source[key.split(".")[0]].get(key.split(".")[1])
            raise InputError(f"{where}: 'data.source.{key}' is {type(value).__name__} {str(value)[:40]!r}; it must "
                             f"be {want}")


def stored_model_config(family: str, model: dict) -> object:
    """The family's config dataclass that a run's stored ``model`` record describes, read as the loader builds it:
    fields the run predates take the family's ``STORED_DEFAULTS`` (what they meant when it was saved). The size
    check and the model the loader builds both come from this one object, so they cannot disagree."""
    config_cls = family_of(family).config_cls
    options = {k: v for k, v in model.items() if k not in ("n_items", "family")}
    return build_config(family, model["n_items"], **{**getattr(config_cls, "STORED_DEFAULTS", {}), **options})


def validate_run_config(config: object, where: Path, warnings: list[str] | None = None) -> dict:
    """Check config.json against the run schema; returns it without unknown keys (each noted in ``warnings``).

    Every family's options are checked by building its config dataclass, so a run can only describe a model
    this library would build itself. Every problem is one InputError line."""
    from seqrec_core.training.config import TrainConfig

    notes = warnings if warnings is not None else []
    if not isinstance(config, dict):
        raise InputError(f"{where}: config.json must hold a JSON object")
    family = config.get("family")
    if not isinstance(family, str):
        raise InputError(f"{where}: config.json lacks the model 'family'")
    family_of(family)  # unknown family -> InputError naming the known ones
    model = config.get("model")
    if (not isinstance(model, dict) or isinstance(model.get("n_items"), bool)
            or not isinstance(model.get("n_items"), int)):
        raise InputError(f"{where}: config.json 'model' must be an object with an integer 'n_items'")
    if model.get("family", family) != family:
        raise InputError(f"{where}: config.json family '{family}' disagrees with its model config")
    config = _check_fields(config, where, notes)
    try:
        model_config = stored_model_config(family, model)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    check_model_size(model_config, str(where))  # before anything builds it: a few bytes may ask for tens of GB
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


# safetensors dtype names of the dtypes models here hold
_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
              torch.bool: "BOOL"}


def check_safetensors(path: Path, expected: dict[str, torch.Tensor], saved_by: str = "?",
                      header: tuple[dict, int] | None = None) -> None:
    """Check a safetensors file's header (read now, or ``header`` as :func:`read_safetensors_header` gave it)
    against the model's state dict before any weight is loaded.

    Refuses tensors the model does not have or lacks, other shapes or dtypes, and byte ranges that overlap the
    file's end."""
    entries, body = header if header is not None else read_safetensors_header(path)

    def mismatch(detail: str) -> InputError:
        return InputError(f"{path}: weights do not match the config ({detail}); the run was saved by seqrec_core "
                          f"{saved_by} with another layout of this model family: retrain it")

    missing, unexpected = sorted(set(expected) - set(entries)), sorted(set(entries) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected[:3])}"] if unexpected else [])
        raise mismatch("; ".join(parts))
    for name, entry in entries.items():
        want = expected[name]
        shape, dtype, offsets = entry.get("shape"), entry.get("dtype"), entry.get("data_offsets")
        if shape != list(want.shape):
            raise mismatch(f"{name} has shape {str(shape)[:40]}, the model needs {list(want.shape)}")
        if dtype != _ST_DTYPES.get(want.dtype):
            raise mismatch(f"{name} has dtype {str(dtype)[:10]}, the model needs {_ST_DTYPES.get(want.dtype)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= body
                or offsets[1] - offsets[0] != want.numel() * SAFETENSORS_BYTES[dtype]):
            raise InputError(f"{path}: unreadable weights (byte range {str(offsets)[:40]} of '{name}' does not fit "
                             "the file); the file is damaged")


def clean_metrics(metrics: object, warnings: list[str]) -> dict:
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
            clean[part] = {str(k): v for k, v in values.items() if _is_number(v)}
            if len(clean[part]) < len(values):
                warnings.append(f"metrics.json '{str(part)[:40]}' holds non-numbers; those were ignored")
        else:
            warnings.append(f"metrics.json key '{str(part)[:40]}' is not a metrics table; ignored")
    return clean


def _is_number(value: object) -> bool:
    """A metric a page can format: a float, or an int a float can hold (json reads 1e400-digit ints)."""
    return isinstance(value, float) or (not isinstance(value, bool) and isinstance(value, int)
                                        and abs(value) < 2**1023)


def analysis_member(path: PurePosixPath) -> str | None:
    """"analysis/<unit>/<file>" when an archive member is a stored-analysis file (under an optional top folder),
    else None."""
    parts = path.parts[1:] if len(path.parts) == 4 else path.parts
    if (len(parts) == 3 and parts[0] == "analysis" and _ANALYSIS_UNIT.match(parts[1])
            and _ANALYSIS_FILE.match(parts[2])):
        return "/".join(parts)
    return None


def member_path(path: PurePosixPath) -> str:
    """Where an accepted archive member goes inside the run folder (a run file, or analysis/<unit>/<file>)."""
    return analysis_member(path) or path.name


def check_run_archive(archive: zipfile.ZipFile, max_unpacked_bytes: int) -> tuple[list[zipfile.ZipInfo], str | None]:
    """The archive's run files and its single top folder (if any), after refusing anything unexpected.

    Judged from the archive's directory alone, before anything is written. ``max_unpacked_bytes`` bounds the
    declared sizes; the caller owns that limit because it also enforces it on the bytes actually unpacked."""
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_MEMBERS:
        raise InputError(f"the archive holds {len(entries):,} entries; a run archive holds at most {MAX_ZIP_MEMBERS}")
    declared = sum(i.file_size for i in entries)
    if declared > max_unpacked_bytes:
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
        inner = analysis_member(path)
        if inner is not None:
            prefixes.add(path.parts[0] if len(path.parts) == 4 else "")
            continue
        if path.name not in RUN_FILES or len(path.parts) > 2:
            raise InputError(f"unexpected file '{raw}' in the archive; a run holds only {', '.join(sorted(RUN_FILES))} "
                             "and its stored analyses (analysis/<kind>-<key>/meta.json and .parquet tables)")
        prefixes.add(path.parts[0] if len(path.parts) == 2 else "")
    kept = [i for i in files if not (PurePosixPath(i.filename).name.startswith("._")
                                     or PurePosixPath(i.filename).parts[0] == "__MACOSX")]
    if len(prefixes) > 1:
        raise InputError("the archive holds files from several folders; zip exactly one run folder")
    names = [member_path(PurePosixPath(i.filename)) for i in kept]
    if len(set(names)) != len(names):
        raise InputError("the archive holds the same file twice; zip exactly one run folder")
    missing = [n for n in REQUIRED_FILES if n not in names]
    if missing:
        raise InputError(f"the archive lacks {', '.join(missing)}; zip a complete run folder")
    prefix = next(iter(prefixes), "") or None
    if prefix is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", prefix):
        prefix = None  # the folder name becomes ours: keep only plain names
    return kept, prefix
