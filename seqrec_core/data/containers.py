"""What an uploaded file's bytes hold, before any format is read: gzip and zip containers opened in memory within
bounds, Office files refused with a hint, and the text encoding decoded (binary data refused).

Split from ``loaders`` so the defences against hostile containers (compression bombs, zips of thousands of
members, '..' paths, lying size fields, passwords) sit in one place that both the log readers and the titles
reader (``metadata``) use; nothing here knows about columns or formats. Every name here is also importable
from ``seqrec_core.data.loaders``.
"""
from __future__ import annotations

import codecs
import io
import logging
import os
import re
import zipfile
import zlib
from pathlib import Path

from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

# the event file of a MovieLens release (a zip holding one of these loads that file; a folder too, in loaders)
ML_EVENT_FILES = ("ratings.csv", "ratings.dat", "u.data")
_DATA_EXT = (".csv", ".tsv", ".tab", ".txt", ".dat", ".data", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# Containers are opened in memory, never extracted; these bounds stop a zip/gzip bomb or a zip of thousands of
# members from exhausting memory. Override with SEQREC_MAX_UNPACKED_MB / SEQREC_MAX_ZIP_MEMBERS.
MAX_UNPACKED_MB = 2048
MAX_ZIP_MEMBERS = 1000


def is_metadata_name(name: str) -> bool:
    """Files in a zip that describe items rather than events (MovieLens movies.csv, movies.dat, u.item)."""
    base = Path(name).name.lower()
    return base in ("movies.csv", "movies.dat", "u.item") or base.startswith(("items.", "item_metadata", "products."))


def _limit(env: str, default: int) -> int:
    try:
        return max(1, int(float(os.environ.get(env, default))))
    except (ValueError, OverflowError):  # junk, nan or inf in the variable: the default, not a crash
        return default


def max_unpacked_bytes() -> int:
    """Largest total a gzip or zip upload may decompress to (``SEQREC_MAX_UNPACKED_MB``, default 2048 MB)."""
    return _limit("SEQREC_MAX_UNPACKED_MB", MAX_UNPACKED_MB) * 2**20


def _too_big(name: str, limit: int) -> InputError:
    return InputError(f"{name} unpacks to more than {limit // 2**20:,} MB (a compression bomb, or a log too big for "
                      f"one upload); unpack it yourself and load the log file, or raise SEQREC_MAX_UNPACKED_MB")


def _gunzip(name: str, data: bytes) -> bytes:
    """Gzip decompression that stops at the size limit instead of filling memory."""
    limit = max_unpacked_bytes()
    out = bytearray()
    try:
        d = zlib.decompressobj(wbits=31)
        chunk = d.decompress(data, limit + 1 - len(out))
        while True:
            out += chunk
            if len(out) > limit:
                raise _too_big(name, limit)
            if d.unconsumed_tail:
                chunk = d.decompress(d.unconsumed_tail, limit + 1 - len(out))
            elif d.eof and d.unused_data[:2] == b"\x1f\x8b":  # concatenated gzip members
                rest = d.unused_data
                d = zlib.decompressobj(wbits=31)
                chunk = d.decompress(rest, limit + 1 - len(out))
            else:
                break
        if not d.eof:
            raise EOFError("the file ends before the compressed data does")
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{name} is a damaged gzip file ({err}); re-download or re-compress it") from None
    return bytes(out)


def _unsafe_member(member: str) -> bool:
    """Absolute paths, drive letters and '..' parts: harmless here (nothing is extracted) but never legitimate."""
    parts = member.replace("\\", "/").split("/")
    return member.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", member)) or ".." in parts


def _check_zip(name: str, zf: zipfile.ZipFile) -> None:
    infos = zf.infolist()
    max_members = _limit("SEQREC_MAX_ZIP_MEMBERS", MAX_ZIP_MEMBERS)
    if len(infos) > max_members:
        raise InputError(f"{name} holds {len(infos):,} files (at most {max_members:,} are accepted); zip only the log "
                         f"and its titles file")
    bad = next((i.filename for i in infos if _unsafe_member(i.filename)), None)
    if bad is not None:
        raise InputError(f"{name} contains the path '{bad[:80]}' (absolute or with '..'), which a safe archive never "
                         f"has; re-create the zip from the folder holding the log")
    if sum(i.file_size for i in infos) > max_unpacked_bytes():
        raise _too_big(name, max_unpacked_bytes())
    if any(i.flag_bits & 0x1 for i in infos):
        raise InputError(f"{name} is password-protected; unzip it and load the log file itself")


def _read_member(name: str, zf: zipfile.ZipFile, member: str, budget: list[int]) -> bytes:
    """A member's bytes, never more than the remaining budget (the sizes in a zip's directory can lie)."""
    with zf.open(member) as fh:
        data = fh.read(budget[0] + 1)
    if len(data) > budget[0]:
        raise _too_big(name, max_unpacked_bytes())
    budget[0] -= len(data)
    return data


def _unwrap(name: str, data: bytes, extra: dict[str, bytes]) -> tuple[str, bytes, dict[str, bytes]]:
    """Open gzip and zip containers in memory (bounded, no path tricks); refuse spreadsheets with a hint
    instead of reading them as junk text."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(name, data)
        name = name[:-3] if name.lower().endswith(".gz") else name
    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise InputError(f"{name} is an old Excel/Office file; export the sheet as CSV (File > Save as > CSV UTF-8)")
    if data[:4] != b"PK\x03\x04":
        return name, data, extra
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            _check_zip(name, zf)
            members = [m for m in zf.namelist() if not m.endswith("/") and "__MACOSX" not in m
                       and not Path(m).name.startswith(".")]
            if any(m.startswith(("xl/", "word/", "ppt/")) for m in zf.namelist()):
                raise InputError(f"{name} is an Excel/Office workbook; export the sheet as CSV (Save as > CSV UTF-8)")
            by_base = {Path(m).name.lower(): m for m in members}
            pick = next((by_base[b] for b in ML_EVENT_FILES if b in by_base), None)
            if pick is None:
                logs = [m for m in members if m.lower().endswith(_DATA_EXT) and not is_metadata_name(m)]
                if len(logs) != 1:
                    raise InputError(f"{name} holds {len(logs)} data files ({', '.join(logs[:5]) or 'none'}); "
                                     f"unzip it and load the log file itself")
                pick = logs[0]
            budget = [max_unpacked_bytes()]
            extra = dict(extra)
            for m in members:
                if m != pick and is_metadata_name(m):
                    extra.setdefault(Path(m).name, _read_member(name, zf, m, budget))
            return Path(pick).name, _read_member(name, zf, pick, budget), extra
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, ValueError, OSError,
            EOFError, zlib.error) as err:  # damaged headers, unknown compression, bad CRC, truncation
        raise InputError(f"{name} is a damaged or unsupported zip file ({str(err)[:100]}); re-download it or unzip "
                         f"it first") from None


def decode_text(name: str, data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252/Latin-1 text; binary data is refused."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(f"{name} starts like UTF-16 text but is not; save it as UTF-8") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"{name} line {line}: NUL bytes, so this is binary data, not a text log; export it as "
                         f"UTF-8 CSV/TSV/JSON Lines or Parquet, or pick the right --format")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        try:
            text = data.decode("cp1252")
            log.info("%s is not UTF-8; read it as Windows-1252/Latin-1 text", name)  # info: a refusal stays one line
        except UnicodeDecodeError:
            line = data.count(b"\n", 0, err.start) + 1
            raise InputError(f"{name} line {line}: byte 0x{data[err.start]:02x} is not valid text in UTF-8 or "
                             f"Latin-1; save the file as UTF-8 (or it is not a text log at all)") from None
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise InputError(f"{name} line {line}: control character 0x{ord(bad.group()):02x}, so this looks like binary "
                         f"data, not a text log; export it as UTF-8 CSV/TSV/JSON Lines or Parquet")
    return text

