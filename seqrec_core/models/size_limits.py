"""How big a model a config describes, known before the model exists, and the cap on it (``SEQREC_MAX_MODEL_MB``).

Why before building: a run's config.json is a few hundred bytes that may ask for 48 layers of width 4096 (tens of
GB); building that model to look at it is the very memory blow-up the check is there to prevent (a 538 KB run
archive made the loader allocate 11 GB). So the size is worked out from the config alone, per family, from the
shapes each family's module creates: item table (n_items + 1) x hidden, the Transformer or recurrent body per
layer, heads and extras. The count is exact (every tensor the model's state dict holds, persistent buffers
included, so every value its safetensors file stores), which lets the run loader also compare it with the
weights file's header before it allocates anything; tests/core/test_runs_untrusted.py checks the count against
built models of every family and option that changes a shape.

A family whose module gains or loses a tensor must change :func:`stored_values` with it (that test fails first).
Loading a run and building a model to train both refuse with :func:`check_model_size`, so the two paths refuse
the same configs with the same line.
"""
from __future__ import annotations

import math
from pathlib import Path

from seqrec_core.data.limits import env_mb, refuse_if_larger
from seqrec_core.errors import InputError

MAX_MODEL_ENV = "SEQREC_MAX_MODEL_MB"
# A few GB of float32 weights (about a billion values): far above the models this tool trains (the demo's is
# 0.1 MB, Beauty's 4 MB, a 1M-item catalogue at width 256 1 GB), far below what makes a dashboard host swap. A GPU
# server that trains bigger raises it, 0 switches it off.
DEFAULT_MAX_MODEL_MB = 4096.0
VALUE_BYTES = 4  # every family stores float32 weights
SAFETENSORS_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1}  # bytes per value of each safetensors dtype

# SASRec's time features: hour (24 + unknown), weekday (7 + unknown) and gap-bucket (11) tables, once for the
# event and once for the query time (models.time_features.TimeFeatures).
_TIME_ROWS = 2 * (25 + 8 + 11)


def _item_values(config: object) -> int:
    """The item table, plus a text-aware model's frozen title matrix and its projection (no bias)."""
    d, rows = config.hidden_size, config.n_items + 1
    text_dim = getattr(config, "text_dim", 0) or 0
    return rows * d + (rows * text_dim + text_dim * d if text_dim else 0)


def _llama_values(d: int, layers: int) -> int:
    # per layer: q, k, v, o (d x d, no bias) + gate, up (4d x d) and down (d x 4d) + two RMSNorm weights;
    # then the unused 1-row token table and the final norm
    return layers * (4 * d * d + 12 * d * d + 2 * d) + d + d


def _gpt2_values(d: int, layers: int, max_len: int) -> int:
    # per layer: 2 LayerNorms (weight + bias), c_attn (d x 3d + 3d), c_proj (d x d + d), c_fc (d x 4d + 4d),
    # mlp c_proj (4d x d + d); then the unused 1-row token table, the position table and the final LayerNorm
    per_layer = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    return layers * per_layer + d + max_len * d + 2 * d


def _bert_values(d: int, layers: int, max_len: int) -> int:
    # embeddings: unused 1-row token table, max_len + 1 positions (the mask's too), 1 token type, LayerNorm;
    # per layer: q, k, v, attention output (d x d + d each) + its LayerNorm, intermediate (4d x d + 4d),
    # output (d x 4d + d) + its LayerNorm
    per_layer = 4 * (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d) + 2 * d
    return d + (max_len + 1) * d + d + 2 * d + layers * per_layer


def _recurrent_values(d: int, layers: int, gates: int) -> int:
    # torch GRU (3 gates) / LSTM (4 gates), input width = state width = d: two weight matrices and two biases a layer
    return layers * gates * (2 * d * d + 2 * d)


def stored_values(config: object) -> int:
    """How many float32 values a model built from ``config`` (a family's config dataclass, as
    :func:`seqrec_core.models.build_config` returns it) stores: its state dict, persistent buffers included."""
    family = config.family
    d, layers = config.hidden_size, config.num_layers
    values = _item_values(config)
    if family == "sasrec":
        if config.positions == "rotary":
            values += _llama_values(d, layers)
        else:
            values += _gpt2_values(d, layers, config.max_len)
        if config.time_features:
            values += _TIME_ROWS * d
        if not config.tied_output:
            values += (config.n_items + 1) * d + (1 if config.loss in ("bce", "gbce") else 0)  # out_emb (+ out_bias)
    elif family == "bert4rec":
        values += _bert_values(d, layers, config.max_len) + d  # + the mask token's vector
        values += (d * d + d) + 2 * d  # masked-LM head: dense + LayerNorm
    elif family in ("gru4rec", "lstm"):
        values += _recurrent_values(d, layers, 3 if family == "gru4rec" else 4) + 2 * d  # + final LayerNorm
    elif family == "lsi":
        values += _recurrent_values(d, layers, 4)  # long-term LSTM
        values += 3 * (d * d + d) + min(config.short_window, config.max_len)  # query, key, value + lag biases
        values += (2 * d * d + d) + 2 * d  # gate over [long, short] + final LayerNorm
    else:
        raise InputError(f"model family '{family}' has no size rule; add one to seqrec_core.models.size_limits")
    return values


def model_bytes(config: object) -> int:
    """Bytes of weights a model built from ``config`` holds (and its safetensors file stores, past the header)."""
    return stored_values(config) * VALUE_BYTES


def max_model_mb() -> float:
    """The cap on a model's weights in MB: ``SEQREC_MAX_MODEL_MB`` if set (0 or less = no cap), else
    :data:`DEFAULT_MAX_MODEL_MB`; a value that is not a number is refused (:func:`~seqrec_core.data.limits.env_mb`)."""
    return env_mb(MAX_MODEL_ENV, DEFAULT_MAX_MODEL_MB, DEFAULT_MAX_MODEL_MB)


def describe(config: object) -> str:
    """The shape that decides a model's size, as a person reads it: ``sasrec (48 layers x hidden 4096, 1,000
    items)``."""
    text = f", text width {config.text_dim}" if getattr(config, "text_dim", 0) else ""
    return (f"{config.family} ({config.num_layers} layers x hidden {config.hidden_size}, "
            f"{config.n_items:,} items{text})")


def check_model_size(config: object, where: str = "") -> None:
    """Refuse, in one line, a model whose weights would exceed :func:`max_model_mb`, before it is built.

    ``where`` names what asked for it (a run's config.json) and leads the message."""
    size = model_bytes(config)
    limit = max_model_mb()
    lead = f"{where}: " if where else ""
    refuse_if_larger(f"{lead}the model {describe(config)}", size, limit, limit_name="the model-size limit",
                     fix=f"use a smaller hidden_size, num_layers or text encoder, or on a machine with the memory "
                         f"raise {MAX_MODEL_ENV}={math.ceil(size / 2**20) + 1} (0 = no limit)")


def _entry_bytes(entry: dict) -> int | None:
    """Bytes a safetensors header entry's shape and dtype take; None when they are not a shape and a known dtype."""
    shape, dtype = entry.get("shape"), entry.get("dtype")
    if (not isinstance(shape, list) or dtype not in SAFETENSORS_BYTES
            or not all(type(d) is int and 0 <= d < 2**62 for d in shape)):
        return None
    return math.prod(shape) * SAFETENSORS_BYTES[dtype]


def check_weights_size(path: Path, header: dict, body: int, config: object) -> None:
    """Refuse a weights file whose size disagrees with the model ``config`` describes, before that model is built.

    ``header``: the file's tensor entries (its safetensors header without ``__metadata__``); ``body``: the bytes
    after the header. The tensors listed must add up to exactly :func:`model_bytes` of the config, and the file
    must hold exactly those bytes: a small file beside a config that asks for a big model (or the reverse) is
    refused here, before a byte of the model is allocated."""
    sizes = [_entry_bytes(entry) for entry in header.values()]
    if any(size is None for size in sizes):
        raise InputError(f"{path}: unreadable weights (a header entry lacks a shape or a known dtype); the file is "
                         "damaged")
    listed, implied = sum(sizes), model_bytes(config)  # type: ignore[arg-type]
    if listed != implied:
        raise InputError(f"{path}: the weights hold {listed:,} bytes of tensors but config.json describes the model "
                         f"{describe(config)} with {implied:,}; the two files do not belong together (or the run "
                         "comes from a seqrec_core with another layout of this family: retrain it)")
    if body != listed:
        raise InputError(f"{path}: the file holds {body:,} bytes after its header but the header lists {listed:,}; "
                         "the file is truncated or damaged")


__all__ = ["DEFAULT_MAX_MODEL_MB", "MAX_MODEL_ENV", "SAFETENSORS_BYTES", "check_model_size", "check_weights_size",
           "describe", "max_model_mb", "model_bytes", "stored_values"]
