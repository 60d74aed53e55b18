"""Item text (titles, categories) read once by a transformers encoder and added to a model's item vectors.

Why: an item seen a handful of times in training gets a poor learned embedding, but its title says what it is.
A frozen sentence vector per item, mapped by a small trainable projection into the model's space and added to
the item's learned embedding, gives cold items a useful vector (input side and tied output side alike).

The encoder is any transformers checkpoint a person names: a local folder (``save_pretrained`` output) or a hub
name (downloaded once by transformers into its own cache; with no internet a one-line :class:`InputError`
says so). Texts are mean-pooled over real tokens and L2-normalised, so vectors do not depend on how long the
batch's longest text was. Encodings are cached as ``.npy`` by (encoder, texts), so a dataset is encoded once.

A run stores the projected-from matrix itself (a persistent buffer of :class:`TextItemFeatures`), so loading a
run needs neither the encoder nor internet: the model is rebuilt from ``(n_items, d_text, hidden)`` and the
matrix comes back with the weights from ``model.safetensors``.
"""
from __future__ import annotations

import hashlib
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


def _cache_path(encoder: str, texts: Sequence[str], max_length: int) -> Path:
    h = hashlib.sha1()
    for text in texts:
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    key = hashlib.sha1(f"{_encoder_identity(encoder)}|max_length={max_length}|{h.hexdigest()}".encode()).hexdigest()
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
                             "written by save_pretrained (tokenizer + model) or a hub checkpoint name")
        sources, fix = [True], "the folder must hold a tokenizer and a model saved with save_pretrained"
        name = str(folder)
    else:
        sources = [True] if _offline() else [True, False]
        fix = "download it once or pass a local folder"
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


@torch.no_grad()
def _encode_unique(texts: list[str], tokenizer: object, model: nn.Module, batch_size: int, max_length: int,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Mean-pooled, L2-normalised vectors of non-empty texts; batches of similar length to waste little padding.
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
        mask = batch["attention_mask"].to(hidden.dtype)[..., None]  # (B, L, 1) 1 = real token
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (B, H) mean over real tokens
        pooled = torch.nn.functional.normalize(pooled, dim=-1)  # (B, H) unit length
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
    path = _cache_path(name, clean, max_length)
    cached = _read_cache(path, len(clean))
    if cached is not None:
        log.info("item text encodings for %d texts read from cache %s", len(clean), path)
        return cached
    unique = sorted({t for t in clean if t})
    if not unique:
        raise InputError("every item text is empty, so there is nothing for the text encoder to read; "
                         "load item titles (e.g. a title column or movies.csv) or train without text features")
    tokenizer, model = load_encoder(name, device)
    log.info("encoding %d distinct item texts with %s", len(unique), name)
    vectors = _encode_unique(unique, tokenizer, model, batch_size, max_length, progress)  # (U, d)
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


__all__ = ["TextAwareItemEmbedding", "TextItemFeatures", "cache_dir", "check_text_options", "encode_item_texts",
           "item_text_matrix", "item_texts", "load_encoder", "text_aware_embedding", "with_item_text"]
