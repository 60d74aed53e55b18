"""Stored analyses of a run: ``<run>/analysis/<kind>-<key>/`` folders of Parquet tables and one ``meta.json``.

Why on disk, inside the run: the analyses only this tool has (how far back the model looks, faithfulness, planted
truth, UMAP maps) take seconds to minutes; computed once by ``python -m seqrec_core analyze`` (or the job the
dashboard starts), they make every page's first view instant, travel with the run (zip it, copy it from a GPU
server) and can be cited and reproduced: ``meta.json`` says which code version computed them, with which
parameters, on which data (fingerprint) and which weights (a hash of ``model.safetensors``).

One stored unit = one analysis ``kind`` (e.g. "longrange") at one set of parameters; its folder name carries a
short hash of the canonical parameters, so several settings of one kind live side by side and a page looks up
exactly the settings it shows. Each unit is written into a temp folder and renamed into place (an older unit
with the same parameters is swapped out), so a reader sees a whole unit or none, never half of one. Tables are
Parquet and metadata JSON only: nothing here ever unpickles, and what is read is checked like any run file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from seqrec_core.errors import InputError
from seqrec_core.run_files import loads_bounded, read_json

log = logging.getLogger(__name__)

ANALYSIS_DIR = "analysis"
META_FILE = "meta.json"
MAX_META_BYTES = 4 << 20
MAX_TABLE_BYTES = 512 << 20
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # kinds and table names
_FOLDER = re.compile(r"^(?P<kind>[a-z][a-z0-9_]{0,39})-(?P<key>[0-9a-f]{10})$")


def canonical_params(params: Mapping[str, object]) -> dict:
    """Parameters as plain JSON values in a fixed key order (tuples become lists, numpy scalars numbers)."""
    def plain(value: object) -> object:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
            return value.item()
        return value

    return {str(k): plain(params[k]) for k in sorted(params)}


def params_key(params: Mapping[str, object]) -> str:
    """10 hex digits identifying a set of parameters (part of the unit's folder name)."""
    text = json.dumps(canonical_params(params), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def unit_folder(run_dir: str | Path, kind: str, params: Mapping[str, object]) -> Path:
    if not _NAME.match(kind):
        raise InputError(f"analysis kind '{kind[:40]}' is not a plain name")
    return Path(run_dir) / ANALYSIS_DIR / f"{kind}-{params_key(params)}"


def weights_id(run_dir: str | Path) -> str:
    """Which model a stored analysis belongs to: 16 hex digits of the sha256 of ``model.safetensors`` and of the
    model's config (family and options), so other weights or the same weights read as another model both make
    stored results stale. Cached per path, sizes and modification times, so a page asks for it for free."""
    folder = Path(run_dir)
    weights, config = folder / "model.safetensors", folder / "config.json"
    try:
        w, c = weights.stat(), config.stat()
    except OSError:
        return "none"
    return _hash_model(str(folder.resolve()), w.st_size, w.st_mtime_ns, c.st_size, c.st_mtime_ns)


@lru_cache(maxsize=64)
def _hash_model(folder: str, *_stamps: int) -> str:
    digest = hashlib.sha256()
    with open(Path(folder) / "model.safetensors", "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    try:
        config = read_json(Path(folder) / "config.json", "config")
        model = {"family": config.get("family"), "model": config.get("model")} if isinstance(config, dict) else None
    except InputError:
        model = None
    digest.update(json.dumps(model, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def proven_loadable(run_dir: str | Path) -> bool:
    """Whether a stored analysis of exactly this model (weights and config) exists: the job that stored it loaded
    the model, so the model loads. Pages use this to skip loading a model only to check it."""
    current = weights_id(run_dir)
    return any(unit.meta.get("weights") == current for unit in list_units(run_dir))


@dataclass
class StoredUnit:
    """One stored analysis: its metadata, and its tables read on demand (Parquet)."""

    folder: Path
    kind: str
    params: dict
    meta: dict
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def info(self) -> dict:
        """Scalars the analysis reported besides its tables (e.g. a share, a user count)."""
        return dict(self.meta.get("info") or {})

    @property
    def created(self) -> str:
        return str(self.meta.get("created", ""))

    @property
    def seconds(self) -> float:
        return float(self.meta.get("seconds") or 0.0)

    @property
    def table_names(self) -> list[str]:
        return list((self.meta.get("tables") or {}).keys())

    def table(self, name: str) -> pd.DataFrame:
        """The named table (a copy the caller may change)."""
        if name not in self._tables:
            if name not in self.table_names or not _NAME.match(name):
                raise InputError(f"stored analysis '{self.folder.name}' has no table '{name[:40]}'")
            path = self.folder / f"{name}.parquet"
            try:
                if path.stat().st_size > MAX_TABLE_BYTES:
                    raise InputError(f"{path}: {path.stat().st_size >> 20} MiB is over the {MAX_TABLE_BYTES >> 20} "
                                     "MiB a stored table may hold")
                self._tables[name] = pd.read_parquet(path)
            except (OSError, ValueError) as err:
                raise InputError(f"{path}: the stored table cannot be read ({err}); compute it again") from None
        return self._tables[name].copy()

    def is_fresh(self, fingerprint: str | None, weights: str | None, version: int | None = None) -> bool:
        """Whether it was computed on this data and these weights (and, if given, this code version)."""
        return (self.meta.get("fingerprint") == fingerprint and self.meta.get("weights") == weights
                and (version is None or self.meta.get("version") == version))

    def describe(self) -> str:
        """'computed 2026-12-06 21:14 UTC in 12.3 s on cpu' (for the pages' captions and the report)."""
        when = self.created.replace("T", " ")[:16]
        device = self.meta.get("device")
        return f"computed {when} UTC in {self.seconds:.1f} s" + (f" on {device}" if device else "")


def read_meta(folder: Path) -> dict | None:
    path = folder / META_FILE
    try:
        if path.stat().st_size > MAX_META_BYTES:
            log.warning("%s: over %d MiB; ignored", path, MAX_META_BYTES >> 20)
            return None
        meta = loads_bounded(path.read_text(encoding="utf-8"), path, "stored analysis")
    except (OSError, UnicodeDecodeError, InputError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("params"), dict) or not isinstance(
            meta.get("tables", {}), dict):
        return None
    return meta


def read_unit(run_dir: str | Path, kind: str, params: Mapping[str, object]) -> StoredUnit | None:
    """The stored unit of ``kind`` at exactly ``params``, or None (never computed, or unreadable)."""
    folder = unit_folder(run_dir, kind, params)
    meta = read_meta(folder)
    if meta is None or meta.get("kind") != kind or meta.get("params") != canonical_params(params):
        return None
    return StoredUnit(folder=folder, kind=kind, params=meta["params"], meta=meta)


def list_units(run_dir: str | Path, kind: str | None = None) -> list[StoredUnit]:
    """Every readable stored unit of the run (of one ``kind`` if given), newest first."""
    base = Path(run_dir) / ANALYSIS_DIR
    if not base.is_dir():
        return []
    units = []
    for folder in base.iterdir():
        match = _FOLDER.match(folder.name)
        if match is None or (kind is not None and match["kind"] != kind) or not folder.is_dir():
            continue
        meta = read_meta(folder)
        if meta is None or meta.get("kind") != match["kind"]:
            continue
        units.append(StoredUnit(folder=folder, kind=match["kind"], params=meta["params"], meta=meta))
    return sorted(units, key=lambda u: u.created, reverse=True)


def _check_table(name: str, frame: pd.DataFrame) -> None:
    if not _NAME.match(name):
        raise ValueError(f"table name '{name}' is not a plain name")
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"table '{name}' is a {type(frame).__name__}, not a DataFrame")


def _json_safe(value: object) -> object:
    """NaN and infinities as null (JSON has none), numpy scalars as numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_unit(run_dir: str | Path, kind: str, params: Mapping[str, object], tables: Mapping[str, pd.DataFrame], *,
               info: Mapping[str, object] | None = None, fingerprint: str | None, weights: str | None,
               version: int, seconds: float, device: str | None = None) -> StoredUnit:
    """Write one unit atomically (temp folder, fsync, rename; an older unit with the same parameters is replaced)."""
    from seqrec_core import __version__
    from seqrec_core.run_save import fsync_path, swap_into_place, writer_id

    folder = unit_folder(run_dir, kind, params)
    base = folder.parent
    base.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        _check_table(name, frame)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-{writer_id()}-", dir=base))
    try:
        rows = {}
        for name, frame in tables.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
            fsync_path(tmp / f"{name}.parquet")
            rows[name] = int(len(frame))
        meta = {"kind": kind, "version": int(version), "params": canonical_params(params),
                "fingerprint": fingerprint, "weights": weights, "tables": rows, "info": _json_safe(dict(info or {})),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "seconds": round(float(seconds), 3),
                "device": device, "library_version": __version__}
        with open(tmp / META_FILE, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_path(tmp)
        swap_into_place(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return StoredUnit(folder=folder, kind=kind, params=meta["params"], meta=meta, _tables={})


def clean_stale_units(run_dir: str | Path) -> list[Path]:
    """Temp folders a killed writer left in the run's analysis folder (same rules as beside runs)."""
    from seqrec_core.run_save import clean_stale_temp

    base = Path(run_dir) / ANALYSIS_DIR
    return clean_stale_temp(base) if base.is_dir() else []
