"""Claiming a train job's run folder before any data is read or a model trained.

Why: every problem with the place (a file there, a path under a file, a dangling link, no permission, a name too
long for the save's temp folders) would otherwise show only when the trained model is saved, after minutes of
training, and two jobs given the same folder would both train and one would silently replace the other's run.
The claim makes the folder exclusively, holds it with an exclusive ``flock`` while the job runs (the kernel drops
the lock when the process dies, so a killed job leaves no lock behind and at most an empty folder, which the next
job may take) and writes once where the save will write. :func:`seqrec_core.run_save.save_run` then renames the
finished run onto the claimed (empty) folder in one step.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from seqrec_core.data.roles import short
from seqrec_core.errors import InputError
from seqrec_core.run_save import SAVE_NAME_OVERHEAD, clean_stale_temp, is_run_folder, max_run_name_bytes, writer_id

__all__ = ["claim_run_dir"]

log = logging.getLogger(__name__)
_HELD: dict[str, int] = {}  # run folders this process has claimed -> the thread that holds the claim
_HELD_LOCK = threading.Lock()


@dataclass
class _Claim:
    path: Path
    fd: int | None = None  # the folder, open and flock()ed while the job runs (None where locks are unsupported)
    created: list[Path] = field(default_factory=list)  # folders this claim made, outermost first

    def identity(self) -> tuple[int, int] | None:
        if self.fd is None:
            return None
        st = os.fstat(self.fd)
        return st.st_dev, st.st_ino


@contextmanager
def claim_run_dir(out_dir: str | Path, *, replace_run: bool = False) -> Iterator[Path]:
    """Own the run folder ``out_dir`` for a whole train job; refused with one :class:`InputError` line.

    The folder is made with ``os.mkdir`` (no exist_ok); an existing empty folder is taken as it is, an existing run
    only with ``replace_run`` (the library's ``run_training_job`` replaces runs, the CLI never does). A second job
    on the same folder is refused naming the holder's pid. On the way out, a folder the claim made that is still
    empty (the job was refused, failed or was cancelled) is removed with any parent folders it made; a saved run
    is left alone (the save renamed a new folder into place). Re-entrant within a thread: the spec job claims,
    the train job inside it finds the claim its own."""
    out = Path(out_dir)
    key = os.path.abspath(out)
    with _HELD_LOCK:
        holder = _HELD.get(key)
        if holder is None:
            _HELD[key] = threading.get_ident()
    if holder == threading.get_ident():
        yield out
        return
    if holder is not None:
        raise InputError(f"the run folder '{short(out, 120)}' is being written by another job (pid {os.getpid()}); "
                         "wait for it to finish or choose another folder (--out)")
    try:
        claim = _claim(out, replace_run)
    except BaseException:
        with _HELD_LOCK:
            _HELD.pop(key, None)
        raise
    try:
        yield out
    finally:
        with _HELD_LOCK:
            _HELD.pop(key, None)
        _release(claim)


def _claim(out: Path, replace_run: bool) -> _Claim:
    shown = short(out, 120)
    if out.name in ("", ".", ".."):
        raise InputError(f"'{shown}' does not name a new folder for the run; give a path such as runs/my-run (--out)")
    size, limit = len(os.fsencode(out.name)), max_run_name_bytes(_nearest_folder(out.parent))
    if size > limit:
        raise InputError(f"the run folder name '{short(out.name, 60)}' is {size} bytes; at most {limit} fit (a save "
                         f"adds {SAVE_NAME_OVERHEAD} bytes for its temp folders); choose a shorter name (--out)")
    if out.is_symlink():
        target = "a missing place" if not out.exists() else f"'{short(os.readlink(out), 80)}'"
        raise InputError(f"the run folder '{shown}' is a symbolic link to {target}; give the path of a new folder "
                         "itself (--out)")
    if out.parent.is_dir():
        clean_stale_temp(out.parent)  # a run an interrupted save set aside comes back before the place is judged
    claim = _Claim(path=out)
    try:
        claim.created = _make_parents(out.parent)
        for _attempt in range(3):
            try:
                os.mkdir(out)
                claim.created.append(out)
            except FileExistsError:
                _check_existing(out, replace_run)
            except OSError as err:
                raise _cannot_create(out, err) from None
            if _lock(claim, shown):
                break
            claim.created = [p for p in claim.created if p != out]  # it vanished or changed hands: look again
        else:
            raise InputError(f"the run folder '{shown}' is being written by another job; wait for it to finish or "
                             "choose another folder (--out)")
        _check_existing(out, replace_run)  # still empty (or a run) now that it is ours
        _probe_writes(out, shown)
    except BaseException:
        _release(claim)
        raise
    return claim


def _nearest_folder(path: Path) -> Path:
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def _make_parents(parent: Path) -> list[Path]:
    """Create the missing folders above the run folder (a save always did); returns those it made."""
    missing = []
    while not os.path.lexists(parent) and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    made = []
    try:
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
                made.append(folder)
            except FileExistsError:
                continue  # another job made it at the same moment
            except OSError as err:
                raise _cannot_create(folder, err) from None
    except BaseException:
        _remove_empty(made)
        raise
    return made


def _cannot_create(folder: Path, err: OSError) -> InputError:
    """The one line for a folder that could not be made, naming the part of the path that is in the way."""
    blocker = next((p for p in folder.parents if os.path.lexists(p) and not p.is_dir()), None)
    if blocker is not None:
        what = "a symbolic link to a missing place" if blocker.is_symlink() else "a file"
        return InputError(f"cannot create '{short(folder, 120)}' for the run: '{short(blocker, 120)}' is {what}, not "
                          "a folder; choose a path inside a folder (--out)")
    if isinstance(err, PermissionError):
        return InputError(f"cannot create '{short(folder, 120)}' for the run: permission denied in "
                          f"'{short(folder.parent, 120)}'; choose a folder you can write to (--out)")
    return InputError(f"cannot create '{short(folder, 120)}' for the run ({err.strerror or err}); choose another place "
                      "(--out)")


def _check_existing(out: Path, replace_run: bool) -> None:
    shown = short(out, 120)
    if not out.is_dir():
        raise InputError(f"the run folder '{shown}' exists and is a file; choose a new folder for the run (--out)")
    try:
        empty = not any(out.iterdir())
    except OSError as err:
        raise InputError(f"cannot read the run folder '{shown}' ({err.strerror}); choose a new folder "
                         "(--out)") from None
    if not empty and not (replace_run and is_run_folder(out)):
        raise InputError(f"the run folder '{shown}' exists and is not empty; choose a new folder (--out)")


def _lock(claim: _Claim, shown: str) -> bool:
    """Hold the folder with an exclusive flock; False when it vanished or was replaced before it was locked."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the exclusive mkdir is the whole claim
        return True
    try:
        fd = os.open(claim.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        return False  # its last job removed it just now
    except OSError as err:
        raise InputError(f"cannot open the run folder '{shown}' ({err.strerror}); choose another folder "
                         "(--out)") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _lock_holder(os.fstat(fd))
        os.close(fd)
        claim.created = [p for p in claim.created if p != claim.path]  # made here, but the other job's now
        by = f"another job (pid {pid})" if pid else "another job"
        raise InputError(f"the run folder '{shown}' is being written by {by}; wait for it to finish or choose "
                         "another folder (--out)") from None
    except OSError as err:  # a file system without locks (some network mounts): the exclusive mkdir is the claim
        log.debug("cannot lock %s (%s); relying on the exclusive mkdir", claim.path, err)
    claim.fd = fd
    try:
        st = os.stat(claim.path, follow_symlinks=False)
    except OSError:
        st = None
    if st is None or (st.st_dev, st.st_ino) != claim.identity():
        os.close(fd)
        claim.fd = None
        return False
    return True


def _lock_holder(st: os.stat_result) -> int | None:
    """The pid holding a lock on this folder, from Linux's /proc/locks (None where that cannot be read)."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        fields = line.split()  # "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF" ("1: -> ..." for a waiter)
        if len(fields) < 6 or fields[1] == "->":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == want and int(fields[4]) > 0:
                return int(fields[4])
        except ValueError:
            continue
    return None


def _probe_writes(out: Path, shown: str) -> None:
    """Write once where the save will: a file in the folder, and a temp folder beside it under the save's name."""
    probe = out / f".write-probe-{writer_id()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{writer_id()}-", dir=out.parent))
    except OSError as err:
        raise InputError(f"cannot write the run folder '{shown}' ({err.strerror or err}); choose a folder you can "
                         "write to (--out)") from None
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass


def _release(claim: _Claim) -> None:
    """Remove what the claim made if the job left it empty, then drop the lock."""
    try:
        made_out = bool(claim.created) and claim.created[-1] == claim.path
        if made_out:
            try:
                st = os.stat(claim.path, follow_symlinks=False)
                ours = claim.fd is None or (st.st_dev, st.st_ino) == claim.identity()
                if ours and not any(claim.path.iterdir()):
                    os.rmdir(claim.path)
            except OSError:
                pass  # gone already, or a saved run took its place
        _remove_empty([p for p in claim.created if p != claim.path])
    finally:
        if claim.fd is not None:
            os.close(claim.fd)
            claim.fd = None


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a claim made, innermost first, while they are empty."""
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:
            return
