"""Options and helpers every command shares, so each flag means the same thing everywhere."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from speclearn.progress import console, is_quiet, set_quiet

SpectraOption = Annotated[Path, typer.Option("--spectra", help="Spectra file (CSV: id + one column per axis value).")]
OutOption = Annotated[Path, typer.Option("--out", help="Output path (written atomically).")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite/--no-overwrite", metavar="", help="Replace an existing output.")]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda or auto (CUDA when available).")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for every random step.")]
AxisOption = Annotated[str | None, typer.Option("--axis", help="START:STOP axis for an .npy cube without sidecar.")]
SchedulerOption = Annotated[str | None, typer.Option(
    "--scheduler", help="Run chunk by chunk on a dask.distributed cluster: a scheduler address "
                        "(tcp://host:8786), or local:N to start N local workers (default: threads here).")]
QuietOption = Annotated[bool, typer.Option("--quiet/--no-quiet", metavar="", callback=lambda value: set_quiet(value),
                                           help="No progress bars or status lines (errors still print).")]
BudgetOption = Annotated[float | None, typer.Option(
    "--budget-s", min=1.0, help="Optional time budget of --method auto (s); with one, the choice depends on "
                                "machine speed.")]
ReportOption = Annotated[Path | None, typer.Option(
    "--report", help="Also write a self-contained HTML report (inputs, model, results, figures embedded).")]

#: Old command spellings, still accepted (hidden) with one deprecation line: (system, old) -> new.
RENAMED_COMMANDS = {("denoise", "apply"): "predict", ("transfer", "apply"): "predict", ("unmix", "apply"): "predict"}
#: Systems whose group used to run a job when called with options only: system -> the command it ran.
GROUP_COMMANDS = {"unmix": "train", "qa": "predict", "generate": "predict"}
#: Old option spellings per (system, command): old -> new.
_TRANSFER = {"--primary": "--targets", "--secondary": "--spectra"}
RENAMED_OPTIONS = {("unmix", "train"): {"--cube": "--spectra"}, ("unmix", "predict"): {"--cube": "--spectra"},
                   ("classify", "train"): {"--labels": "--targets"}, ("transfer", "train"): _TRANSFER,
                   ("transfer", "add-secondary"): _TRANSFER, ("transfer", "predict"): {"--secondary": "--name"}}


def say(message: str) -> None:
    """Status lines go to stderr so stdout stays clean for data; `--quiet` silences them."""
    if not is_quiet():
        console.print(message)


def check_report(report: Path | None, *, overwrite: bool, inputs: list) -> None:
    """Refuse a --report path that exists (without --overwrite) or is an input, before any work."""
    if report is not None:
        from speclearn.io import check_output
        check_output(report, overwrite=overwrite, inputs=inputs)


def check_outputs(*outputs: Path | None, report: Path | None, overwrite: bool, inputs: list) -> None:
    """Refuse, before any work, each output asked for (None: not asked for) that exists (without
    --overwrite) or would destroy an input or an earlier output, then the --report path likewise."""
    from speclearn.io import check_output

    for i, path in enumerate(outputs):
        if path is not None:
            check_output(path, overwrite=overwrite, inputs=[*inputs, *outputs[:i]])
    check_report(report, overwrite=overwrite, inputs=[*inputs, *outputs])


def write_report(report: Path | None, title: str, **parts) -> None:
    """Write the --report HTML (see `speclearn.report.command_report`) when one was asked for."""
    if report is not None:
        from speclearn.report import command_report
        command_report(report, title, overwrite=True, **parts)
        say(f"wrote the report {report}")


def upgrade_argv(argv: list[str]) -> list[str]:
    """`argv` with old command and option spellings replaced by the current ones (one stderr line
    names what changed), so scripts written for earlier versions keep working."""
    if not argv or argv[0] not in {system for system, _ in [*RENAMED_OPTIONS, *RENAMED_COMMANDS]} | set(GROUP_COMMANDS):
        return argv
    system, rest, changed = argv[0], list(argv[1:]), []
    if rest and rest[0] == "--help":
        return argv
    if system in GROUP_COMMANDS and (not rest or rest[0].startswith("-")):
        if rest:
            changed.append((f"speclearn {system} --...", f"speclearn {system} {GROUP_COMMANDS[system]} --..."))
            rest.insert(0, GROUP_COMMANDS[system])
    elif rest and (system, rest[0]) in RENAMED_COMMANDS:
        new = RENAMED_COMMANDS[system, rest[0]]
        changed.append((f"{system} {rest[0]}", f"{system} {new}"))
        rest[0] = new
    options = RENAMED_OPTIONS.get((system, rest[0] if rest else ""), {})
    for i, token in enumerate(rest):
        name, eq, value = token.partition("=")
        if name in options:
            changed.append((name, options[name]))
            rest[i] = options[name] + eq + value
    if changed:
        print("speclearn: deprecated: " + "; ".join(f"{old} is now {new}" for old, new in changed)
              + " (the old spelling will be removed)", file=sys.stderr)
    return [system, *rest]


def warn_outside_domain(distance, ids, *, where: str = "",
                        consequence: str = "their predictions are extrapolations, not covered by any interval") -> None:
    """A warning line naming the spectra outside a model's training spectra: `distance` per spectrum
    (`SpectralEstimator.domain_distance`; None or NaN for a model without a domain), what that means for
    the command's output, `where` the distances are written."""
    import numpy as np

    from speclearn.models.domain import OUTSIDE
    if distance is None:
        return
    rows = np.flatnonzero(np.asarray(distance, float) > OUTSIDE)
    if not rows.size:
        return
    say(f"[yellow]warning:[/] {len(rows)} of {len(ids)} spectra are unlike the training spectra (first: "
        f"{ids[rows[0]]}, {distance[rows[0]]:.3g}x the spread the training spectra reach): another instrument, "
        f"preprocessing or sample type? {consequence[:1].upper()}{consequence[1:]}{where}")


def check_domain(model, spectra, *, consequence: str) -> None:
    """`warn_outside_domain` for at most `models.domain.SAMPLE` evenly spaced spectra of the input."""
    from speclearn.models.domain import SAMPLE
    sample = spectra.evenly(SAMPLE)
    warn_outside_domain(model.domain_distance(sample), sample.ids, consequence=consequence,
                        where="" if sample is spectra else f" ({sample.n_spectra} of {spectra.n_spectra} checked)")
