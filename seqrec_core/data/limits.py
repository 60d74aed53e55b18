"""Size and memory limits on input files, checked before (or while) their bytes are read.

Why here: a log is read whole into memory and parsed into a table, so a file the machine cannot hold would
otherwise end in a MemoryError or the OOM killer, with no sentence for the person who picked it. The bounds:

- the file size: uploads are capped per dashboard (``SEQREC_MAX_UPLOAD_MB``, checked in ``ui/uploads``); files
  opened by path (the CLI, ``open_dataset``, a run's recorded data source) by ``SEQREC_MAX_FILE_MB``. Both
  refusals come from :func:`refuse_if_larger`, so they read the same.
- the memory the parse will need (:func:`check_parse_memory`): estimated from the unpacked size and line count
  with a per-format cost measured on this code (``bench/bounded_memory.py``), against a budget of three quarters
  of the memory the machine has available now (``SEQREC_MEMORY_BUDGET_MB`` overrides it). A compressed log is
  judged while it streams, before it is held, so a small gzip that unpacks to gigabytes is a sentence too.
- the line length (``SEQREC_MAX_LINE_MB``): a log line is never megabytes, so a text file without a line break
  in its first megabytes is refused while streaming instead of being split and parsed as one giant row.
- for compressed files, the unpacked size (``SEQREC_MAX_UNPACKED_MB``) and the inflate ratio
  (``SEQREC_MAX_INFLATE_RATIO``), and for every file binary junk (NUL bytes in the first 64 KB).

:class:`StreamMeter` checks them all on the bytes as they stream (``containers`` feeds it), so a refusal costs
the chunks read so far, never the file.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from seqrec_core.data.formats import (
    GZIP_MAGIC,
    HEAD_BYTES,
    OFFICE_MAGIC,
    PARQUET_MAGIC,
    ZIP_MAGIC,
    detect_format,
    refuse_binary,
    text_encoding,
)
from seqrec_core.errors import InputError

MAX_FILE_ENV = "SEQREC_MAX_FILE_MB"
# Generous on purpose: the 10M-event benchmark log must still load; a deployment lowers it, 0 switches it off.
DEFAULT_MAX_FILE_MB = 20_000.0


def size_text(n_bytes: int) -> str:
    """A file size as a person reads it: ``512 bytes``, ``3.6 KB``, ``12.0 MB``, ``1.5 GB`` (binary units)."""
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:,.1f} GB"
    if n_bytes >= 2**20:
        return f"{n_bytes / 2**20:,.1f} MB"
    if n_bytes >= 2**10:
        return f"{n_bytes / 2**10:,.1f} KB"
    return f"{n_bytes:,} bytes"


def refuse_if_larger(name: str, size: int, limit_mb: float, *, limit_name: str, fix: str) -> None:
    """Raise the one-line refusal ``<name> is <size>, over <limit_name> of <limit> MB; <fix>`` when ``size``
    (bytes) exceeds ``limit_mb``; an infinite limit never refuses."""
    if math.isfinite(limit_mb) and size > limit_mb * 2**20:
        raise InputError(f"{name} is {size_text(size)}, over {limit_name} of {limit_mb:,g} MB; {fix}")


def env_mb(env: str, default: float | None, example: float, unit: str = "MB") -> float | None:
    """A limit from the environment (in ``unit``): ``default`` when unset, infinity for 0 or less. A value that is
    not a number is refused rather than silently ignored: a typo must not quietly switch a deployment's limit
    back to the default."""
    value = os.environ.get(env, "").strip()
    if not value:
        return default
    try:
        limit = float(value)
    except ValueError:
        limit = math.nan
    if math.isnan(limit):
        raise InputError(f"{env}='{value[:40]}' is not a number of {unit}; set it to e.g. {example:g} (0 = no limit) "
                         f"or unset it")
    return limit if limit > 0 else math.inf


def max_file_mb() -> float:
    """The cap on files opened by path in MB: ``SEQREC_MAX_FILE_MB`` if set (0 or less = no cap), else
    :data:`DEFAULT_MAX_FILE_MB`."""
    return env_mb(MAX_FILE_ENV, DEFAULT_MAX_FILE_MB, DEFAULT_MAX_FILE_MB)


def check_file_size(path: str | Path) -> None:
    """Refuse a file over :func:`max_file_mb` before reading it (a file whose size cannot be read is left to the
    reader, which reports that itself)."""
    path = Path(path)
    limit = max_file_mb()
    try:
        size = path.stat().st_size
    except OSError:
        return
    refuse_if_larger(f"'{str(path)[:200]}'", size, limit, limit_name="the data-file size limit",
                     fix=f"raise it with {MAX_FILE_ENV}={max(math.ceil(size / 2**20) + 1, 1)} "
                         f"(0 = no limit), or load a smaller extract")


# ----------------------------------------------------------------------------------------------- line length

MAX_LINE_ENV = "SEQREC_MAX_LINE_MB"
DEFAULT_MAX_LINE_MB = 8.0  # the longest line of the shared logs is under 10 KB; JSON arrays are exempt


def max_line_bytes() -> float:
    """Longest run of bytes without a line break a text log may hold (``SEQREC_MAX_LINE_MB``, 0 = no limit)."""
    return env_mb(MAX_LINE_ENV, DEFAULT_MAX_LINE_MB, DEFAULT_MAX_LINE_MB) * 2**20


# ------------------------------------------------------------------------------------------- parse memory

MEMORY_ENV = "SEQREC_MEMORY_BUDGET_MB"
BUDGET_SHARE = 0.75  # of the memory available when the log is opened: the rest is for everything else running
_NO_LIMIT = 2**60  # what cgroups write for "unlimited"


@dataclass(frozen=True)
class ParseCost:
    """Peak memory of reading a log into the canonical table and its sequences (what ``validate`` does), above
    the interpreter's own: bytes per unpacked byte, per line and per space-separated field (sequence text holds
    one event per field, however short), plus a constant. Measured with ``bench/bounded_memory.py --calibrate``
    on logs of 3M events, set a tenth to a half above what was measured, so the estimate errs on the side of
    refusing."""

    per_byte: float
    per_line: float
    per_field: float = 0.0
    fixed: int = 16 * 2**20  # pandas and Arrow buffers that any parse allocates

    def need(self, n_bytes: int, n_lines: int, n_fields: int = 0) -> int:
        return int(self.fixed + self.per_byte * n_bytes + self.per_line * n_lines + self.per_field * n_fields)


# measured (bytes above the interpreter, 3M events): csv 10.4/byte = 292/line (8 columns: 6.8/byte = 541/line),
# movielens .dat 11.5/byte, jsonl 13.1/byte = 761/line, JSON array 10.6/byte, seqtxt 160-180/field, Parquet 196/row
PARSE_COSTS: dict[str, ParseCost] = {
    "csv": ParseCost(per_byte=5.0, per_line=250.0),
    "tsv": ParseCost(per_byte=5.0, per_line=250.0),
    "movielens": ParseCost(per_byte=5.0, per_line=250.0),
    "seqtxt": ParseCost(per_byte=4.0, per_line=200.0, per_field=200.0),
    "jsonl": ParseCost(per_byte=5.0, per_line=600.0),
    "json": ParseCost(per_byte=16.0, per_line=0.0),  # a JSON array: records need not sit one to a line
    "parquet": ParseCost(per_byte=2.0, per_line=250.0),  # bytes: uncompressed column data; lines: rows
}


def _read_number(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def _meminfo_kb(key: str, text: str) -> int | None:
    found = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) * 1024 if found else None


def available_memory() -> int | None:
    """Bytes this process can still take: the smallest of the machine's available memory, its cgroup's
    headroom (a container's limit) and the address-space limit (``ulimit -v``); None if none can be read."""
    found: list[int] = []
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        meminfo = ""
    avail = _meminfo_kb("MemAvailable", meminfo)
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    if avail:
        found.append(avail)
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_number(limit_file), _read_number(usage_file)
        if limit is not None and limit < _NO_LIMIT and usage is not None:
            found.append(max(limit - usage, 0))
    try:
        import resource  # Unix only
    except ImportError:
        return min(found) if found else None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            status = ""
        found.append(max(soft - (_meminfo_kb("VmSize", status) or 0), 0))
    return min(found) if found else None


def memory_budget() -> tuple[float, str]:
    """The bytes a log's parse may need, and where that number comes from (for the refusal):
    ``SEQREC_MEMORY_BUDGET_MB`` if set (0 or less = no check), else :data:`BUDGET_SHARE` of
    :func:`available_memory` (no check when it cannot be read)."""
    mb = env_mb(MEMORY_ENV, None, 4096)
    if mb is not None:
        return mb * 2**20, f"the memory budget {MEMORY_ENV}={mb:g}"
    avail = available_memory()
    if avail is None:
        return math.inf, ""
    return BUDGET_SHARE * avail, f"3/4 of the {size_text(avail)} this machine has available"


def parse_memory(fmt: str, n_bytes: int, n_lines: int, n_fields: int = 0) -> int:
    """Estimated peak bytes to read a log of ``n_bytes`` unpacked bytes, ``n_lines`` lines and ``n_fields``
    space-separated fields in ``fmt``."""
    return PARSE_COSTS.get(fmt, PARSE_COSTS["jsonl"]).need(n_bytes, n_lines, n_fields)


def check_parse_memory(name: str, fmt: str, n_bytes: int, n_lines: int, *, n_fields: int = 0, what: str = "is",
                       so_far: bool = False, budget: tuple[float, str] | None = None) -> None:
    """Refuse, before parsing, a log whose parse would need more memory than :func:`memory_budget` (or
    ``budget``, that function's answer kept by a caller that checks often), with a line that says how big it is,
    what it would need and what to do. ``what`` reads "is" for a plain file and "unpacks to" for a compressed
    one; ``so_far``: the counts are those of the part read yet (the log is at least that big)."""
    budget, source = budget or memory_budget()
    need = parse_memory(fmt, n_bytes, n_lines, n_fields)
    if need <= budget:
        return
    unit = "rows" if fmt == "parquet" else "lines"
    lines = f"at least {n_lines:,} {unit}" if so_far else f"{n_lines:,} {unit}"
    raise InputError(f"{name} {what} {size_text(n_bytes)} ({lines}); reading it as {fmt} needs about "
                     f"{size_text(need)} of memory, more than {source} ({size_text(int(budget))}); load a smaller "
                     f"extract (fewer users or a shorter period), or on a machine with more memory raise "
                     f"{MEMORY_ENV} (0 = no check)")


# ------------------------------------------------------------------------------------ unpacked size, streams

# Compressed files are unpacked in memory, never to disk: this bounds a zip/gzip bomb before the memory estimate
# does (the estimate knows the format only once the first bytes are seen). Override with SEQREC_MAX_UNPACKED_MB.
MAX_UNPACKED_MB = 2048
CHUNK = 1 << 20  # bytes read or unpacked at a time
_HEAD = 1 << 16  # bytes that decide what a stream holds (binary, encoding, format)


# A real log compresses 3-20x (gzip); a hundredfold is what a compression bomb or degenerate filler does (Apache
# POI refuses zips past the same ratio). Judged only past the first 16 MB unpacked, so small files never trip it.
MAX_INFLATE_RATIO = 100
_RATIO_GRACE = 16 * CHUNK


def env_count(env: str, default: int) -> int:
    """A positive whole number from the environment; junk, nan or inf there gives the default, not a crash."""
    try:
        return max(1, int(float(os.environ.get(env, default))))
    except (ValueError, OverflowError):
        return default


def max_unpacked_bytes() -> int:
    """Largest total a gzip or zip may decompress to (``SEQREC_MAX_UNPACKED_MB``, default 2048 MB)."""
    return env_count("SEQREC_MAX_UNPACKED_MB", MAX_UNPACKED_MB) * 2**20


def max_inflate_ratio() -> float:
    """Most a compressed log may unpack to per compressed byte (``SEQREC_MAX_INFLATE_RATIO``, 0 = no check)."""
    return env_mb("SEQREC_MAX_INFLATE_RATIO", MAX_INFLATE_RATIO, MAX_INFLATE_RATIO, unit="times")


def too_big(name: str, limit: int) -> InputError:
    return InputError(f"{name} unpacks to more than {limit // 2**20:,} MB (a compression bomb, or a log too big for "
                      f"one upload); unpack it yourself and load the log file, or raise SEQREC_MAX_UNPACKED_MB")


class StreamMeter:
    """Watches a stream's bytes go by and refuses at the first bound crossed; keeps only the first 64 KB.

    ``name`` is what the content is called in messages (``log.csv``, ``up.zip: ratings.csv``), ``outer`` the file
    a person chose (``log.csv.gz``), ``size`` the total when it is known up front (a plain file: judged by its
    size and first lines before the rest is read), ``packed`` the compressed size of a compressed stream."""

    def __init__(self, name: str, fmt: str, *, outer: str | None = None, unpack_limit: int | None = None,
                 size: int | None = None, packed: int | None = None) -> None:
        self.name, self.fmt, self.outer = name, fmt, outer
        # what messages call it: the file a person chose when the content is just that file unpacked
        self.shown = outer if outer and name in outer else name
        self.unpack_limit, self.size, self.packed = unpack_limit, size, packed
        self.max_ratio = max_inflate_ratio() if packed else math.inf
        self.total = self.lf = self.cr = self.spaces = self.run = self.longest = self.checked = 0
        self.first_break: int | None = None  # offset of the first line break
        self.head = bytearray()
        self.kind = ""  # text | jsonarray | parquet | zip | gzip, once the head has been seen
        self.parse_fmt = ""  # the format the memory estimate uses (text kinds only)
        self.max_line = max_line_bytes()
        self.budget = memory_budget()

    @property
    def lines(self) -> int:
        return self.lf or self.cr  # old Mac files break lines with CR alone

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.unpack_limit is not None and self.total > self.unpack_limit:
            raise too_big(self.outer or self.name, self.unpack_limit)
        if self.packed and self.total > _RATIO_GRACE and self.total > self.max_ratio * self.packed:
            self._refuse_ratio()
        self.lf += chunk.count(b"\n")
        self.cr += chunk.count(b"\r")
        self.spaces += chunk.count(b" ")
        self._track_lines(chunk)
        if not self.kind:
            self.head += chunk[:_HEAD - len(self.head)]
            if len(self.head) >= _HEAD:
                self._classify()
        elif self.kind == "text" and self.longest > self.max_line:
            self._refuse_long_line()
        if self.parse_fmt and self.total - self.checked >= 16 * CHUNK:
            self._check_memory(final=False)

    def finish(self) -> StreamMeter:
        if not self.kind:
            self._classify()
        if self.parse_fmt:
            self._check_memory(final=True)
        return self

    def _track_lines(self, chunk: bytes) -> None:
        """The longest run of bytes without a line break so far, across chunks."""
        first = min((i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0), default=-1)
        if first >= 0 and self.first_break is None:
            self.first_break = self.total - len(chunk) + first
        if first < 0:
            self.run += len(chunk)
            self.longest = max(self.longest, self.run)
            return
        self.longest = max(self.longest, self.run + first)
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if last - first > self.max_line:  # only with a limit lowered under the chunk size
            self.longest = max(self.longest, *map(len, re.split(rb"[\r\n]", chunk[first:last])))
        self.run = len(chunk) - last - 1
        self.longest = max(self.longest, self.run)

    def _refuse_ratio(self) -> None:
        raise InputError(f"{self.outer or self.name} unpacks to more than {self.max_ratio:g} times its "
                         f"{size_text(self.packed)} (already {size_text(self.total)}); real logs compress 3-20 times, "
                         f"so this is a compression bomb or filler, not a log; unpack and check it yourself, or raise "
                         f"SEQREC_MAX_INFLATE_RATIO (0 = no check)")

    def _refuse_long_line(self) -> None:
        where = "a line runs" if self.first_break is not None and self.first_break <= self.max_line else \
            "its first line runs"
        raise InputError(f"{self.shown}: {where} over {size_text(int(self.max_line))} without a line break; a log "
                         f"line is never that long, so this is not a text log (or its line breaks were lost); export "
                         f"it as CSV/TSV/JSON Lines or Parquet, or raise SEQREC_MAX_LINE_MB")

    def _classify(self) -> None:
        head = bytes(self.head)
        if head[:2] == GZIP_MAGIC:
            self.kind = "gzip"
        elif head[:4] == ZIP_MAGIC:
            self.kind = "zip"
        elif head[:4] == OFFICE_MAGIC:
            self.kind = "office"  # the caller names what to do
        elif head[:4] == PARQUET_MAGIC or (self.fmt if self.fmt != "auto" else detect_format(
                self.name, head[:HEAD_BYTES])) == "parquet":  # a damaged .parquet is the Parquet reader's to name
            self.kind = "parquet"  # judged by its own metadata when read (rows, uncompressed size)
        else:
            refuse_binary(self.shown, head)
            text = head.decode(text_encoding(head) or "utf-8", errors="replace").lstrip("\ufeff \t\r\n")
            self.kind = "jsonarray" if text.startswith("[") else "text"  # a JSON array may be one long line
            if self.kind == "text" and self.longest > self.max_line:
                self._refuse_long_line()
            self.parse_fmt = self.fmt if self.fmt != "auto" else detect_format(self.name, head[:HEAD_BYTES])
            if self.kind == "jsonarray" and self.parse_fmt == "jsonl":
                self.parse_fmt = "json"
            if self.size is not None and head:
                scale = self.size / len(head)
                lines, fields = (head.count(b"\n") or head.count(b"\r")) * scale, head.count(b" ") * scale
                check_parse_memory(self.name, self.parse_fmt, self.size, int(lines), n_fields=int(lines + fields),
                                   budget=self.budget)

    def _check_memory(self, final: bool) -> None:
        self.checked = self.total
        if self.outer:  # compressed: what has streamed so far is all that is known
            what = "unpacks to" if final else "unpacks to at least"
        else:
            what = "is"
        name = self.shown
        n_bytes = self.total if self.size is None else self.size
        check_parse_memory(name, self.parse_fmt, n_bytes, self.lines, n_fields=self.lines + self.spaces, what=what,
                           so_far=not final, budget=self.budget)
