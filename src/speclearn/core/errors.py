"""One exception type for every problem with a user's input.

The CLI turns it into a one-line message and exit code 2; the Python API lets it propagate.
"""
from __future__ import annotations

from pathlib import Path


def shorten(value: object, limit: int = 40) -> str:
    """`repr(value)`, cut to `limit` characters: error messages never echo a whole cell or file."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 5]}...{text[-1]} ({len(text)} chars)"


class InputError(ValueError):
    """Bad user input, located as precisely as we can: file, row, column."""

    def __init__(self, problem: str, *, file: str | Path | None = None,
                 row: int | str | None = None, column: int | str | None = None):
        self.problem = problem
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{': '.join([', '.join(where)] if where else [])}{': ' if where else ''}{self.problem}"


def existing(path: str | Path) -> Path:
    """`path` as a Path, refused with "file not found" when nothing is there."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    return path


#: Files the running command has read, so an unexpected failure can still name them.
FILES_READ: list[str] = []


def note_read(path: str | Path) -> None:
    """Record that the running command read `path` (see `FILES_READ`)."""
    if str(path) not in FILES_READ:
        FILES_READ.append(str(path))
