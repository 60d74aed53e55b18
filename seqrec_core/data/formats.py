"""Which format a log file is in, from its name and first few KB: the ``--format auto`` guess.

Split from ``loaders`` so the guess can be read (and tested) on its own: it decides between look-alikes (a
space-separated event table and sequence text; MovieLens ``::`` files and CSV; sequence text and prose) and
what the first bytes say about encoding and binary data, nothing else. The names here stay importable from
``seqrec_core.data.loaders``.
"""
from __future__ import annotations

import codecs
import re
from collections import Counter
from pathlib import Path

from seqrec_core.data.schema import ALL_ALIASES, norm_name
from seqrec_core.errors import InputError

FORMATS = ("auto", "csv", "tsv", "parquet", "jsonl", "movielens", "seqtxt")
HEAD_BYTES = 8192  # how much of a file detect_format needs
GZIP_MAGIC, ZIP_MAGIC, OFFICE_MAGIC, PARQUET_MAGIC = b"\x1f\x8b", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"PAR1"
_UTF32 = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)  # before UTF-16: FF FE 00 00 starts with FF FE too
_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_INT_LINE = re.compile(r"^\d+(?:[ \t]+\d+)*[ \t]*$")
# characters that never separate the tokens of sequence text: a line holding one is a table row (or junk)
_TABLE_CHARS = re.compile(r"[,;|\t\"]")


def detect_format(name: str, head: bytes) -> str:
    """Guess the format from the file name, then from its first bytes (``head``, a few KB are enough)."""
    base = Path(name).name.lower()
    if base.endswith(".gz"):
        base = base[:-3]
    lines = _head_lines(head)
    first = lines[0] if lines else ""
    if head[:4] == b"PAR1" or base.endswith((".parquet", ".pq")):
        return "parquet"
    if base == "u.data" or (base.endswith(".dat") and "::" in first) or base == "ratings.dat":
        return "movielens"
    if norm_name(first.split(",")[0]) == "userid" and len(first.split(",")) > 1 \
            and norm_name(first.split(",")[1]) == "movieid":
        return "movielens"
    if base.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if base.endswith((".tsv", ".tab")):
        return "tsv"
    if base.endswith(".csv"):
        return "csv"
    if first.lstrip().startswith(("{", "[")):
        return "jsonl"
    if "::" in first:
        return "movielens"
    int_lines = [ln for ln in lines if _INT_LINE.match(ln)]
    if int_lines and len(int_lines) >= 0.5 * len(lines) and "," not in first:  # mostly `user item item ...`
        counts = {len(ln.split()) for ln in int_lines}
        if len(counts) > 1 or counts == {2} or len(lines) == 1 \
                or (len(int_lines) == len(lines) and _same_length_sequences(lines)):
            return "seqtxt"
    if _word_sequences(lines) and _not_a_log(lines) is None:
        return "seqtxt"
    return "tsv" if "\t" in first else "csv"


def _same_length_sequences(lines: list[str]) -> bool:
    """Space-separated integer lines, all with the same number (> 3) of fields: sequence text with every sequence
    cut to one length, unless the lines look like one event each: a user on consecutive lines, or columns of
    clearly different sizes (a 1-5 rating beside a 10-digit unix time). Three fields (``user item time``) and
    tab-separated files (MovieLens ``u.data``) stay tables."""
    rows = [ln.split() for ln in lines]
    if any("\t" in ln for ln in lines) or len(rows[0]) <= 3 or any(len(r) != len(rows[0]) for r in rows):
        return False
    if any(a[0] == b[0] for a, b in zip(rows[:-1], rows[1:], strict=True)):
        return False
    digits = [[len(r[j].lstrip("0")) for r in rows] for j in range(1, len(rows[0]))]  # no int(): 5,000-digit cells
    return min(max(d) for d in digits) + 2 > max(min(d) for d in digits)


def _head_lines(head: bytes) -> list[str]:
    """The non-blank lines of a file's first bytes (decoded by its byte-order mark, CR-only breaks read as
    breaks); the last is dropped when the head cuts it off."""
    text = head.decode(text_encoding(head) or "utf-8", errors="replace").lstrip("\ufeff")
    if "\n" not in text:
        text = text.replace("\r", "\n")
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(head) >= HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut off
    return lines


def integer_lines(head: bytes) -> bool:
    """Whether most lines of ``head`` are integers only (``1 10 11 12``): sequence text in the SASRec style, where
    a stray text token is more likely damage than an id (see ``loaders._read_seqtxt``)."""
    lines = _head_lines(head)
    return bool(lines) and sum(bool(_INT_LINE.match(ln)) for ln in lines) >= 0.5 * len(lines)


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")


def _word_sequences(lines: list[str]) -> bool:
    """Sequence text whose ids are not all integers (``u1 itemA itemB``, ASINs, hashed ids): tokens separated by
    spaces only (no comma, semicolon, pipe, tab or quote on any line), at least two per line, no header (no
    column name such as ``user`` or ``item`` on the first line), and either lines of different lengths, which
    no table has, or one length that :func:`_same_length_sequences` reads as cut-to-length sequences."""
    if not lines or any(_TABLE_CHARS.search(ln) for ln in lines):
        return False
    rows = [ln.split() for ln in lines]
    if any(len(r) < 2 for r in rows) or any(norm_name(t) in ALL_ALIASES for t in rows[0]):
        return False
    return len({len(r) for r in rows}) > 1 or _same_length_sequences(lines)


# ------------------------------------------------------------------------------------ prose is not a log

# Words that make up a third or more of any English text and are never item ids in a log.
_COMMON_WORDS = frozenset("""a an the and or but if of to in on at by for with from into about as is are was were be
been am it its this that these those i you he she we they me him her us them my your his our their not no do does
did have has had will would can could should may might there here what which who when where why how all some so
than then just also very""".split())
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
_MIN_LINES_WITHOUT_REPEATS = 20  # under this many lines, a log must show an item twice


def _not_a_log(lines: list[str]) -> str | None:
    """Why lines shaped like text-id sequence text (``u1 itemA itemB``) read as prose instead, or None.

    What tells them apart: prose is made of common words (a third of English text is 'the', 'is', 'of', ...),
    which ids never are, and its lines end sentences; a log's items recur across users (a popular item is
    bought by many), while the words of a short note mostly appear once. Integer sequence text (the SASRec
    files) never comes here."""
    rows = [ln.split() for ln in lines]
    words = [t.strip(".,!?;:'\"()[]").lower() for r in rows for t in r]
    common = [w for w in words if w in _COMMON_WORDS]
    if words and len(common) >= 0.15 * len(words):
        shown = ", ".join(f"'{w}'" for w, _ in Counter(common).most_common(3))
        return f"{len(common) / len(words):.0%} of its words are common English words ({shown})"
    ends = sum(bool(_SENTENCE_END.search(r[-1])) for r in rows if r)
    if rows and ends >= 0.3 * len(rows):
        return f"{ends} of its {len(rows)} lines end a sentence"
    lines_of: dict[str, set[int]] = {}
    for k, row in enumerate(rows):
        for item in row[1:]:
            lines_of.setdefault(item, set()).add(k)
    repeats = any(len(s) > 1 for s in lines_of.values()) or any(len(set(r[1:])) < len(r) - 1 for r in rows)
    if 1 < len(rows) < _MIN_LINES_WITHOUT_REPEATS and not repeats:
        return f"none of the words after the first on its {len(rows)} lines appears twice, as items in a log do"
    return None


def refuse_prose(name: str, head: bytes) -> None:
    """Refuse (for ``--format auto``) a file that has the shape of text-id sequence text but reads as prose: a
    two-line note must not be taken for a log of two users. ``--format seqtxt`` skips this check."""
    lines = _head_lines(head)
    if not _word_sequences(lines):
        return
    reason = _not_a_log(lines)
    if reason is not None:
        raise InputError(f"{name} reads like prose, not a behaviour log ({reason}); a log has one event per line "
                         f"(user, item, time) or one 'user item item ...' sequence per line; if this file is "
                         f"sequence text, pass --format seqtxt")


# ------------------------------------------------------------------------------- encodings and binary data

def text_encoding(head: bytes) -> str | None:
    """The encoding a byte-order mark names (UTF-32/16/8), None without one."""
    if head.startswith(_UTF32):
        return "utf-32"
    if head.startswith(_UTF16):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    return None


def _nul_pattern(head: bytes) -> str | None:
    """UTF-16/32 without a byte-order mark shows as NUL bytes in fixed places of every code unit (ASCII text)."""
    sample = head[: len(head) - len(head) % 4]
    if len(sample) < 8:
        return None
    for width, enc in ((4, "UTF-32"), (2, "UTF-16")):
        zeros = [sample[k::width].count(0) / (len(sample) // width) for k in range(width)]
        for text_at, order in ((width - 1, "BE"), (0, "LE")):  # where the ASCII byte of each code unit sits
            if zeros[text_at] < 0.05 and all(z > 0.95 for k, z in enumerate(zeros) if k != text_at):
                return f"{enc}-{order}"
    return None


def refuse_binary(name: str, data: bytes) -> None:
    """NUL bytes in a text file mean binary data (zeros, an image, a database), or UTF-16/32 without a mark
    (told apart by the first 64 KB)."""
    if text_encoding(data[:4]) in ("utf-32", "utf-16"):
        return
    nul = data.find(b"\x00")
    if nul < 0:
        return
    head = data[:1 << 16]
    pattern = _nul_pattern(head)
    if pattern:
        raise InputError(f"{name} looks like {pattern} text without a byte-order mark, which reads as binary data "
                         f"here; save it as UTF-8 (or as {pattern[:6]} with a byte-order mark)")
    line = data.count(b"\n", 0, nul) + 1
    raise InputError(f"{name} line {line}: NUL bytes, so this is binary data, not a text log; export it as "
                     f"UTF-8 CSV/TSV/JSON Lines or Parquet, or pick the right --format")
