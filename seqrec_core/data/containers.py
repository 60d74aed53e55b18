"""What a log file's bytes hold, before any format is read: gzip and zip containers opened within bounds, Office
files refused with a hint, files that are not files (FIFOs, devices, link loops) refused by name, and the text
encoding decoded (binary data refused).

Split from ``loaders`` so the defences against hostile input sit in one place that both the log readers and the
titles reader (``metadata``) use; nothing here knows about columns. Every byte arrives through a
:class:`limits.StreamMeter`, which refuses as soon as a bound is crossed, while the bytes stream: the unpacked size
(``SEQREC_MAX_UNPACKED_MB``), binary junk (from the first chunk), a line megabytes long (``limits``), and the
memory the parse will need (``limits.check_parse_memory``). A compressed stream is read twice: once to measure
it, keeping nothing, then once to keep it, so a refusal costs a chunk of memory whatever the file unpacks to.
Every public name here is also importable from ``seqrec_core.data.loaders``.
"""
from __future__ import annotations

import errno
import io
import logging
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from seqrec_core.data.formats import GZIP_MAGIC, OFFICE_MAGIC, ZIP_MAGIC, refuse_binary, text_encoding
from seqrec_core.data.limits import (
    CHUNK,
    MAX_UNPACKED_MB,
    StreamMeter,
    check_file_size,
    env_count,
    max_unpacked_bytes,
    too_big,
)
from seqrec_core.errors import InputError

__all__ = ["MAX_UNPACKED_MB", "MAX_ZIP_MEMBERS", "ML_EVENT_FILES", "Opened", "decode_text", "is_metadata_name",
           "max_unpacked_bytes", "open_log_file", "unwrap"]

log = logging.getLogger(__name__)

# the event file of a MovieLens release (a zip holding one of these loads that file; a folder too, in loaders)
ML_EVENT_FILES = ("ratings.csv", "ratings.dat", "u.data")
_DATA_EXT = (".csv", ".tsv", ".tab", ".txt", ".dat", ".data", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# Containers are never extracted to disk; a zip of thousands of members is refused (SEQREC_MAX_ZIP_MEMBERS), the
# unpacked size is bounded by limits.max_unpacked_bytes (SEQREC_MAX_UNPACKED_MB).
MAX_ZIP_MEMBERS = 1000


def is_metadata_name(name: str) -> bool:
    """Files in a zip that describe items rather than events (MovieLens movies.csv, movies.dat, u.item)."""
    base = Path(name).name.lower()
    return base in ("movies.csv", "movies.dat", "u.item") or base.startswith(("items.", "item_metadata", "products."))


@dataclass
class Opened:
    """A log's content once containers are opened: the name it goes by (``log.csv`` for ``log.csv.gz``), its
    bytes, titles files found beside it in a zip, and the container it came in ("" for a plain file). A reader
    takes ``data`` out (setting it to b"") so that the bytes die as soon as they are decoded."""

    name: str
    data: bytes
    extra: dict[str, bytes] = field(default_factory=dict)
    container: str = ""


def _office(name: str) -> InputError:
    return InputError(f"{name} is an old Excel/Office file; export the sheet as CSV (File > Save as > CSV UTF-8)")


# --------------------------------------------------------------------------------------------- gzip streams

def _gunzip(name: str, src: BinaryIO) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream (concatenated members too), a chunk at a time."""
    d = zlib.decompressobj(wbits=31)
    try:
        while True:
            if d.eof:
                rest = d.unused_data or src.read(CHUNK)
                if len(rest) < 2:
                    rest += src.read(CHUNK)
                if rest[:2] != GZIP_MAGIC:
                    return  # the end (trailing bytes that start no member are ignored, as gzip does)
                d = zlib.decompressobj(wbits=31)
                out = d.decompress(rest, CHUNK)
            else:
                feed = d.unconsumed_tail or src.read(CHUNK)
                out = d.decompress(feed, CHUNK) if feed else d.flush()
                if not feed and not out and not d.eof:
                    raise EOFError("the file ends before the compressed data does")
            if out:
                yield out
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{name} is a damaged gzip file ({err}); re-download or re-compress it") from None


def _read_twice(name: str, fmt: str, open_stream: Callable[[], Iterator[bytes]], outer: str,
                packed: int) -> tuple[bytes, str]:
    """Stream once to measure (nothing kept), then again to keep the bytes; returns them and their kind."""
    meter = StreamMeter(name, fmt, outer=outer, unpack_limit=max_unpacked_bytes(), packed=packed)
    for chunk in open_stream():
        meter.feed(chunk)
    meter.finish()
    out = io.BytesIO()
    for chunk in open_stream():
        if out.tell() + len(chunk) > meter.total:  # the source changed under us: never keep more than measured
            raise InputError(f"{name} changed while it was read; load it again")
        out.write(chunk)
    return out.getvalue(), meter.kind  # getvalue hands over BytesIO's buffer without a copy


def _unpack_gzip(name: str, src: BinaryIO, fmt: str, extra: dict[str, bytes]) -> Opened:
    inner = name[:-3] if name.lower().endswith(".gz") else name

    def stream() -> Iterator[bytes]:
        src.seek(0)
        return _gunzip(name, src)

    packed = src.seek(0, os.SEEK_END)
    data, kind = _read_twice(inner, fmt, stream, name, packed)
    if kind == "office":
        raise _office(name)
    if kind == "gzip":
        raise InputError(f"{name} is compressed twice (a gzip inside a gzip); unpack it once yourself and load "
                         f"the result")
    if kind == "zip":  # e.g. ml-latest-small.zip.gz
        return _unzip(inner, io.BytesIO(data), fmt, extra)
    return Opened(inner, data, extra, "gzip")


# ------------------------------------------------------------------------------------------------------- zips

def _unsafe_member(member: str) -> bool:
    """Absolute paths, drive letters and '..' parts: harmless here (nothing is extracted) but never legitimate."""
    parts = member.replace("\\", "/").split("/")
    return member.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", member)) or ".." in parts


def _check_zip(name: str, zf: zipfile.ZipFile) -> None:
    infos = zf.infolist()
    max_members = env_count("SEQREC_MAX_ZIP_MEMBERS", MAX_ZIP_MEMBERS)
    if len(infos) > max_members:
        raise InputError(f"{name} holds {len(infos):,} files (at most {max_members:,} are accepted); zip only the log "
                         f"and its titles file")
    bad = next((i.filename for i in infos if _unsafe_member(i.filename)), None)
    if bad is not None:
        raise InputError(f"{name} contains the path '{bad[:80]}' (absolute or with '..'), which a safe archive never "
                         f"has; re-create the zip from the folder holding the log")
    if sum(i.file_size for i in infos) > max_unpacked_bytes():
        raise too_big(name, max_unpacked_bytes())
    if any(i.flag_bits & 0x1 for i in infos):
        raise InputError(f"{name} is password-protected; unzip it and load the log file itself")


def _data_name(member: str) -> bool:
    base = member.lower()[:-3] if member.lower().endswith(".gz") else member.lower()
    return base.endswith(_DATA_EXT) and not is_metadata_name(base)


def _read_member(name: str, zf: zipfile.ZipFile, member: str, fmt: str) -> tuple[str, bytes]:
    """A member's content (a gzipped member unpacked), measured before it is kept: the sizes in a zip's
    directory can lie, so the bounds are checked on the bytes themselves."""
    base = Path(member).name
    with zf.open(member) as fh:
        gzipped = fh.read(2) == GZIP_MAGIC
    inner = base[:-3] if gzipped and base.lower().endswith(".gz") else base

    def stream() -> Iterator[bytes]:
        with zf.open(member) as fh:
            yield from _gunzip(f"{name}: {base}", fh) if gzipped else iter(lambda: fh.read(CHUNK), b"")

    data, kind = _read_twice(f"{name}: {inner}", fmt, stream, name, zf.getinfo(member).compress_size)
    if kind == "office":
        raise _office(f"{name}: {base}")
    if kind in ("zip", "gzip"):
        raise InputError(f"{name}: {base} is itself an archive ({kind} inside a zip); unpack it and load the log "
                         f"file itself")
    return inner, data


def _unzip(name: str, src: BinaryIO, fmt: str, extra: dict[str, bytes]) -> Opened:
    """The log inside a zip (a MovieLens ratings file first, else its only data file) plus titles files."""
    try:
        with zipfile.ZipFile(src) as zf:
            _check_zip(name, zf)
            members = [m for m in zf.namelist() if not m.endswith("/") and "__MACOSX" not in m
                       and not Path(m).name.startswith(".")]
            if any(m.startswith(("xl/", "word/", "ppt/")) for m in zf.namelist()):
                raise InputError(f"{name} is an Excel/Office workbook; export the sheet as CSV (Save as > CSV UTF-8)")
            by_base = {Path(m).name.lower(): m for m in members}
            pick = next((by_base[b] for b in ML_EVENT_FILES if b in by_base), None)
            if pick is None:
                logs = [m for m in members if _data_name(m)]
                if len(logs) != 1:
                    nested = [m for m in members if m.lower().endswith((".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z"))]
                    hint = f"; it holds archives ({', '.join(nested[:3])}), so unpack those first" if nested and \
                        not logs else "; unzip it and load the log file itself"
                    raise InputError(f"{name} holds {len(logs)} data files ({', '.join(logs[:5]) or 'none'}){hint}")
                pick = logs[0]
            extra = dict(extra)
            for m in members:
                if m != pick and is_metadata_name(m):
                    extra.setdefault(*_read_member(name, zf, m, "csv"))
            inner, data = _read_member(name, zf, pick, fmt)
            return Opened(inner, data, extra, "zip")
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, ValueError, OSError,
            EOFError, zlib.error) as err:  # damaged headers, unknown compression, bad CRC, truncation
        raise InputError(f"{name} is a damaged or unsupported zip file ({str(err)[:100]}); re-download it or unzip "
                         f"it first") from None


# ------------------------------------------------------------------------------------------------ entry points

def _open(name: str, src: BinaryIO, fmt: str, extra: dict[str, bytes]) -> Opened | None:
    """Containers and Office files by their first bytes; None for plain content (the caller reads that)."""
    magic = src.read(4)
    src.seek(0)
    if magic[:2] == GZIP_MAGIC:
        return _unpack_gzip(name, src, fmt, extra)
    if magic == OFFICE_MAGIC:
        raise _office(name)
    if magic == ZIP_MAGIC:
        return _unzip(name, src, fmt, extra)
    return None


def unwrap(name: str, data: bytes, fmt: str = "auto", extra: dict[str, bytes] | None = None) -> Opened:
    """An upload's bytes with containers opened, every bound checked (on plain bytes, chunk by chunk)."""
    extra = dict(extra or {})
    opened = _open(name, io.BytesIO(data), fmt, extra)
    if opened is not None:
        return opened
    meter = StreamMeter(name, fmt, size=len(data))
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        meter.feed(bytes(view[start:start + CHUNK]))
    meter.finish()
    return Opened(name, data, extra)


def _unwrap(name: str, data: bytes, extra: dict[str, bytes]) -> tuple[str, bytes, dict[str, bytes]]:
    """:func:`unwrap` as a tuple (what ``metadata`` reads titles files with)."""
    opened = unwrap(name, data, "csv", extra)
    return opened.name, opened.data, opened.extra


_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _not_regular(shown: str, mode: int) -> InputError:
    kind = next((what for test, what in _SPECIAL if test(mode)), "not a regular file")
    return InputError(f"data file '{shown}' is {kind}, not a regular file; save the log to a file and pass that "
                      f"file's path")


def open_log_file(path: str | Path, fmt: str = "auto") -> Opened:
    """A log file by path, opened without ever blocking (a FIFO is refused, not read) and read in bounded
    chunks: a special file, a link loop or a missing target is named as such, the size cap is checked first,
    and a plain file is judged by its size and first lines before the rest is read."""
    path = Path(path)
    shown = str(path)[:200]
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputError(f"data file '{shown}' is a symbolic link to '{str(os.readlink(path))[:120]}', which does "
                             f"not exist; point it at the log, or pass the log's own path") from None
        raise InputError(f"data file '{shown}' does not exist; check the path") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InputError(f"data file '{shown}' is a symbolic link loop (its links point back at each other); "
                             f"pass the log file's own path") from None
        raise
    if not stat.S_ISREG(mode):
        raise _not_regular(shown, mode)
    check_file_size(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # swapped for a FIFO since the stat: no hang
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(shown, info.st_mode)
        opened = _open(path.name, fh, fmt, {})
        if opened is not None:
            return opened
        meter = StreamMeter(path.name, fmt, size=info.st_size)
        out = io.BytesIO()
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            meter.feed(chunk)
            out.write(chunk)
        meter.finish()
        return Opened(path.name, out.getvalue())


# ---------------------------------------------------------------------------------------------------- text

def decode_text(name: str, data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16/32 with BOM, else Windows-1252/Latin-1 text; binary data is refused.
    Old Mac line breaks (CR alone) become LF, so every reader sees lines."""
    enc = text_encoding(data[:4])
    if enc in ("utf-32", "utf-16"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            raise InputError(f"{name} starts like {enc.upper()} text (a byte-order mark) but is not; save it as "
                             f"UTF-8") from None
    else:
        if data.find(b"\x00") >= 0:
            refuse_binary(name, data)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            try:
                text = data.decode("cp1252")
                log.info("%s is not UTF-8; read as Windows-1252/Latin-1 text", name)  # info: a refusal stays one line
            except UnicodeDecodeError:
                line = data.count(b"\n", 0, err.start) + 1
                raise InputError(f"{name} line {line}: byte 0x{data[err.start]:02x} is not valid text in UTF-8 or "
                                 f"Latin-1; save the file as UTF-8 (or it is not a text log at all)") from None
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")
        log.info("%s breaks lines with CR alone (old Mac); read them as line breaks", name)
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise InputError(f"{name} line {line}: control character 0x{ord(bad.group()):02x}, so this looks like binary "
                         f"data, not a text log; export it as UTF-8 CSV/TSV/JSON Lines or Parquet")
    return text
