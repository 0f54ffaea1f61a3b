"""Options and helpers every command shares, so each flag means the same thing everywhere."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speclearn.progress import console, is_quiet, set_quiet

SpectraOption = Annotated[Path, typer.Option("--spectra", help="Spectra file (CSV: id + one column per axis value).")]
OutOption = Annotated[Path, typer.Option("--out", help="Output path (written atomically).")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite/--no-overwrite", help="Replace an existing output.")]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda or auto (CUDA when available).")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for every random step.")]
AxisOption = Annotated[str | None, typer.Option("--axis", help="START:STOP axis for an .npy cube without sidecar.")]
SchedulerOption = Annotated[str | None, typer.Option(
    "--scheduler", help="Run chunk by chunk on a dask.distributed cluster: a scheduler address "
                        "(tcp://host:8786), or local:N to start N local workers (default: threads here).")]
QuietOption = Annotated[bool, typer.Option("--quiet/--no-quiet", "-q", callback=lambda value: set_quiet(value),
                                           help="No progress bars or status lines (errors still print).")]


def say(message: str) -> None:
    """Status lines go to stderr so stdout stays clean for data; `--quiet` silences them."""
    if not is_quiet():
        console.print(message)
