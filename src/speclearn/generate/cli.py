"""`speclearn generate predict` (generate spectra from a trained cVAE) and `speclearn generate train`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speclearn.cli.common import (DeviceOption, OverwriteOption, QuietOption, ReportOption, SeedOption, SpectraOption,
                                  check_outputs, say, write_report)
from speclearn.core.errors import InputError
from speclearn.io import read_spectra, read_table_csv, write_spectra, write_table_csv

app = typer.Typer(no_args_is_help=True,
                  help="Generate spectra for requested compositions with a conditional VAE (`generate train` fits one).")


@app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Option("--model", help="Model folder from `generate train`.")],
    targets: Annotated[Path, typer.Option("--targets", help="The wanted compositions, CSV: id + the training "
                                                            "target columns.")],
    out: Annotated[Path, typer.Option("--out", help="Generated spectra file.")],
    n_per_row: Annotated[int, typer.Option("--n-per-row", help="Spectra generated per wanted row.")] = 1,
    targets_out: Annotated[Path | None, typer.Option("--targets-out", help="Also write the conditions of the "
                                                     "generated spectra (id + target columns).")] = None,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Generate spectra for the wanted compositions (or classes) in --targets."""
    from speclearn.generate.cvae import ConditionalVAE
    from speclearn.models import load, use_device

    check_outputs(out, targets_out, report=report, overwrite=overwrite, inputs=[targets, model])
    vae = use_device(load(model, ConditionalVAE), device)
    wanted = read_table_csv(targets)
    spectra, conditions = vae.generate(wanted, n_per_row=n_per_row, seed=seed, file=targets)
    write_spectra(spectra, out, overwrite=overwrite)
    if targets_out is not None:
        write_table_csv(conditions, targets_out, overwrite=overwrite)
    say(f"wrote {spectra.n_spectra} generated spectra to {out}")
    write_report(report, "generate predict", inputs={"model": model, "targets": targets, "n per row": n_per_row,
                                                     "seed": seed}, spectra=spectra, table=conditions, model=model)


@app.command("train")
def train_command(
    spectra: SpectraOption,
    targets: Annotated[Path, typer.Option("--targets", help="CSV: id + composition columns (or one class column).")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 300,
    latent_dim: Annotated[int, typer.Option("--latent-dim", help="Size of the latent space.")] = 8,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Fit a conditional VAE on spectra and their compositions (or classes)."""
    from speclearn.generate.cvae import ConditionalVAE

    if epochs < 1 or latent_dim < 1:
        raise InputError("--epochs and --latent-dim must be at least 1")
    check_outputs(out, report=report, overwrite=overwrite, inputs=[spectra, targets])
    data = read_spectra(spectra)
    table = read_table_csv(targets)
    vae = ConditionalVAE(epochs=epochs, latent_dim=latent_dim, seed=seed, device=device, progress=True)
    vae.fit(data, table, file=targets)
    vae.save(out, overwrite=overwrite)
    say(f"wrote cVAE ({vae.condition_kind_}: {', '.join(vae.condition_columns_)}; {data.n_spectra} spectra, "
        f"{data.n_channels} channels) to {out}")
    write_report(report, "generate train", inputs={"spectra": spectra, "targets": targets, "epochs": epochs,
                                                   "seed": seed}, spectra=data, model=out)
