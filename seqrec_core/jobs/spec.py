"""What a background job does, as one typed, JSON-serialisable spec: train a model, or analyse a saved run.

Why: the Train page, the analysis buttons on the other pages and the CLI's flags all describe the same work.
One spec, written by whoever asks (``spec.json`` in the job folder) and read by ``python -m seqrec_core train|analyze
--spec FILE``, means nothing is turned into command-line strings and parsed back, and the data the dashboard
already cleaned is handed over as it is (``DataSpec.prepared``) instead of being read and cleaned again.

Everything read from a spec file is untrusted: every field is checked here or by the config it builds (the
family's config, :class:`TrainConfig`), and every problem is one :class:`InputError` line.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from seqrec_core.data.dataset import Dataset, DataSource
from seqrec_core.errors import InputError
from seqrec_core.training.config import TrainConfig

SPEC_VERSION = 1
MAX_SPEC_BYTES = 1 << 20
EXCLUDE_SEEN = ("auto", "on", "off")
MAX_USERS_ASKED = 10_000  # users an analysis may be asked to explain by id (each is a few forward/backward passes)


def _check_keys(obj: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in set(obj) - allowed)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown[:5])}; allowed: {', '.join(sorted(allowed))}")


def _json_scalar(value: object) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


@dataclass(frozen=True)
class DataSpec:
    """The log a job works on: how to reopen it, optionally a prepared copy to use as is, and its fingerprint.

    ``source`` is what a run records (so ``evaluate --run`` can reopen the log later); ``prepared`` is a Parquet
    file of the already cleaned events (the dashboard writes one per fingerprint), read without cleaning again;
    ``fingerprint``, when given, must be the fingerprint of what the job ends up with (else the job refuses:
    the file changed since the page looked at it)."""

    source: DataSource
    prepared: str | None = None
    fingerprint: str | None = None
    name: str | None = None  # what the dashboard calls the log (an upload's file name); default: the source's

    def to_json(self) -> dict:
        return {"source": self.source.to_json(), "prepared": self.prepared, "fingerprint": self.fingerprint,
                "name": self.name}

    def open(self) -> Dataset:
        """The log, from the prepared copy when there is one; refused when it is not the data asked for."""
        from seqrec_core.data.dataset import open_dataset, open_prepared

        ds = open_prepared(self.prepared, self.source, self.name) if self.prepared else open_dataset(self.source)
        if self.fingerprint and ds.fingerprint != self.fingerprint:
            raise InputError(f"the data ({ds.name}) has fingerprint {ds.fingerprint}, not {self.fingerprint} as the "
                             "job asked: the file changed since it was started; start the job again")
        return ds

    @classmethod
    def from_json(cls, obj: object, where: str = "data") -> DataSpec:
        if not isinstance(obj, dict) or not isinstance(obj.get("source"), dict):
            raise InputError(f"{where} must be an object with a 'source' (path, format, columns, prep)")
        _check_keys(obj, {"source", "prepared", "fingerprint", "name"}, where)
        for key in ("prepared", "fingerprint", "name"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise InputError(f"{where}.{key} must be a string or null")
        return cls(source=DataSource.from_json(obj["source"]), prepared=obj.get("prepared"),
                   fingerprint=obj.get("fingerprint"), name=obj.get("name"))


@dataclass(frozen=True)
class AnalysisRequest:
    """Which stored analyses to compute.

    ``parts``: names of :data:`seqrec_core.analysis.PARTS` (or "all"), each at its default settings, with
    ``params`` overriding a kind's defaults (``{kind: {param: value}}``; the kind checks them). ``units``: instead,
    exactly these ``{"kind", "params"}`` (what a page's "Compute now" asks for). ``users`` are explained by id on top
    of a default ``sample`` of users. Stored results that are still fresh are reused unless ``force``."""

    parts: tuple[str, ...] = ("all",)
    users: tuple[str, ...] = ()
    sample: int | None = None  # None = the analysis' default sample size
    params: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    units: tuple[Mapping[str, object], ...] = ()
    force: bool = False

    def __post_init__(self) -> None:
        if not self.parts or not all(isinstance(p, str) and p for p in self.parts):
            raise InputError("analysis parts must be a non-empty list of part names (or 'all')")
        if len(self.users) > MAX_USERS_ASKED or not all(isinstance(u, str) for u in self.users):
            raise InputError(f"analysis users must be a list of at most {MAX_USERS_ASKED:,} user ids (strings)")
        if self.sample is not None and (isinstance(self.sample, bool) or not isinstance(self.sample, int)
                                        or not 0 <= self.sample <= MAX_USERS_ASKED):
            raise InputError(f"analysis sample {self.sample!r} must be a whole number from 0 to {MAX_USERS_ASKED:,}")
        if not isinstance(self.params, Mapping):
            raise InputError("analysis params must map a part name to its parameters")
        for part, values in self.params.items():
            if not isinstance(values, Mapping) or not all(isinstance(k, str) and _json_scalar(v)
                                                          for k, v in values.items()):
                raise InputError(f"analysis params for '{part}' must be an object of plain values")
        for unit in self.units:
            if (not isinstance(unit, Mapping) or not isinstance(unit.get("kind"), str)
                    or not isinstance(unit.get("params", {}), Mapping) or set(unit) - {"kind", "params"}):
                raise InputError("each analysis unit must be an object with a 'kind' and its 'params'")
        if not isinstance(self.force, bool):
            raise InputError("analysis 'force' must be true or false")

    def to_json(self) -> dict:
        return {"parts": list(self.parts), "users": list(self.users), "sample": self.sample,
                "params": {k: dict(v) for k, v in self.params.items()},
                "units": [{"kind": u["kind"], "params": dict(u.get("params") or {})} for u in self.units],
                "force": self.force}

    @classmethod
    def from_json(cls, obj: object, where: str = "analysis") -> AnalysisRequest:
        if not isinstance(obj, dict):
            raise InputError(f"{where} must be an object with parts, users, sample, params")
        _check_keys(obj, {"parts", "users", "sample", "params", "units", "force"}, where)
        parts, users, units = obj.get("parts", ["all"]), obj.get("users", []), obj.get("units", [])
        if not isinstance(parts, list) or not isinstance(users, list) or not isinstance(units, list):
            raise InputError(f"{where}: parts, users and units must be lists")
        params = obj.get("params") or {}
        if not isinstance(params, dict):
            raise InputError(f"{where}.params must be an object")
        return cls(parts=tuple(parts), users=tuple(users), sample=obj.get("sample"), params=params,
                   units=tuple(units), force=obj.get("force", False))


@dataclass(frozen=True)
class TrainSpec:
    """Train ``family`` on ``data`` into the run folder ``out``; optionally analyse the run right after."""

    KIND: ClassVar[str] = "train"
    data: DataSpec
    family: str
    out: str
    model_options: Mapping[str, object] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    exclude_seen: str = "auto"
    analyze: AnalysisRequest | None = None

    def __post_init__(self) -> None:
        from seqrec_core.models import MODEL_FAMILIES

        if self.family not in MODEL_FAMILIES:
            raise InputError(f"model family '{str(self.family)[:40]}' is unknown; use one of "
                             f"{', '.join(MODEL_FAMILIES)}")
        if not isinstance(self.out, str) or not self.out:
            raise InputError("the run folder to create (out) must be a non-empty path")
        if not isinstance(self.model_options, Mapping) or not all(
                isinstance(k, str) and _json_scalar(v) for k, v in self.model_options.items()):
            raise InputError("model options must be an object of plain values (numbers, strings, true/false, null)")
        if self.exclude_seen not in EXCLUDE_SEEN:
            raise InputError(f"exclude_seen '{str(self.exclude_seen)[:20]}' is not one of {', '.join(EXCLUDE_SEEN)}")

    def to_json(self) -> dict:
        return {"kind": self.KIND, "version": SPEC_VERSION, "data": self.data.to_json(), "family": self.family,
                "out": self.out, "model_options": dict(self.model_options), "train": self.train.to_dict(),
                "exclude_seen": self.exclude_seen,
                "analyze": None if self.analyze is None else self.analyze.to_json()}

    @classmethod
    def from_json(cls, obj: dict) -> TrainSpec:
        _check_keys(obj, {"kind", "version", "data", "family", "out", "model_options", "train", "exclude_seen",
                          "analyze"}, "train spec")
        analyze = obj.get("analyze")
        return cls(data=DataSpec.from_json(obj.get("data")), family=obj.get("family"), out=obj.get("out"),
                   model_options=obj.get("model_options") or {},
                   train=TrainConfig.from_dict(obj.get("train") or {}, "train spec 'train'"),
                   exclude_seen=obj.get("exclude_seen", "auto"),
                   analyze=None if analyze is None else AnalysisRequest.from_json(analyze, "train spec 'analyze'"))


@dataclass(frozen=True)
class AnalyzeSpec:
    """Compute and store ``request``'s analyses of the run folder ``run`` (on its recorded data unless ``data``)."""

    KIND: ClassVar[str] = "analyze"
    run: str
    request: AnalysisRequest = field(default_factory=AnalysisRequest)
    device: str = "auto"
    data: DataSpec | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.run, str) or not self.run:
            raise InputError("the run folder to analyse (run) must be a non-empty path")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise InputError(f"device '{str(self.device)[:20]}' is not one of auto, cpu, cuda, mps")

    def to_json(self) -> dict:
        return {"kind": self.KIND, "version": SPEC_VERSION, "run": self.run, "device": self.device,
                **self.request.to_json(), "data": None if self.data is None else self.data.to_json()}

    @classmethod
    def from_json(cls, obj: dict) -> AnalyzeSpec:
        request_keys = ("parts", "users", "sample", "params", "units", "force")
        _check_keys(obj, {"kind", "version", "run", "device", "data", *request_keys}, "analyze spec")
        request = AnalysisRequest.from_json({k: obj[k] for k in request_keys if k in obj})
        data = obj.get("data")
        return cls(run=obj.get("run"), request=request, device=obj.get("device", "auto"),
                   data=None if data is None else DataSpec.from_json(data))


JobSpec = TrainSpec | AnalyzeSpec
SPEC_KINDS: dict[str, type[TrainSpec] | type[AnalyzeSpec]] = {"train": TrainSpec, "analyze": AnalyzeSpec}


def spec_from_json(obj: object, expected: str | None = None) -> JobSpec:
    """The spec a JSON object describes (its ``kind`` says which); ``expected`` refuses another kind."""
    if not isinstance(obj, dict):
        raise InputError("a job spec must be a JSON object with a 'kind' (train or analyze)")
    kind = obj.get("kind")
    if kind not in SPEC_KINDS:
        raise InputError(f"job spec kind {str(kind)[:20]!r} is not one of {', '.join(SPEC_KINDS)}")
    if expected is not None and kind != expected:
        raise InputError(f"this is a '{kind}' job spec; run it with `python -m seqrec_core {kind} --spec FILE`")
    version = obj.get("version", SPEC_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SPEC_VERSION:
        raise InputError(f"job spec version {str(version)[:10]} is not one this library reads (1 to {SPEC_VERSION})")
    try:
        return SPEC_KINDS[kind].from_json(obj)
    except (TypeError, ValueError, AttributeError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"the {kind} job spec is malformed ({err})") from None


def load_spec(path: str | Path, expected: str | None = None) -> JobSpec:
    """Read a spec file (size-bounded JSON)."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_SPEC_BYTES:
            raise InputError(f"job spec '{p}' is over {MAX_SPEC_BYTES >> 20} MiB; a spec is a small JSON file")
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"job spec '{p}' does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise InputError(f"job spec '{p}' is not readable JSON ({type(err).__name__}: {str(err)[:80]})") from None
    return spec_from_json(obj, expected)


def write_spec(spec: JobSpec, path: str | Path) -> Path:
    """Write a spec file atomically (a reader never sees half of it)."""
    import os

    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(spec.to_json(), indent=1, default=str), encoding="utf-8")
    os.replace(tmp, p)
    return p
