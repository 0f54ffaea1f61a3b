"""`speclearn transfer train | add-secondary | predict`: spectral transfer between instruments."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speclearn.cli.common import (BudgetOption, DeviceOption, OutOption, OverwriteOption, QuietOption, ReportOption,
                                  SchedulerOption, SeedOption, SpectraOption, check_domain, check_outputs, say,
                                  write_report)
from speclearn.core.errors import InputError
from speclearn.io import read_spectra, write_spectra

app = typer.Typer(no_args_is_help=True, help="Transfer spectra from secondary instruments into a primary one's space.")

PrimaryOption = Annotated[Path, typer.Option("--targets", help="Primary-instrument spectra: what the model learns to "
                                                               "produce (paired with --spectra by id).")]
SecondaryOption = Annotated[Path, typer.Option("--spectra", help="Secondary-instrument spectra (paired by id).")]
NameOption = Annotated[str, typer.Option("--name", help="Name of the secondary instrument inside the model.")]
EpochsOption = Annotated[int | None, typer.Option("--epochs", min=1, help="Epochs for the networks (VAE and MLP).")]
WindowOption = Annotated[int, typer.Option("--baseline-window", min=1, help="Rolling-minimum window (channels).")]
SigmaOption = Annotated[float, typer.Option("--baseline-sigma", min=0.0, help="Gaussian smoothing of the baseline.")]
LibraryOption = Annotated[Path | None, typer.Option("--library", help="Unpaired primary-instrument spectra (vae-mlp "
                                                                   "only): the VAE and the prior also learn from them.")]
NETWORK_METHODS = ("vae-mlp", "mlp")


@app.command("train")
def train_command(secondary: SecondaryOption, primary: PrimaryOption, out: OutOption,
                  method: Annotated[str, typer.Option("--method", help="auto (none, ds, pds, pls, knn and the "
                                                              "networks ranked by CV over the pairs), vae-mlp, mlp, "
                                                              "pls, knn, ds, pds or none.")] = "auto",
                  name: NameOption = "secondary", library: LibraryOption = None, epochs: EpochsOption = None,
                  baseline_window: WindowOption = 100,
                  baseline_sigma: SigmaOption = 50.0, device: DeviceOption = "auto", seed: SeedOption = 0,
                  budget_s: BudgetOption = None,
                  report: ReportOption = None, quiet: QuietOption = False,
                  overwrite: OverwriteOption = False) -> None:
    """Fit a transfer model on paired primary/secondary spectra and save it (both axes kept)."""
    from speclearn.models import resolve_device
    from speclearn.transfer import METHODS

    if method != "auto" and method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from auto, {', '.join(METHODS)}")
    if library is not None and method != "vae-mlp":
        raise InputError(f"--library is used by --method vae-mlp only, not {method!r}")
    check_outputs(out, report=report, overwrite=overwrite, inputs=[primary, secondary, *([library] if library else [])])
    inputs = {"spectra (secondary)": secondary, "targets (primary)": primary, "method": method, "seed": seed,
              **({"library": library} if library else {})}
    params = {"seed": seed, "baseline_window": baseline_window, "baseline_sigma": baseline_sigma}
    if method == "auto":
        from speclearn.models.selection import show
        from speclearn.transfer.auto import select_transfer

        resolve_device(device)
        network = {"device": device, **({} if epochs is None else {"epochs": epochs})}
        model, ranking = select_transfer(read_spectra(primary), read_spectra(secondary), name=name, seed=seed,
                                         budget_s=budget_s, shared=params, network=network)
        show(ranking)
        model.save(out, overwrite=overwrite)
        say(f"wrote {out}: auto chose {model.method}, {model.n_train_} training pairs")
        write_report(report, "transfer train", inputs=inputs, spectra=read_spectra(secondary), model=out)
        return
    if method in NETWORK_METHODS:
        resolve_device(device)
        params["device"] = device
        if epochs is not None:
            params.update({"vae_epochs": epochs, "mlp_epochs": epochs} if method == "vae-mlp" else {"epochs": epochs})
    extra = {"library": read_spectra(library)} if library is not None else {}
    model = METHODS[method](**params).fit(read_spectra(primary), read_spectra(secondary), name=name, **extra)
    model.save(out, overwrite=overwrite)
    say(f"wrote {out}: {method} model, {model.n_train_} training pairs, {model.fit_seconds_:.1f} s")
    write_report(report, "transfer train", inputs=inputs, spectra=read_spectra(secondary), model=out)


@app.command("add-secondary")
def add_secondary_command(model: Annotated[Path, typer.Option("--model", help="A saved vae-mlp transfer model.")],
                          secondary: SecondaryOption, primary: PrimaryOption, name: NameOption, out: OutOption,
                          library: LibraryOption = None, epochs: EpochsOption = None, device: DeviceOption = "auto",
                          report: ReportOption = None, quiet: QuietOption = False,
                          overwrite: OverwriteOption = False) -> None:
    """Connect another secondary instrument to a vae-mlp model: trains only its MLP, the VAE is unchanged."""
    from speclearn.models import load, resolve_device
    from speclearn.transfer import TransferModel, VAEMLPTransfer

    inputs = [model, primary, secondary, *([library] if library else [])]
    check_outputs(out, report=report, overwrite=overwrite, inputs=inputs)
    fitted = load(model, TransferModel)
    if not isinstance(fitted, VAEMLPTransfer):
        raise InputError(f"add-secondary needs a vae-mlp model (the shared latent space); this is "
                         f"{fitted.method!r}", file=model)
    if name in fitted.secondaries:
        raise InputError(f"the model already has a secondary named {name!r}", file=model)
    resolve_device(device)
    fitted.device = device
    if epochs is not None:
        fitted.mlp_epochs = epochs
    data = read_spectra(secondary)
    fitted.add_secondary(read_spectra(primary), data, name, library=None if library is None else read_spectra(library))
    fitted.save(out, overwrite=overwrite)
    say(f"wrote {out}: secondaries {', '.join(fitted.secondaries)}")
    write_report(report, "transfer add-secondary", inputs={"model": model, "targets": primary, "spectra": secondary,
                                                            "name": name, "epochs": fitted.mlp_epochs}, spectra=data,
                 model=out)


@app.command("predict")
def predict_command(model: Annotated[Path, typer.Option("--model", help="A saved transfer model.")],
                    spectra: SpectraOption, out: OutOption,
                    secondary: Annotated[str | None, typer.Option("--name", help="Which secondary instrument the "
                                                                  "spectra come from (needed when the model has "
                                                                  "several).")] = None,
                    device: DeviceOption = "auto", scheduler: SchedulerOption = None, report: ReportOption = None,
                    quiet: QuietOption = False, overwrite: OverwriteOption = False) -> None:
    """Transfer secondary spectra into the primary space (baseline removed, unscaled) and write them."""
    from speclearn.distributed import map_spectra, scheduler as cluster
    from speclearn.models import load, use_device
    from speclearn.transfer import TransferModel

    check_outputs(out, report=report, overwrite=overwrite, inputs=[model, spectra])
    fitted = use_device(load(model, TransferModel), device)
    data = read_spectra(spectra)
    name = fitted.resolve_secondary(secondary)
    data.check_axis_matches(fitted.secondary_axes_[name], what=f"the model's secondary {name!r}")
    if name == fitted.secondaries[0]:  # the training domain is the first secondary's
        check_domain(fitted, data,
                     consequence="the transfer learned another secondary's spectra: its output is an extrapolation")
    with cluster(scheduler):
        predicted = map_spectra(data, lambda block: fitted.predict(block, name))
        write_spectra(predicted, out, overwrite=overwrite)
        baseline = fitted.primary_pipe_.named_steps["baseline"]
        say(f"wrote {out}: {predicted.n_spectra} spectra on the primary axis ({predicted.describe_axis()}), with the "
            f"primary's baseline removed: a model of the primary must be trained on primary spectra without theirs "
            f"(speclearn preprocess --pipeline with the step  baseline: {{method: {baseline.method}, window: "
            f"{baseline.window}, sigma: {baseline.sigma:g}}})")
        write_report(report, "transfer predict", inputs={"model": model, "spectra": spectra, "name": name},
                     spectra=data, output=predicted, model=model)
