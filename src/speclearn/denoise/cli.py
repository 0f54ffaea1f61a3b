"""`speclearn denoise train|predict`: fit a denoiser on spectra (+ weak labels or clean pairs), apply it."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speclearn.cli.common import (BudgetOption, DeviceOption, OutOption, OverwriteOption, QuietOption, ReportOption,
                                  SchedulerOption, SeedOption, SpectraOption, check_domain, check_outputs, say,
                                  write_report)
from speclearn.core.errors import InputError
from speclearn.io import read_spectra, write_spectra

app = typer.Typer(no_args_is_help=True, help="Denoise spectra: SpectroscopyNet (weak labels), supervised, classical.")

METHODS = ("auto", "noise2noise", "blindspot", "siamese", "supervised", "classical")


def read_groups(path: Path, spectra, minimum: int = 3) -> list[str]:
    """The first column of a groups table (`id,group`), in the order of the spectra; at least
    `minimum` distinct groups."""
    from speclearn.models.selection import read_groups as read_group_column

    groups = read_group_column(path, spectra)
    n = len(set(groups))
    if n < minimum:
        raise InputError(f"{n} distinct group(s) in {path}; triplets need at least {minimum} targets", file=path)
    return groups


@app.command("train")
def train_command(
    spectra: SpectraOption,
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    groups: Annotated[Path | None, typer.Option("--groups", help="CSV id,group: which spectra share a target.")] = None,
    clean: Annotated[Path | None, typer.Option("--clean", help="Clean spectra (same ids and axis) for supervised.")] = None,
    method: Annotated[str, typer.Option("--method", help="auto (identity, Savitzky-Golay, PCA and the networks the "
                                                         "data allow, ranked by held-out replicate agreement with "
                                                         "--groups, else by a blind-spot loss) | noise2noise "
                                                         "(replicates, --groups) | blindspot (single spectra) | "
                                                         "siamese | supervised | "
                                                         "classical.")] = "auto",
    budget_s: BudgetOption = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Training epochs (network methods).")] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Fit a denoiser and save it to --out (a model folder)."""
    from speclearn.models import methods

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if method in ("siamese", "noise2noise") and groups is None:
        raise InputError(f"--method {method} needs --groups GROUPS.csv (which spectra come from the same target)")
    if method == "supervised" and clean is None:
        raise InputError("--method supervised needs --clean CLEAN.csv (clean spectra paired with --spectra)")
    check_outputs(out, report=report, overwrite=overwrite, inputs=[spectra, groups, clean])
    data = read_spectra(spectra)
    labels = (read_groups(groups, data, minimum=2 if method == "auto" else 3)
              if groups is not None and method in ("siamese", "noise2noise", "auto") else None)
    clean_data = None
    if clean is not None and method in ("supervised", "auto"):
        clean_data = read_spectra(clean)
        clean_data.check_axis_matches(data.axis_spec(), what=f"the spectra {spectra}")
        clean_data = clean_data.select(data.ids)  # same ids as the spectra, in their order
    network = {"device": device, **({} if epochs is None else {"epochs": epochs})}
    if method == "auto":
        from speclearn.denoise.auto import select_denoiser
        from speclearn.models.selection import show

        estimator, ranking = select_denoiser(data, groups=labels, clean=clean_data, seed=seed, budget_s=budget_s,
                                             network_params=network)
        show(ranking)
        method = ranking.winner
    else:
        params = {"seed": seed} | ({} if method == "classical" else {**network, "progress": True})
        estimator = methods("denoise")[method](**params).fit(data, groups=labels, clean=clean_data)
    estimator.save(out, overwrite=overwrite)
    say(f"wrote {method} denoiser to {out} ({data.n_spectra} spectra, {data.n_channels} channels)")
    write_report(report, "denoise train", inputs={"spectra": spectra, "groups": groups, "clean": clean,
                                                  "method": method, "seed": seed}, spectra=data, model=out)


@app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Option("--model", help="Model folder from `denoise train`.")],
    spectra: SpectraOption,
    out: OutOption,
    noise: Annotated[Path | None, typer.Option("--noise", help="Also write the removed / noise component.")] = None,
    device: DeviceOption = "auto",
    scheduler: SchedulerOption = None,
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Write the cleaned spectra (and optionally the noise component); Zarr/HDF5 input streams chunk by chunk."""
    from speclearn.denoise import Denoiser
    from speclearn.distributed import map_spectra, scheduler as cluster
    from speclearn.models import load, use_device

    check_outputs(out, noise, report=report, overwrite=overwrite, inputs=[spectra, model])
    estimator = use_device(load(model, Denoiser), device)
    data = read_spectra(spectra, expect=estimator.axis_)
    check_domain(estimator, data, consequence="the denoiser learned other spectra and may distort these")
    with cluster(scheduler):
        cleaned = map_spectra(data, estimator.transform)
        write_spectra(cleaned, out, overwrite=overwrite)
        if noise is not None:
            write_spectra(map_spectra(data, estimator.noise), noise, overwrite=overwrite)
        say(f"wrote {out}" + (f" and {noise}" if noise is not None else ""))
        write_report(report, "denoise predict", inputs={"model": model, "spectra": spectra}, spectra=data,
                     output=cleaned, model=model)
