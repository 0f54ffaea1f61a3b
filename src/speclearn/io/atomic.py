"""Atomic writes: outputs appear whole or not at all, and existing files survive by default."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from speclearn.core.errors import InputError


def check_output(path: str | Path, *, overwrite: bool = False,
                 inputs: Sequence[str | Path] = ()) -> Path:
    """Refuse to write over an input, or over an existing output unless `overwrite`."""
    path = Path(path)
    for source in inputs:
        if source is not None and Path(source).exists() and path.exists() \
                and path.resolve() == Path(source).resolve():
            raise InputError("output would overwrite an input file; choose another path", file=path)
    if path.exists() and not overwrite:
        raise InputError("output already exists; pass --overwrite to replace it", file=path)
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist", file=path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    With `directory=True` the temporary path is a fresh folder (model folders, Zarr stores).
    """
    path = check_output(path, overwrite=overwrite)
    prefix = f".{path.name}.tmp-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if directory and path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
