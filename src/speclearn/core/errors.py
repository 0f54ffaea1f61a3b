"""One exception type for every problem with a user's input.

The CLI turns it into a one-line message and exit code 2; the Python API lets it propagate.
"""
from __future__ import annotations

from pathlib import Path


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
