"""Every output goes through here: written atomically, never over a user's data.

One rule for every command (`check_output`):
- an existing output is replaced only with `overwrite=True`;
- a folder is replaced only if speclearn wrote it (it holds the marker file `MARKER`) and it holds
  the same kind of output (a model folder only by a model, a Zarr store only by a Zarr store);
- never an input, a folder holding an input, or anything inside an input folder (the model in use).

Replacement is a rename under a lock on the parent folder, so concurrent writers of one path never
fail half-way; temporary folders left by a killed process are removed by the next writer. New files
and folders get the permissions the umask allows, as any other program's would.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from speclearn.core.errors import InputError

#: Marker file in every folder speclearn writes: `{"written_by": "speclearn", "kind": ...}`.
MARKER = ".speclearn-output.json"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-")


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def written_kind(folder: Path) -> str | None:
    """The kind of output speclearn recorded in `folder`, or None if speclearn did not write it."""
    marker = folder / MARKER
    if not marker.is_file() or marker.is_symlink():
        return None
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return str(record.get("kind")) if isinstance(record, dict) and record.get("written_by") == "speclearn" else None


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output(path: str | Path, *, overwrite: bool = False, inputs: Sequence[str | Path | None] = (),
                 directory: bool | None = None, kind: str | None = None) -> Path:
    """Refuse an output path that would destroy anything but an earlier speclearn output.

    directory: the output is a folder (model, simulation, Zarr store) of `kind` (True), a file
    (False), or either (None: a folder is then still replaced only if speclearn wrote it).
    inputs: the command's input files/folders; the output may not be, hold or sit inside one.
    """
    path = Path(path)
    target = path.resolve()
    if target == Path(target.anchor) or not path.name or path.name in (".", ".."):
        raise InputError("output must be a new file or folder name, not the current or root folder", file=path)
    for source in inputs:
        if source is None or not Path(source).exists():
            continue
        source_path = Path(source).resolve()
        if target == source_path:
            raise InputError("output would overwrite an input; choose another path", file=path)
        if _inside(source_path, target):
            raise InputError(f"output folder would replace the folder holding the input {source}; "
                             "choose another path", file=path)
        if source_path.is_dir() and _inside(target, source_path):
            raise InputError(f"output is inside the input folder {source} (the model in use?); "
                             "choose another path", file=path)
    try:  # one lstat: a concurrent writer may swap the path between two separate checks
        status = os.lstat(path)
    except FileNotFoundError:
        status = None
    if status is not None:
        if stat.S_ISLNK(status.st_mode):
            raise InputError("output is a symbolic link; speclearn replaces only real files it can see",
                             file=path)
        is_dir = stat.S_ISDIR(status.st_mode)
        if directory is False and is_dir:
            raise InputError("is a folder; this output is a file, give a file name", file=path)
        if directory and not is_dir:
            raise InputError("is a file; this output is a folder, give a folder name", file=path)
        if not overwrite:
            raise InputError("output already exists; pass --overwrite to replace it", file=path)
        if is_dir:
            found = written_kind(path)
            if found is None and path.exists():
                raise InputError("folder was not written by speclearn; --overwrite replaces only files and "
                                 "folders speclearn wrote (choose a new name or remove it yourself)", file=path)
            if found is not None and kind is not None and found != kind:
                raise InputError(f"folder holds a speclearn {found}, not a {kind}; refusing to replace it",
                                 file=path)
    if not path.parent.is_dir():
        raise InputError(f"output folder {path.parent} does not exist", file=path)
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(path: Path) -> None:
    """Delete temporary siblings of `path` left by a speclearn process that no longer runs."""
    with contextlib.suppress(OSError):
        for sibling in path.parent.iterdir():
            match = _LEFTOVER.match(sibling.name)
            if match and match["name"] == path.name and not _alive(int(match["pid"])):
                _remove(sibling)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialise replacements in one folder (flock on the folder itself: no lock file left behind)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False, directory: bool = False,
                kind: str = "folder") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    With `directory=True` the temporary path is a fresh folder (model folders, Zarr stores); it gets
    the marker of a speclearn output of `kind` once the writing is done.
    """
    path = Path(path)
    with _folder_lock(path.parent) if path.parent.is_dir() else contextlib.nullcontext():
        # under the lock: a concurrent writer never shows a half-replaced folder to this check
        path = check_output(path, overwrite=overwrite, directory=directory, kind=kind if directory else None)
    remove_leftovers(path)
    prefix = f".{path.name}.tmp-{os.getpid()}-"
    mask = _umask()
    try:
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
            tmp.chmod(0o777 & ~mask)
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
            os.close(fd)
            tmp = Path(name)
            tmp.chmod(0o666 & ~mask)
    except OSError as err:
        raise InputError(f"cannot write here ({err.strerror or err})", file=path) from None
    old = None
    try:
        yield tmp
        if directory:  # marked after the writing (zarr's mode="w" empties the folder it is given)
            (tmp / MARKER).write_text(json.dumps({"written_by": "speclearn", "kind": kind}))
            # libraries writing inside (safetensors, zarr) may create private files
            for root, folders, files in os.walk(tmp):
                for name in folders:
                    os.chmod(os.path.join(root, name), 0o777 & ~mask)
                for name in files:
                    os.chmod(os.path.join(root, name), 0o666 & ~mask)
        with _folder_lock(path.parent):
            check_output(path, overwrite=overwrite, directory=directory, kind=kind if directory else None)
            if directory and path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}-{tmp.name.rsplit('-', 1)[-1]}")
                path.rename(old)
            os.replace(tmp, path)
    except OSError as err:
        raise InputError(f"cannot write here ({err.strerror or err})", file=path) from None
    finally:
        for leftover in (tmp, old):
            if leftover is not None and (leftover.exists() or leftover.is_symlink()):
                _remove(leftover)


def write_result(path: str | Path, content: str | dict) -> Path:
    """A benchmark result written atomically (replacing the last run's): a dict as indented JSON (numpy
    scalars as numbers, anything else as text), a string as it is."""
    import numpy as np

    def number_or_text(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        return value.item() if isinstance(value, np.generic) else str(value)
    text = content if isinstance(content, str) else json.dumps(content, indent=1, default=number_or_text)
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text)
    return path


def markdown_table(rows: Iterable, columns: dict[str, str | Callable[[Any], object]]) -> list[str]:
    """The lines of a markdown results table: one column per `columns` entry, header -> a `str.format`
    template filled from each row (a mapping) or a function of the row."""
    cells = [[cell(row) if callable(cell) else cell.format_map(row) for cell in columns.values()] for row in rows]
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(map(str, row)) + " |" for row in cells)]
