"""Background jobs as CLI subprocesses, so they survive page changes and reloads and can be cancelled.

A job is a folder ``<runs root>/.jobs/<name>/`` holding ``spec.json`` (what to do: a :mod:`seqrec_core.jobs.spec`
spec), ``job.json`` (who started it and when), ``progress.jsonl`` (events the job appends) and the process's
stdout/stderr. The process is ``python -m seqrec_core <kind> --spec spec.json --progress progress.jsonl``: the
dashboard hands the spec over as it is, never as command-line strings. The job claims its run folder when it
starts (an empty folder, locked while it runs: :mod:`seqrec_core.jobs.claim`) and the trained run fills it only
when training finished (written atomically); a job that saves nothing removes it. Stored analyses appear unit by
unit inside their run.
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

from seqrec_core.jobs.spec import DataSpec, JobSpec, TrainSpec, write_spec

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"done": "done", "cancelled": "cancelled", "error": "failed"}
ANALYSIS_TERMINAL = {"analysis_done": "done", "analysis_cancelled": "cancelled", "analysis_error": "failed"}


@dataclass
class Job:
    name: str
    folder: Path
    run_dir: Path
    pid: int
    started: float
    dataset: str
    fingerprint: str
    kind: str = "train"  # "train" | "analyze"
    label: str = ""  # what the job does, in words
    analyze_after: bool = False  # a train job that analyses its run when training is done

    @property
    def progress_path(self) -> Path:
        return self.folder / "progress.jsonl"


def prepare_data(ds, runs_root: Path) -> DataSpec:  # noqa: ANN001 - seqrec_core.data.dataset.Dataset
    """The data part of a spec for a dataset the dashboard holds: its cleaned events saved once per fingerprint as
    Parquet (the job reads them as they are, no second cleaning), and its source for the run to record (an upload
    without a file of its own records that Parquet file)."""
    from seqrec_core.data.dataset import DataSource

    data_dir = runs_root / ".data"
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{ds.fingerprint}.parquet"
    if not path.exists():
        # A temp name per writer: two sessions starting a job on the same data at once must not share one
        # (one would rename the other's half-written file into place, or find it already gone).
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            ds.events.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    source = ds.source if ds.source is not None else DataSource(path=str(path), format="parquet")
    return DataSpec(source=source, prepared=str(path), fingerprint=ds.fingerprint, name=ds.name)


def new_job_name(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


def _claim_job_folder(runs_root: Path, prefix: str, runs_too: bool) -> tuple[str, Path]:
    """A job name no other job (or, for a train job, run) has, and its folder, created atomically (mkdir fails if
    it exists), so two sessions starting the same work in the same second get two jobs instead of an error."""
    base = new_job_name(prefix)
    (runs_root / ".jobs").mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        name = base if n == 1 else f"{base}-{n}"
        if runs_too and (runs_root / name).exists():
            continue
        try:
            (runs_root / ".jobs" / name).mkdir()
        except FileExistsError:
            continue
        return name, runs_root / ".jobs" / name
    raise RuntimeError(f"no free job name under {runs_root} for {base}")


def claim_run_folder(runs_root: Path, family: str) -> tuple[str, Path]:
    """A new run name for a train job and its job folder (the job claims the run folder itself when it starts)."""
    return _claim_job_folder(runs_root, family, runs_too=True)


def start_job(spec: JobSpec, runs_root: Path, *, name: str | None = None, folder: Path | None = None,
              dataset: str = "", fingerprint: str = "", label: str = "") -> Job:
    """Start ``spec`` as ``python -m seqrec_core <kind> --spec ...`` in the background and return its job.

    ``name``/``folder``: a job folder already claimed (train jobs claim theirs with the run name); else one is
    claimed here from the run's name."""
    if folder is None or name is None:
        prefix = f"analyze-{Path(spec.run).name}" if spec.KIND == "analyze" else spec.family
        name, folder = _claim_job_folder(runs_root, prefix, runs_too=False)
    spec_path = write_spec(spec, folder / "spec.json")
    cmd = [sys.executable, "-m", "seqrec_core", spec.KIND, "--spec", str(spec_path), "--progress",
           str(folder / "progress.jsonl")]
    with open(folder / "stdout.json", "wb") as out, open(folder / "stderr.log", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=PROJECT_ROOT, start_new_session=True)
    run_dir = Path(spec.out if isinstance(spec, TrainSpec) else spec.run)
    job = Job(name=name, folder=folder, run_dir=run_dir, pid=proc.pid, started=time.time(), dataset=dataset,
              fingerprint=fingerprint, kind=spec.KIND, label=label,
              analyze_after=isinstance(spec, TrainSpec) and spec.analyze is not None)
    (folder / "job.json").write_text(json.dumps({**asdict(job), "folder": str(folder), "run_dir": str(run_dir),
                                                 "command": cmd}, indent=1))
    return job


def load_job(folder: Path) -> Job | None:
    try:
        obj = json.loads((folder / "job.json").read_text())
        return Job(name=obj["name"], folder=Path(obj["folder"]), run_dir=Path(obj["run_dir"]), pid=int(obj["pid"]),
                   started=float(obj["started"]), dataset=obj["dataset"], fingerprint=obj["fingerprint"],
                   kind=str(obj.get("kind", "train")), label=str(obj.get("label", "")),
                   analyze_after=bool(obj.get("analyze_after", False)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_jobs(runs_root: Path, kind: str | None = None) -> list[Job]:
    """Every job folder (of one ``kind`` if given), newest first."""
    root = runs_root / ".jobs"
    jobs = [load_job(p) for p in root.iterdir() if p.is_dir()] if root.exists() else []
    return sorted((j for j in jobs if j is not None and (kind is None or j.kind == kind)),
                  key=lambda j: j.started, reverse=True)


def read_events(job: Job) -> list[dict]:
    """Progress events so far (a line being written right now is skipped until complete)."""
    if not job.progress_path.exists():
        return []
    events = []
    for line in job.progress_path.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
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
    """'running', 'analysing' (a train job analysing its saved run), 'done', 'cancelled' or 'failed'."""
    names = [e.get("event") for e in events]
    trained = "done" in names
    if job.analyze_after and trained:  # training ended; the same process now analyses the run
        last = next((ANALYSIS_TERMINAL[n] for n in reversed(names) if n in ANALYSIS_TERMINAL), None)
        if last is not None:
            return "done"  # an analysis that failed or was cancelled does not undo a saved run
        return "analysing" if is_alive(job) else "done"
    last = next((TERMINAL[n] for n in reversed(names) if n in TERMINAL), None)
    if last is not None:
        return last
    if is_alive(job):
        return "running"
    if job.kind == "train":
        return "done" if (job.run_dir / "config.json").exists() else "failed"
    return "failed"


def error_message(job: Job, events: list[dict]) -> str:
    for event in reversed(events):
        if event.get("event") in ("error", "analysis_error"):
            return str(event.get("message"))
    killed = exit_info(job).get("signal")
    if killed is not None:
        try:
            name = signal.Signals(killed).name
        except ValueError:
            name = f"signal {killed}"
        what = ("runs are saved only when complete, so nothing was saved" if job.kind == "train"
                else "the analyses finished before it are stored")
        return f"the {job.kind} process was stopped by {name} before it finished (out of memory, or killed); {what}"
    stderr = job.folder / "stderr.log"
    lines = stderr.read_text(errors="replace").strip().splitlines() if stderr.exists() else []
    return lines[-1] if lines else f"the {job.kind} process ended without a result"


def cancel(job: Job) -> None:
    """Ask the job to stop after its current step; training keeps the best checkpoint so far, an analysis keeps
    the parts it finished."""
    try:
        os.kill(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def analysis_progress(events: list[dict]) -> dict:
    """Where an analysis stands, for a progress bar: unit index and total, its label, done/total within it, and
    the ``share`` of the whole job done."""
    state = {"index": 0, "total": 0, "label": "", "done": 0, "of": 0}
    for event in events:
        name = event.get("event")
        if name == "analysis_start":
            state["total"] = len(event.get("units") or [])
        elif name == "analysis_unit":
            state.update(index=int(event.get("index", 0)), label=str(event.get("label", "")), done=0, of=0)
            state["total"] = int(event.get("total", state["total"]))
        elif name == "analysis_progress":
            state.update(done=int(event.get("done", 0)), of=int(event.get("total", 0)))
    within = state["done"] / state["of"] if state["of"] else 0.0
    state["share"] = min(max((max(state["index"], 1) - 1 + within) / max(state["total"], 1), 0.0), 1.0)
    return state
