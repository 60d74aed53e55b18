"""Model families behind one small interface, and the registry that builds them by name.

A family is a frozen config dataclass (which validates its own fields and raises ``InputError``) plus an
``nn.Module`` that takes only that config. Adding bert4rec / gru4rec / lstm / lsi means one module with those
two classes and one line in :data:`MODEL_FAMILIES`; the trainer, the run format and the CLI need no change.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

from torch import nn

from seqrec_core.errors import InputError
from seqrec_core.models.base import Scorer
from seqrec_core.models.bert4rec import BERT4Rec, BERT4RecConfig
from seqrec_core.models.lsi import LSIConfig, LSIRec
from seqrec_core.models.neural import NeuralScorer, pad_left
from seqrec_core.models.rnn import GRU4RecConfig, LSTMConfig, RNNRec
from seqrec_core.models.sasrec import HiddenOutput, SASRec, SASRecConfig
from seqrec_core.models.size_limits import check_model_size


class ModelFamily(NamedTuple):
    config_cls: type
    model_cls: type[nn.Module]


MODEL_FAMILIES: dict[str, ModelFamily] = {
    "sasrec": ModelFamily(SASRecConfig, SASRec),
    "bert4rec": ModelFamily(BERT4RecConfig, BERT4Rec),
    "gru4rec": ModelFamily(GRU4RecConfig, RNNRec),
    "lstm": ModelFamily(LSTMConfig, RNNRec),
    "lsi": ModelFamily(LSIConfig, LSIRec),
}


def family_of(name: str) -> ModelFamily:
    try:
        return MODEL_FAMILIES[name]
    except KeyError:
        raise InputError(f"unknown model '{name}'; choose one of {sorted(MODEL_FAMILIES)}") from None


def build_config(family: str, n_items: int, **options: Any) -> Any:
    """Validated config of a family; unknown or out-of-range options raise InputError naming the option."""
    config_cls = family_of(family).config_cls
    known = {f.name for f in dataclasses.fields(config_cls)} - {"n_items", "family"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {unknown} for model '{family}'; valid options are {sorted(known)}")
    options = {k: v for k, v in options.items() if v is not None}
    try:
        config = config_cls(n_items=n_items, **options)
    except TypeError as err:  # a wrong type that the dataclass itself rejects
        raise InputError(f"bad option for model '{family}': {err}") from None
    check_model_size(config)  # before any weight exists: a config may ask for tens of GB
    return config


def inactive_options(family: str, values: Mapping[str, object]) -> dict[str, str]:
    """Options of ``family`` that have no effect given the other ``values`` chosen (e.g. SASRec's negative sampling
    with the full softmax), each with why; a family without such rules has none."""
    rule = getattr(family_of(family).config_cls, "inactive_options", None)
    return dict(rule(values)) if rule is not None else {}


def build_model(family: str, n_items: int, **options: Any) -> nn.Module:
    """A freshly initialised model of ``family`` for a catalogue of ``n_items`` items."""
    config = build_config(family, n_items, **options)
    return family_of(family).model_cls(config)


def model_from_config(config: dict) -> nn.Module:
    """Rebuild a model from the config dict a run stores (``config["family"]`` picks the family)."""
    if not isinstance(config, dict) or not isinstance(config.get("family"), str):
        raise InputError("model config lacks a 'family' name; the run folder's config.json is damaged")
    options = {k: v for k, v in config.items() if k not in ("family", "n_items")}
    # A field added after a run was saved means what the model did before it existed (e.g. tied_output: True),
    # which need not be the new field's default for new runs.
    stored_defaults = getattr(family_of(config["family"]).config_cls, "STORED_DEFAULTS", {})
    options = {**stored_defaults, **options}
    n_items = config.get("n_items")
    return build_model(config["family"], n_items, **options)


__all__ = ["MODEL_FAMILIES", "BERT4Rec", "BERT4RecConfig", "GRU4RecConfig", "HiddenOutput", "LSIConfig", "LSIRec",
           "LSTMConfig", "ModelFamily", "NeuralScorer", "RNNRec", "SASRec", "SASRecConfig", "Scorer", "build_config",
           "build_model", "family_of", "inactive_options", "model_from_config", "pad_left"]
