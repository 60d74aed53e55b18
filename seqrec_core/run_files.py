"""Reading a run folder's JSON and the safetensors header within bounds: size before reading, depth before parsing.

Why a module of its own: every page that lists or compares runs (and the analysis store) reads these files, and
one deeply nested ``metrics.json`` or a header that asks for gigabytes anywhere in the runs folder must be one
:class:`InputError` line there too, not a RecursionError on every page. Kept free of torch and the model registry
so the listing paths stay light; :mod:`seqrec_core.run_checks` builds its checks on it and re-exports it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from seqrec_core.errors import InputError

MAX_JSON_BYTES = {"config": 1 << 20, "vocabulary": 1 << 29, "metrics": 16 << 20, "history": 64 << 20}
MAX_HEADER_BYTES = 16 << 20  # safetensors header (JSON); its own reader allows 100 MB, a model here needs ~100 KB
# Deepest nesting of arrays/objects a run's JSON may have: runs need 4; json.loads recurses once per level and a
# few thousand levels end in RecursionError (or, on a thread's small stack, worse), so deeper text is refused unread.
MAX_JSON_DEPTH = 64
_JSON_ESCAPE = re.compile(r"\\.", re.S)
_JSON_STRING = re.compile(r'"[^"]*"')  # once escapes are gone a string ends at the next quote: one linear pass


def read_bounded(path: Path, what: str) -> str:
    """A run's text file, refused unread when it is over :data:`MAX_JSON_BYTES` for ``what``."""
    limit = MAX_JSON_BYTES[what]
    try:
        if path.stat().st_size > limit:
            raise InputError(f"{path}: the run's {what} file is {path.stat().st_size / 2**20:.1f} MiB, over the "
                             f"{limit / 2**20:.0f} MiB a run may hold; the run folder is damaged or not a run")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the run's {what} ({err}); the run folder is damaged") from None


def nests_deeper_than(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the arrays and objects of JSON ``text`` nest more than ``limit`` levels (brackets inside strings do
    not count), found without recursing: strings are cut out, then the running depth is summed in 1 MiB chunks."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot nest deeper than it opens: every ordinary run file ends here
    syntax = _JSON_STRING.sub("", _JSON_ESCAPE.sub("", text))
    depth = 0
    for start in range(0, len(syntax), 1 << 20):
        raw = np.frombuffer(syntax[start:start + (1 << 20)].encode("utf-8", "ignore"), dtype=np.uint8)
        step = ((raw == ord("[")) | (raw == ord("{"))).astype(np.int64) - ((raw == ord("]")) | (raw == ord("}")))
        running = depth + np.cumsum(step)  # (chunk,) depth after each byte
        if running.size and int(running.max()) > limit:
            return True
        depth = int(running[-1]) if running.size else depth
    return False


def loads_bounded(text: str, where: Path, what: str) -> object:
    """``json.loads`` of a run's ``what`` (its file is ``where``), refusing malformed JSON and JSON nested deeper
    than :data:`MAX_JSON_DEPTH` (checked before parsing) with one InputError line."""
    if nests_deeper_than(text):
        raise InputError(f"{where}: cannot read the run's {what} (nested deeper than {MAX_JSON_DEPTH} levels); "
                         "the run folder is damaged or not a run")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise InputError(f"{where}: cannot read the run's {what} ({err}); the run folder is damaged") from None


def read_json(path: Path, what: str) -> object:
    """A run's JSON file (size- and depth-bounded); malformed or too deeply nested JSON is one InputError line."""
    return loads_bounded(read_bounded(path, what), path, what)


def read_jsonl(path: Path) -> list[dict]:
    """history.jsonl as a list of objects (size- and depth-bounded); unreadable lines are skipped, a missing file
    is []."""
    if not path.is_file():
        return []
    rows = []
    for line in read_bounded(path, "history").splitlines():
        try:
            row = loads_bounded(line, path, "history")
        except InputError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_safetensors_header(path: Path) -> tuple[dict, int]:
    """A safetensors file's tensor entries (its JSON header without ``__metadata__``) and the byte length of the
    data after the header; nothing past the header is read.

    Refuses a header over :data:`MAX_HEADER_BYTES` (a hostile file could ask for gigabytes) or nested past
    :data:`MAX_JSON_DEPTH`, and anything that is not a header of objects."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
                raise InputError(f"{path}: unreadable weights (safetensors header of {n} bytes in a {size}-byte "
                                 f"file; at most {MAX_HEADER_BYTES >> 20} MiB allowed); "
                                 "the file is damaged or not safetensors")
            text = fh.read(n).decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: unreadable weights (bad safetensors header: {type(err).__name__}); "
                         "the file is damaged or not safetensors") from None
    try:
        header = loads_bounded(text, path, "weights header")
    except InputError:
        raise InputError(f"{path}: unreadable weights (bad safetensors header); the file is damaged or not "
                         "safetensors") from None
    if not isinstance(header, dict):
        raise InputError(f"{path}: unreadable weights (the safetensors header is not an object)")
    header.pop("__metadata__", None)
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise InputError(f"{path}: unreadable weights (header entry '{name[:60]}' is not an object)")
    return header, size - 8 - n
