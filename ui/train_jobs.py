"""Training jobs as CLI subprocesses, so they survive page changes and reloads and can be cancelled.

A job is a folder `<runs root>/.jobs/<run name>/` with `job.json` (what was started), `progress.jsonl` (events the
trainer appends), and the process's stdout/stderr. The run itself appears in `<runs root>/<run name>/` only when
training finished (the trainer writes it atomically).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from seqrec_core.cli.model_options import YES_NO_OPTIONS
from seqrec_core.data.dataset import DEMO, Dataset

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Job:
    name: str
    folder: Path
    run_dir: Path
    pid: int
    started: float
    dataset: str
    fingerprint: str

    @property
    def progress_path(self) -> Path:
        return self.folder / "progress.jsonl"


def _data_args(ds: Dataset, runs_root: Path) -> list[str]:
    """CLI data options that reopen exactly this dataset (uploads are saved once as Parquet)."""
    if ds.source is not None and ds.source.path == DEMO:
        return ["--data", DEMO]
    if ds.source is not None:
        src = ds.source
        args = ["--data", src.path, "--format", src.format, "--k-core", str(src.prep.k_core)]
        for flag, value in (("--user-col", src.columns.user), ("--item-col", src.columns.item),
                            ("--time-col", src.columns.time), ("--rating-col", src.columns.rating),
                            ("--min-rating", src.prep.min_rating)):
            if value is not None:
                args += [flag, str(value)]
        return args + (["--drop-duplicates"] if src.prep.drop_duplicates else [])
    data_dir = runs_root / ".data"
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{ds.fingerprint}.parquet"
    if not path.exists():
        # A temp name per writer: two sessions starting a job on the same upload at once must not share one
        # (one would rename the other's half-written file into place, or find it already gone).
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            ds.events.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return ["--data", str(path), "--format", "parquet"]


def new_run_name(family: str) -> str:
    return f"{family}-{time.strftime('%Y%m%d-%H%M%S')}"


def _claim_job_folder(runs_root: Path, family: str) -> tuple[str, Path]:
    """A job name no other job or run has, and its folder, created atomically (mkdir fails if it exists), so
    two sessions starting the same family in the same second get two jobs instead of an error."""
    base = new_run_name(family)
    (runs_root / ".jobs").mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        name = base if n == 1 else f"{base}-{n}"
        if (runs_root / name).exists():
            continue
        try:
            (runs_root / ".jobs" / name).mkdir()
        except FileExistsError:
            continue
        return name, runs_root / ".jobs" / name
    raise RuntimeError(f"no free job name under {runs_root} for {base}")


def start_job(ds: Dataset, runs_root: Path, family: str, options: dict[str, object]) -> Job:
    """Start `python -m seqrec_core train` in the background; options are CLI flags without the dashes."""
    name, folder = _claim_job_folder(runs_root, family)
    run_dir = runs_root / name
    cmd = [sys.executable, "-m", "seqrec_core", "train", *_data_args(ds, runs_root), "--model", family,
           "--out", str(run_dir), "--progress", str(folder / "progress.jsonl")]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool) and key in YES_NO_OPTIONS:  # the CLI takes --flag yes|no here
            cmd += [flag, "yes" if value else "no"]
        elif isinstance(value, bool):
            cmd += [flag] if value else []
        elif value is not None:
            cmd += [flag, str(value)]
    with open(folder / "stdout.json", "wb") as out, open(folder / "stderr.log", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=PROJECT_ROOT, start_new_session=True)
    job = Job(name=name, folder=folder, run_dir=run_dir, pid=proc.pid, started=time.time(), dataset=ds.name,
              fingerprint=ds.fingerprint)
    (folder / "job.json").write_text(json.dumps({**asdict(job), "folder": str(folder), "run_dir": str(run_dir),
                                                 "command": cmd}, indent=1))
    return job


def load_job(folder: Path) -> Job | None:
    try:
        obj = json.loads((folder / "job.json").read_text())
        return Job(name=obj["name"], folder=Path(obj["folder"]), run_dir=Path(obj["run_dir"]), pid=int(obj["pid"]),
                   started=float(obj["started"]), dataset=obj["dataset"], fingerprint=obj["fingerprint"])
    except (OSError, ValueError, KeyError):
        return None


def list_jobs(runs_root: Path) -> list[Job]:
    """Every job folder, newest first."""
    root = runs_root / ".jobs"
    jobs = [load_job(p) for p in root.iterdir() if p.is_dir()] if root.exists() else []
    return sorted((j for j in jobs if j is not None), key=lambda j: j.started, reverse=True)


def read_events(job: Job) -> list[dict]:
    """Progress events so far (a line being written right now is skipped until complete)."""
    if not job.progress_path.exists():
        return []
    events = []
    for line in job.progress_path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def is_alive(job: Job) -> bool:
    try:
        pid, wait_status = os.waitpid(job.pid, os.WNOHANG)  # reap our own finished child so it is not a zombie
        if pid == job.pid:
            _record_exit(job, wait_status)
            return False
    except ChildProcessError:
        pass  # not our child (started by another server process): fall back to a signal probe
    try:
        os.kill(job.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _record_exit(job: Job, wait_status: int) -> None:
    """Keep how the process ended in the job folder: only the session that reaps it learns this, and every
    session (or a restarted server) showing the job needs it to say why nothing was saved."""
    info = ({"signal": os.WTERMSIG(wait_status)} if os.WIFSIGNALED(wait_status)
            else {"returncode": os.waitstatus_to_exitcode(wait_status)})
    try:
        (job.folder / "exit.json").write_text(json.dumps(info))
    except OSError:
        pass


def exit_info(job: Job) -> dict:
    """{"signal": n} or {"returncode": n} once the job's process was reaped by this server, else {}."""
    try:
        info = json.loads((job.folder / "exit.json").read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def status(job: Job, events: list[dict]) -> str:
    """'running', 'done', 'cancelled' or 'failed'."""
    last = events[-1]["event"] if events else None
    if last in ("done", "cancelled", "error"):
        return {"done": "done", "cancelled": "cancelled", "error": "failed"}[last]
    if is_alive(job):
        return "running"
    return "done" if (job.run_dir / "config.json").exists() else "failed"


def error_message(job: Job, events: list[dict]) -> str:
    for event in reversed(events):
        if event.get("event") == "error":
            return str(event.get("message"))
    killed = exit_info(job).get("signal")
    if killed is not None:
        try:
            name = signal.Signals(killed).name
        except ValueError:
            name = f"signal {killed}"
        return (f"the training process was stopped by {name} before it finished (out of memory, or killed); "
                "runs are saved only when complete, so nothing was saved: start it again")
    stderr = job.folder / "stderr.log"
    lines = stderr.read_text(errors="replace").strip().splitlines() if stderr.exists() else []
    return lines[-1] if lines else "the training process ended without a result"


def cancel(job: Job) -> None:
    """Ask the trainer to stop after its current step; it keeps the best checkpoint so far."""
    try:
        os.kill(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
