"""Options and helpers every command shares, so each flag means the same thing everywhere."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)

SpectraOption = Annotated[Path, typer.Option("--spectra", help="Spectra file (CSV: id + one column per axis value).")]
OutOption = Annotated[Path, typer.Option("--out", help="Output path (written atomically).")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda or auto (CUDA when available).")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for every random step.")]
AxisOption = Annotated[str | None, typer.Option("--axis", help="START:STOP axis for an .npy cube without sidecar.")]


def say(message: str) -> None:
    """Status lines go to stderr so stdout stays clean for data."""
    console.print(message)
