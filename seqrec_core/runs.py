"""A run is a folder: what was trained, on which data, how well, and its weights (safetensors + JSON only).

Layout: ``config.json`` (family, model and training configs, data info with fingerprint and source, versions,
device, timings), ``model.safetensors``, ``vocab.json``, ``metrics.json`` (``{"val", "test", "exclude_seen"}``),
``history.jsonl`` (one validated epoch per line) and ``progress.jsonl`` (every training event).

Why so strict: runs travel (trained on a GPU server, zipped, uploaded to the dashboard), and a pickle in such a
folder would run arbitrary code on load. Saving is atomic (temp folder beside the target, then one rename), so
a crash or a cancel never leaves half a run that the dashboard would list.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
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
PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt", ".joblib", ".npy", ".npz")
MAX_ZIP_BYTES = 1 << 30  # an uploaded archive, compressed
MAX_UNPACKED_BYTES = 2 << 30  # and unpacked: a zip bomb stops here


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
    """Write a run folder atomically; replaces an existing run there, refuses any other non-empty folder."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"'{out}' exists and is a file; choose a folder path for the run")
    if out.is_dir() and any(out.iterdir()) and not is_run_folder(out):
        raise InputError(f"'{out}' is a non-empty folder that is not a run; refusing to overwrite it, choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    model_cfg = getattr(model, "config", None)
    config = dict(config)
    if model_cfg is not None and hasattr(model_cfg, "to_dict"):
        config.setdefault("family", model_cfg.family)
        config.setdefault("model", model_cfg.to_dict())
    config.setdefault("format_version", FORMAT_VERSION)
    config.setdefault("library_version", _library_version())
    config.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"family": str(config.get("family"))})
        (tmp / "config.json").write_bytes(_json_bytes(config))
        (tmp / "vocab.json").write_bytes(_json_bytes(vocab.to_json()))
        (tmp / "metrics.json").write_bytes(_json_bytes(metrics))
        (tmp / "history.jsonl").write_bytes(_jsonl_bytes(history))
        if progress_path is not None and Path(progress_path).is_file():
            shutil.copyfile(progress_path, tmp / "progress.jsonl")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved run to %s", out)
    return out


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temp folder onto ``out``; an old run there is moved aside first, then deleted."""
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = out.with_name(f".{out.name}.old-{os.getpid()}-{time.time_ns()}")
            os.rename(out, old)
        else:
            out.rmdir()
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _library_version() -> str:
    from seqrec_core import __version__

    return __version__


@dataclass
class Run:
    """A loaded run: its config, vocabulary, model (eval mode) and recorded results."""

    path: Path
    config: dict
    vocab: Vocab
    model: nn.Module
    metrics: dict
    history: list[dict]

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
        self.model.to(dev)
        return NeuralScorer(self.model, self.max_len, dev, batch_size=batch_size, name=self.path.name)


def _read_json(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read the run's {what} ({err}); the run folder is damaged") from None


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def check_run_folder(path: Path) -> None:
    """Refuse anything that could unpickle, and folders missing a required file."""
    if not path.is_dir():
        raise InputError(f"run folder '{path}' does not exist; pick a folder made by `train`")
    for child in path.iterdir():
        if child.suffix.lower() in PICKLE_SUFFIXES:
            raise InputError(f"run folder '{path}' contains '{child.name}': pickled files are refused for safety; "
                             "a run holds only safetensors and JSON")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise InputError(f"run folder '{path}' lacks {', '.join(missing)}; it is not a complete run")


def validate_run_config(config: object, where: Path) -> dict:
    """Check config.json against the run schema; returns it. Every problem is one InputError line."""
    from seqrec_core.training import TrainConfig

    if not isinstance(config, dict):
        raise InputError(f"{where}: config.json must hold a JSON object")
    family = config.get("family")
    if not isinstance(family, str):
        raise InputError(f"{where}: config.json lacks the model 'family'")
    family_of(family)  # unknown family -> InputError naming the known ones
    model = config.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("n_items"), int):
        raise InputError(f"{where}: config.json 'model' must be an object with an integer 'n_items'")
    if model.get("family", family) != family:
        raise InputError(f"{where}: config.json family '{family}' disagrees with its model config")
    options = {k: v for k, v in model.items() if k not in ("n_items", "family")}
    try:
        build_config(family, model["n_items"], **options)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    train = config.get("train")
    if train is not None:
        if not isinstance(train, dict):
            raise InputError(f"{where}: config.json 'train' must be an object")
        try:
            TrainConfig(**train)
        except TypeError as err:
            raise InputError(f"{where}: config.json 'train' has an unknown field ({err})") from None
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
    version = config.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(f"{where}: run format version {version!r} is newer than this library understands "
                         f"({FORMAT_VERSION}); upgrade seqrec_core")
    return config


def load_run(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """Load a run folder: JSON + safetensors only, config validated, weights checked against the config."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from seqrec_core.models import model_from_config
    from seqrec_core.training import resolve_device

    folder = Path(path)
    check_run_folder(folder)
    config = validate_run_config(_read_json(folder / "config.json", "config"), folder / "config.json")
    vocab_obj = _read_json(folder / "vocab.json", "vocabulary")
    try:
        vocab = Vocab.from_json(vocab_obj)  # type: ignore[arg-type]
    except (KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{folder / 'vocab.json'}: malformed vocabulary ({err}); the run folder is damaged") from None
    if vocab.n_items != config["model"]["n_items"]:
        raise InputError(f"{folder}: vocab.json has {vocab.n_items} items but the model was built for "
                         f"{config['model']['n_items']}; the run folder is inconsistent")
    model = model_from_config({"family": config["family"], **config["model"]})
    try:
        state = load_file(str(folder / "model.safetensors"), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"{folder / 'model.safetensors'}: unreadable weights ({err})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:2]
        raise InputError(f"{folder / 'model.safetensors'}: weights do not match the config ({' '.join(first)}); "
                         f"the run was saved by seqrec_core {config.get('library_version', '?')} with another layout "
                         "of this model family: retrain it") from None
    dev = resolve_device(device) if isinstance(device, str) else device
    model.to(dev).eval()
    metrics = _read_json(folder / "metrics.json", "metrics") if (folder / "metrics.json").is_file() else {}
    return Run(path=folder, config=config, vocab=vocab, model=model,
               metrics=metrics if isinstance(metrics, dict) else {}, history=_read_jsonl(folder / "history.jsonl"))


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
    """Runs under ``root`` (default :func:`runs_root`), newest first; broken or hidden folders are skipped."""
    base = Path(root) if root is not None else runs_root()
    if not base.is_dir():
        return []
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
    tricks, links, archives over 1 GiB or unpacking past 2 GiB, and any run that does not load.
    """
    if len(data) > MAX_ZIP_BYTES:
        raise InputError(f"the archive is {len(data) / 2**20:.0f} MiB; runs over {MAX_ZIP_BYTES >> 20} MiB are refused")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError("the upload is not a zip archive; zip the run folder (config.json, model.safetensors, ...)") from None
    members, prefix = _run_members(archive)
    root = Path(dest_root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".upload.tmp-", dir=root))
    try:
        written = 0
        for info in members:
            name = PurePosixPath(info.filename).name
            with archive.open(info) as src, open(tmp / name, "wb") as dst:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_UNPACKED_BYTES:
                        raise InputError("the archive unpacks to more than 2 GiB; refused")
                    dst.write(chunk)
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
    files = [i for i in archive.infolist() if not i.is_dir()]
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
        if path.suffix.lower() in PICKLE_SUFFIXES:
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
