"""Hostile and odd input files are refused early and in bounded memory (issue 16, item 4): peak RSS and wall time
of ``python -m seqrec_core validate --data X`` for each probe a reviewer found, and for a normal accepted log.

Bar: peak RSS <= 1.5 GB for any refused input, refused fast; an accepted 100k-row log no slower than before.

Each probe runs as its own child process, started by a lean launcher interpreter that reports
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it (so one probe's peak is never another's, nor this
script's: Linux starts a child's ru_maxrss at its parent's RSS). The probes are generated into a temporary
folder under /tmp and deleted afterwards (the 2 GB file too):

- ``rows_1mb.csv.gz`` / ``rows_11mb.csv.gz``: gzips of repetitive CSV rows (~130x, about deflate's ceiling for
  rows: 1 MB unpacks to ~130 MB, 11 MB to ~1.4 GB, under the 2 GB unpack limit);
- ``zeros_3mb.gz``: a 3 MB gzip of zero bytes (unpacks to ~3 GB);
- ``line_2gb.csv``: a 2 GB file with no line break;
- ``/dev/zero``;
- ``log_100k.csv``: a normal 100,000-row log (accepted), also timed with ``--before`` (another checkout).

``--calibrate`` instead measures what the parse of an accepted log costs per format (peak RSS above the
interpreter's, per byte and per line), the numbers behind ``limits.PARSE_COSTS``.

    python bench/bounded_memory.py                          # the probe table
    python bench/bounded_memory.py --before /tmp/old_tree   # also the 100k log on an older checkout
    python bench/bounded_memory.py --before /tmp/old_tree --parse-heavy   # and the 1 MB gzip parsed, both trees
    python bench/bounded_memory.py --calibrate --rows 1000000
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import host_info  # noqa: E402

T0 = 1_700_000_000
BLOCK = 16 * 2**20


# Linux starts a child's ru_maxrss at its parent's RSS when it forks (the copied memory map counts), and this
# script holds generated logs: so each probe is started by a small launcher interpreter, which reports the
# ru_maxrss of the CLI process it started (resource.getrusage(RUSAGE_CHILDREN) after waiting for it).
LAUNCHER = r"""
import json, os, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdout=open(os.environ["BM_OUT"], "wb"), stderr=open(os.environ["BM_ERR"], "wb"))
wall = time.perf_counter() - start
print(json.dumps({"exit": code, "wall_s": round(wall, 2),
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def run_validate(path: str, root: Path = ROOT, fmt: str = "auto", env: dict | None = None) -> dict:
    """``validate --data path`` in a child process: exit code, wall seconds, the child's own peak RSS (MB) and the
    last line of stderr (the refusal) or the event count."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        env = dict(os.environ) | (env or {}) | {"BM_OUT": str(out), "BM_ERR": str(err)}
        cmd = [sys.executable, "-S", "-c", LAUNCHER, sys.executable, "-m", "seqrec_core", "validate", "--data", path,
               "--format", fmt]
        launched = json.loads(subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                                             check=True).stdout)
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
    result = {"exit": launched["exit"], "wall_s": launched["wall_s"],
              "peak_rss_mb": round(launched["peak_rss_kb"] / 1024)}
    if result["exit"] == 0:
        result["events"] = json.loads(stdout)["events"]
    else:
        lines = stderr.strip().splitlines()
        result["stderr_lines"] = len(lines)
        result["message"] = lines[-1][:160] if lines else ""
    return result


# ------------------------------------------------------------------------------------------------ the probes

def repetitive_rows_gzip(path: Path, packed_bytes: int) -> int:
    """A gzip of CSV rows that repeat every 500 rows (~130x compression), grown until it is ``packed_bytes`` big;
    returns the unpacked size."""
    block = "".join(f"u{k % 500},i{k % 100},{T0 + 60 * (k % 500)}\n" for k in range(500_000)).encode()
    unpacked = 0
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as gz:
        gz.write(b"user_id,item_id,timestamp\n")
        while raw.tell() < packed_bytes:
            gz.write(block)
            unpacked += len(block)
    return unpacked


def zeros_gzip(path: Path, packed_bytes: int) -> int:
    zeros = bytes(BLOCK)
    unpacked = 0
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz:
        while raw.tell() < packed_bytes:
            gz.write(zeros)
            unpacked += len(zeros)
    return unpacked


def long_line(path: Path, size: int) -> int:
    chunk = b"x" * BLOCK
    with path.open("wb") as fh:
        for _ in range(size // BLOCK):
            fh.write(chunk)
    return size


def realistic_log(n_rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Users with a few to a few hundred events, Zipf-popular items, times increasing within each user."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, max(1, n_rows // 20), n_rows)
    items = np.minimum(rng.zipf(1.2, n_rows), 50_000)
    times = T0 + np.sort(rng.integers(0, 90 * 86400, n_rows))
    return {"user": users, "item": items, "time": times}


def write_log(path: Path, fmt: str, n_rows: int) -> None:
    """The realistic log in one format (csv, tsv, jsonl, json, seqtxt, seqtxt_text, movielens, parquet)."""
    log = realistic_log(n_rows)
    u, i, t = log["user"].tolist(), log["item"].tolist(), log["time"].tolist()
    if fmt == "parquet":
        import pandas as pd

        pd.DataFrame({"user_id": [f"u{x:07d}" for x in u], "item_id": [f"i{x:06d}" for x in i],
                      "timestamp": log["time"]}).to_parquet(path, index=False)
        return
    with path.open("w") as fh:
        if fmt in ("csv", "tsv"):
            sep = "," if fmt == "csv" else "\t"
            fh.write(sep.join(["user_id", "item_id", "timestamp"]) + "\n")
            fh.writelines(f"u{a:07d}{sep}i{b:06d}{sep}{c}\n" for a, b, c in zip(u, i, t, strict=True))
        elif fmt == "csv_wide":  # eight columns, ~120 bytes a line: more cells per line
            fh.write("user_id,item_id,timestamp,rating,event_type,device,country,title\n")
            fh.writelines(f"u{a:07d},i{b:06d},{c},{1 + b % 5},{('view', 'cart', 'buy')[b % 3]},mobile,DE,"
                          f"Product number {b} in the catalogue\n" for a, b, c in zip(u, i, t, strict=True))
        elif fmt == "movielens":
            fh.writelines(f"{a + 1}::{b}::{1 + b % 5}::{c}\n" for a, b, c in zip(u, i, t, strict=True))
        elif fmt == "jsonl":
            fh.writelines(f'{{"user": "u{a:07d}", "item": "i{b:06d}", "ts": {c}}}\n'
                          for a, b, c in zip(u, i, t, strict=True))
        elif fmt == "json":
            fh.write("[" + ",".join(f'{{"user":"u{a:07d}","item":"i{b:06d}","ts":{c}}}'
                                    for a, b, c in zip(u, i, t, strict=True)) + "]")
        else:  # sequence text: one line per user, items in time order
            seqs: dict[int, list[int]] = {}
            for a, b in zip(u, i, strict=True):
                seqs.setdefault(a, []).append(b)
            item = (lambda b: f"B{b:09d}") if fmt == "seqtxt_text" else str
            fh.writelines(f"{a + 1} {' '.join(map(item, s))}\n" for a, s in seqs.items())


def probes(tmp: Path) -> list[tuple[str, Callable[[], tuple[str, int, int]]]]:
    """(label, make) pairs; make() writes the probe and returns its path, size on disk and unpacked size."""
    def gz_rows(mb: int) -> Callable[[], tuple[str, int, int]]:
        def make() -> tuple[str, int, int]:
            path = tmp / f"rows_{mb}mb.csv.gz"
            unpacked = repetitive_rows_gzip(path, mb * 2**20)
            return str(path), path.stat().st_size, unpacked
        return make

    def zeros() -> tuple[str, int, int]:
        path = tmp / "zeros_3mb.gz"
        unpacked = zeros_gzip(path, 3 * 2**20)
        return str(path), path.stat().st_size, unpacked

    def line() -> tuple[str, int, int]:
        path = tmp / "line_2gb.csv"
        return str(path), long_line(path, 2 * 2**30), 2 * 2**30

    def accepted() -> tuple[str, int, int]:
        path = tmp / "log_100k.csv"
        write_log(path, "csv", 100_000)
        return str(path), path.stat().st_size, path.stat().st_size

    return [("1 MB gzip of rows", gz_rows(1)), ("11 MB gzip of rows", gz_rows(11)), ("3 MB gzip of zeros", zeros),
            ("2 GB line, no newline", line), ("/dev/zero", lambda: ("/dev/zero", 0, 0)),
            ("accepted 100k-row CSV", accepted)]


def run_probes(before: Path | None, parse_heavy: bool) -> list[dict]:
    """Each probe on this checkout; the accepted log also on ``before``. With ``parse_heavy`` the 1 MB gzip of
    rows is also run with the inflate-ratio check off, so the memory estimate admits it and it is parsed: the
    parse's own peak, after and (on ``before``) before (~3 GB and a minute there)."""
    rows = []
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="bounded_memory_") as tmp:
        for label, make in probes(Path(tmp)):
            path, size, unpacked = make()
            row = {"probe": label, "file_mb": round(size / 2**20, 1), "unpacked_mb": round(unpacked / 2**20, 1),
                   "after": run_validate(path)}
            if before is not None and label.startswith("accepted"):
                row["before"] = run_validate(path, before)
                row["after_again"] = run_validate(path)  # interleaved, so load on the machine hits both alike
            if parse_heavy and label.startswith("1 MB"):
                rows.append(row)
                row = dict(row, probe="  same, ratio check off", after=run_validate(
                    path, env={"SEQREC_MAX_INFLATE_RATIO": "0"}))
                if before is not None:
                    row["before"] = run_validate(path, before)
            if path.startswith(tmp):
                Path(path).unlink()  # the 2 GB file does not outlive its probe
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------- calibration

CALIBRATE_FORMATS = ("csv", "csv_wide", "tsv", "movielens", "jsonl", "json", "seqtxt", "seqtxt_text", "parquet")
_EXT = {"csv": "log.csv", "csv_wide": "wide.csv", "tsv": "log.tsv", "movielens": "ratings.dat", "jsonl": "log.jsonl",
        "json": "log.json", "seqtxt": "seq.txt", "seqtxt_text": "seq.txt", "parquet": "log.parquet"}


def calibrate(n_rows: int, formats: tuple[str, ...]) -> dict:
    """Peak RSS of validate above a tiny log's, per unpacked byte and per line, for each format."""
    out: dict = {}
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="bounded_memory_cal_") as tmp:
        tiny = Path(tmp) / "tiny.csv"
        tiny.write_text("user_id,item_id,timestamp\n" + "".join(f"u{k % 5},i{k % 7},{T0 + k}\n" for k in range(60)))
        base = run_validate(str(tiny))["peak_rss_mb"]
        out["baseline_peak_rss_mb"] = base
        for fmt in formats:
            path = Path(tmp) / _EXT[fmt]
            write_log(path, fmt, n_rows)
            size = path.stat().st_size
            fields = 0
            if fmt == "parquet":
                import pyarrow.parquet as pq

                meta = pq.ParquetFile(path).metadata
                lines = meta.num_rows
                size = max(size, sum(meta.row_group(k).total_byte_size for k in range(meta.num_row_groups)))
            else:
                data = path.read_bytes()
                lines, fields = data.count(b"\n"), data.count(b"\n") + data.count(b" ")
                del data
            run = run_validate(str(path), env={"SEQREC_MEMORY_BUDGET_MB": "0"})
            above = (run["peak_rss_mb"] - base) * 2**20
            out[fmt] = {"mb": round(size / 2**20, 1), "lines": lines, **run,
                        "bytes_above_base_per_byte": round(above / size, 2),
                        "bytes_above_base_per_line": round(above / max(lines, 1))}
            from seqrec_core.data.limits import parse_memory

            est = parse_memory(fmt.split("_")[0], size, lines, fields if fmt.startswith("seqtxt") else 0)
            out[fmt]["estimate_mb"] = round(est / 2**20)
            path.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="another checkout to time the accepted log on")
    parser.add_argument("--calibrate", action="store_true", help="measure the per-format parse cost instead")
    parser.add_argument("--parse-heavy", action="store_true",
                        help="also parse the 1 MB gzip of rows with the inflate-ratio check off (after and before)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the calibration logs")
    parser.add_argument("--formats", default=",".join(CALIBRATE_FORMATS))
    args = parser.parse_args()
    result: dict = {"bench": "bounded_memory", "machine": host_info()}
    from seqrec_core.data.limits import available_memory, memory_budget

    result["machine"]["available_gb"] = round((available_memory() or 0) / 2**30, 1)
    result["memory_budget"] = memory_budget()[1] or "none"
    if args.calibrate:
        result["calibration"] = calibrate(args.rows, tuple(args.formats.split(",")))
    else:
        rows = run_probes(args.before, args.parse_heavy)
        result["probes"] = rows
        result["bar"] = {"peak_rss_mb_refused": 1536}
        refused = [r["after"] for r in rows if r["after"]["exit"] != 0]
        result["meets_bar"] = all(r["peak_rss_mb"] <= 1536 and r.get("stderr_lines") == 1 for r in refused)
        print(_table(rows), file=sys.stderr)
    print(json.dumps(result, indent=2))


def _table(rows: list[dict]) -> str:
    buf = io.StringIO()
    buf.write(f"{'probe':24} {'file MB':>8} {'unpacked MB':>12} {'exit':>4} {'wall s':>7} {'peak RSS MB':>11}"
              f"  outcome\n")
    for r in rows:
        for key in ("after", "before", "after_again"):
            if key not in r:
                continue
            a = r[key]
            outcome = f"{a['events']:,} events" if a["exit"] == 0 else a["message"][:90]
            label = r["probe"] if key == "after" else f"  ({key})"
            buf.write(f"{label:24} {r['file_mb']:>8} {r['unpacked_mb']:>12} {a['exit']:>4} {a['wall_s']:>7} "
                      f"{a['peak_rss_mb']:>11}  {outcome}\n")
    return buf.getvalue()


if __name__ == "__main__":
    main()
