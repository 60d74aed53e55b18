"""What each run is: its setup in a few words and every option it was trained with, read from its config.json.

Why a module of its own: runs on one dataset differ by family, by model options (time features, loss, text
encoder, positions, ...) and by training options (epochs, seed, budget). The runs table needs a short label that
names what differs from the family's defaults ("sasrec · time features · loss gbce"), and a reviewer needs the
full list with the options every run shares hidden, so the differences stand out. Options a run's config predates
(it was trained before the option existed) take the config class's default, which is what loading the run does.
Only JSON is read; the family registry is imported for its config classes' defaults.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields
from pathlib import PurePath

import pandas as pd

NOT_OPTIONS = ("n_items", "family")  # given by the data / the registry, not chosen by a person
NOT_IN_SETUP = ("text_dim",)  # derived from the text encoder: in the options table, not in the short label
TRAIN = "train: "  # prefix of the training options' columns (max_len is shared with the model's)
SEP = " · "


def _defaults(cls: type) -> dict[str, object]:
    out = {}
    for f in fields(cls):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out


def family_defaults(family: str) -> dict[str, object] | None:
    """The family config's default for every option a person sets; None for a family this version lacks."""
    from seqrec_core.models import MODEL_FAMILIES

    spec = MODEL_FAMILIES.get(family)
    if spec is None:
        return None
    return {k: v for k, v in _defaults(spec.config_cls).items() if k not in NOT_OPTIONS}


def train_defaults() -> dict[str, object]:
    from seqrec_core.training.config import TrainConfig

    return _defaults(TrainConfig)


def _config_cls(family: str) -> type | None:
    from seqrec_core.models import MODEL_FAMILIES

    spec = MODEL_FAMILIES.get(family)
    return None if spec is None else spec.config_cls


def get_model_options(family: str, model: Mapping) -> dict[str, object]:
    """Every option of the family's config: the stored value, else what a config lacking it meant when it was
    saved (the class's ``STORED_DEFAULTS``, as the run loader applies), else the default. An unknown family (a
    run from a newer version) keeps exactly what its config stores."""
    defaults = family_defaults(family)
    if defaults is None:
        return {k: v for k, v in model.items() if k not in NOT_OPTIONS}
    return _as_saved(model, defaults, getattr(_config_cls(family), "STORED_DEFAULTS", None))


def _as_saved(saved: Mapping, defaults: Mapping[str, object], stored_defaults: Mapping | None) -> dict[str, object]:
    """Per option in ``defaults``: the saved value, else what a config lacking it meant when it was saved (the
    config class's ``STORED_DEFAULTS``), else the default. One rule for model and training options."""
    stored = stored_defaults or {}
    return {name: saved.get(name, stored.get(name, default)) for name, default in defaults.items()}


def _effective_defaults(family: str, options: Mapping[str, object]) -> dict[str, object]:
    """Per option, the value it takes when a person leaves it unset and keeps the run's other options. Most are
    the class default; an unset option the config resolves from the others (SASRec's ``tied_output`` follows the
    loss) takes that resolved value, so a run is not labelled with what its other choices implied anyway."""
    cls, static = _config_cls(family), family_defaults(family) or {}
    out = {}
    for name in options:
        rest = {k: v for k, v in options.items() if k != name}
        try:
            out[name] = getattr(cls(n_items=1, **rest), name)  # type: ignore[misc]
        except (ValueError, TypeError):  # InputError is a ValueError: the others alone do not validate
            out[name] = static.get(name)
    return out


def _setup_order(name: str, value: object) -> int:
    """Switches and the text encoder first (what kind of model), then named choices (loss, positions), then sizes."""
    return 0 if isinstance(value, bool) or name == "text_encoder" else 1 if isinstance(value, str) else 2


def get_train_options(train: Mapping, model_options: Mapping | None = None) -> dict[str, object]:
    """Every training option (TrainConfig), stored value else what a config lacking it meant when it was saved
    (``TrainConfig.STORED_DEFAULTS``) else default; max_len is left out when the model config already has it
    (the trainer sets one from the other)."""
    from seqrec_core.training.config import TrainConfig

    out = _as_saved(train, train_defaults(), TrainConfig.STORED_DEFAULTS)
    extra = {k: v for k, v in train.items() if k not in out}  # options of a newer version stay visible
    out.update(extra)
    if model_options is not None and "max_len" in model_options:
        out.pop("max_len", None)
    return out


def describe_option(name: str, value: object) -> str:
    """An option as a few words: "time features", "no amp", "loss gbce", "text all-MiniLM-L6-v2"."""
    words = name.replace("_", " ")
    if isinstance(value, bool):
        return words if value else f"no {words}"
    if name == "text_encoder":
        return "no text" if value in (None, "") else f"text {PurePath(str(value)).name or value}"
    return f"{words} {format_value(value)}"


def get_setup(family: str, model: Mapping, train: Mapping | None = None) -> str:
    """Family plus the model options that differ from that family's defaults, e.g. "sasrec · time features ·
    loss gbce" (switches first, then named choices, then sizes); the history window (max_len) counts as a model
    option even for configs that keep it in the training options. Just the family name when all are default."""
    defaults = family_defaults(family)
    if defaults is None:  # unknown family: nothing to compare with
        return family
    options = get_model_options(family, model)
    effective = _effective_defaults(family, options)
    changed = [(name, value) for name, value in options.items()
               if name not in NOT_IN_SETUP and not _same(value, effective.get(name))]
    parts = [family, *(describe_option(n, v) for n, v in sorted(changed, key=lambda nv: _setup_order(*nv)))]
    if "max_len" not in defaults and train is not None:
        window, default = train.get("max_len"), train_defaults().get("max_len")
        if window is not None and not _same(window, default):
            parts.append(describe_option("max_len", window))
    return SEP.join(parts)


def get_all_options(config: Mapping) -> dict[str, object]:
    """One run's options as one flat dict: model options by name, then training options as "train: <name>"."""
    family = str(config.get("family", ""))
    model = config.get("model") if isinstance(config.get("model"), Mapping) else {}
    train = config.get("train") if isinstance(config.get("train"), Mapping) else {}
    model_options = get_model_options(family, model)
    train_options = get_train_options(train, model_options)
    return {**model_options, **{f"{TRAIN}{k}": v for k, v in train_options.items()}}


def format_value(value: object) -> str:
    """How an option reads in a table cell: yes/no, "none" for unset, floats without trailing zeros."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _same(a: object, b: object) -> bool:
    """Equal values of the same kind: 64 == 64.0 (JSON keeps no int/float distinction), but True != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def get_options_table(runs: Mapping[str, Mapping[str, object]]) -> pd.DataFrame:
    """One row per run (``run`` -> its :func:`get_all_options`), one column per option, as text.

    Columns: run, then every option any run has (model options first, in order of appearance, then training
    options); an option a run's family does not have is "" (not applicable). Text, not mixed types, so a column
    of yes/none/64 still shows and downloads as written.
    """
    names: list[str] = []
    for options in runs.values():
        names.extend(n for n in options if n not in names)
    names = [n for n in names if not n.startswith(TRAIN)] + [n for n in names if n.startswith(TRAIN)]
    rows = [{"run": run, **{n: format_value(opts[n]) if n in opts else "" for n in names}}
            for run, opts in runs.items()]
    return pd.DataFrame(rows, columns=["run", *names]).astype({n: "object" for n in ["run", *names]})


def differing_options(table: pd.DataFrame) -> list[str]:
    """Options whose value is not the same in every run (the ones that explain a difference between runs)."""
    return [c for c in table.columns if c != "run" and table[c].nunique(dropna=False) > 1]


def options_for_display(table: pd.DataFrame, show_all: bool = False,
                        keep: Sequence[str] = ("run",)) -> pd.DataFrame:
    """The options table with the options every run shares left out (unless ``show_all``)."""
    if show_all:
        return table
    cols = [c for c in keep if c in table] + [c for c in differing_options(table) if c not in keep]
    return table[cols]
