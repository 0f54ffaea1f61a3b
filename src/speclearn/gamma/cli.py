"""`speclearn gamma identify|train|predict` (and the body of `speclearn simulate gamma`)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from speclearn.cli.common import (DeviceOption, OutOption, OverwriteOption, QuietOption, ReportOption, SeedOption,
                                  SpectraOption, check_report, say, write_report)
from speclearn.core.errors import InputError
from speclearn.io import check_output, read_table_csv, write_table_csv

app = typer.Typer(no_args_is_help=True, help="Gamma-ray spectra: nuclide identification, materials, composition.")

CalibrationOption = Annotated[str | None, typer.Option(
    "--calibration", help="OFFSET,GAIN[,QUAD] keV energy calibration replacing the file's (channel files).")]


def parse_calibration(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--calibration must look like OFFSET,GAIN[,QUAD], got {text!r}") from None
    if not 2 <= len(values) <= 3:
        raise InputError(f"--calibration must look like OFFSET,GAIN[,QUAD], got {text!r}")
    return values


def load_gamma_spectra(path: Path, calibration: str | None = None, *, auto: bool = True):
    """Read spectra, auto-calibrating a channel-only file on background lines; say which calibration is used."""
    from dataclasses import replace

    from speclearn.gamma.grid import auto_calibrate
    from speclearn.io.gamma_formats import calibration_text, check_calibration, read_gamma

    spectra = read_gamma(path, calibration=parse_calibration(calibration))
    if spectra.axis_kind == "channel" and auto:
        coefficients, pairs = auto_calibrate(spectra.values().sum(axis=0))
        axis = check_calibration(coefficients, spectra.n_channels, file=path,
                                 first_channel=int(spectra.axis[0]))
        matched = ", ".join(f"ch {c:g} = {e:g} keV" for c, e in pairs)
        text = f"{calibration_text(coefficients)} (auto-calibrated on background lines: {matched})"
        meta = spectra.meta.assign(calibration=text, cal_offset=coefficients[0], cal_gain=coefficients[1],
                                   cal_quad=0.0)
        spectra = replace(spectra, axis=axis, axis_kind="energy", axis_unit="keV", meta=meta)
    if "calibration" in spectra.meta:
        for text in pd.unique(spectra.meta["calibration"])[:3]:
            say(f"calibration used: {text}")
    else:
        say(f"calibration used: the file's axis, {spectra.describe_axis()}")
    return spectra


@app.command("identify")
def identify_command(
    spectra: SpectraOption,
    out: OutOption,
    model: Annotated[Path | None, typer.Option("--model", help="Identifier from `gamma train` (default: the shipped one).")] = None,
    method: Annotated[str, typer.Option("--method", help="learned (the model) or peaks (peak search + line library).")] = "learned",
    threshold: Annotated[float | None, typer.Option("--threshold", help="Report nuclides scoring at least this.")] = None,
    calibration: CalibrationOption = None,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Name the nuclides in each spectrum: id, nuclide, score (one row per nuclide found)."""
    from speclearn.gamma.learned import MLPIdentifier
    from speclearn.gamma.peaksearch import PeakSearchIdentifier
    from speclearn.models import use_device

    if method not in ("learned", "peaks"):
        raise InputError(f"unknown --method {method!r}; choose learned or peaks")
    check_output(out, overwrite=overwrite, inputs=[spectra])
    check_report(report, overwrite=overwrite, inputs=[spectra, model, out])
    data = load_gamma_spectra(spectra, calibration)
    identifier = use_device(PeakSearchIdentifier().fit() if method == "peaks" else MLPIdentifier.load(model), device)
    if threshold is not None:
        identifier.set_params(threshold=threshold)
    table = identifier.predict(data)
    write_table_csv(table.set_index("id"), out, overwrite=overwrite)
    for sid, group in table.groupby("id", sort=False):
        say(f"{sid}: " + ", ".join(f"{r.nuclide} {r.score:.2f}" for r in group.itertuples()))
    say(f"wrote {len(table)} identifications for {data.n_spectra} spectra to {out}")
    write_report(report, "gamma identify", inputs={"spectra": spectra, "method": method, "model": model or "shipped",
                                                   "threshold": threshold}, spectra=data, table=table.set_index("id"),
                 model=model)


@app.command("train")
def train_command(
    spectra: SpectraOption,
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    labels: Annotated[Path | None, typer.Option("--labels", help="CSV: id,labels (';'-joined nuclides) or id,label (material).")] = None,
    targets: Annotated[Path | None, typer.Option("--targets", help="CSV: id + atom fraction per element (composition).")] = None,
    method: Annotated[str, typer.Option("--method", help="auto (ranked by cross-validation), mlp (nuclides), cnn, plsda, svm, rf, knn (materials), "
                                                     "revae (material generator), ae, nnls (composition).")] = "auto",
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs (networks).")] = 40,
    calibration: CalibrationOption = None,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Train a nuclide identifier (--labels with `labels`), a material classifier (--labels with `label`)
    or a composition model (--targets) and save it to a model folder."""
    if (labels is None) == (targets is None):
        raise InputError("give exactly one of --labels and --targets")
    if epochs < 1:
        raise InputError("--epochs must be at least 1")
    check_output(out, overwrite=overwrite, inputs=[spectra, labels or targets])
    check_report(report, overwrite=overwrite, inputs=[spectra, labels or targets, out])
    data = load_gamma_spectra(spectra, calibration)
    composition = _train(data, out, labels=labels, targets=targets, method=method, epochs=epochs, seed=seed,
                         device=device, overwrite=overwrite)
    parity = None if report is None or composition is None else (composition[0], composition[1].predict(data))
    write_report(report, "gamma train", inputs={"spectra": spectra, "targets": labels or targets, "method": method,
                                                "epochs": epochs, "seed": seed}, spectra=data, model=out, parity=parity)


def _train(data, out: Path, *, labels: Path | None, targets: Path | None, method: str, epochs: int, seed: int,
           device: str, overwrite: bool) -> tuple[pd.DataFrame, object] | None:
    """Fit and save the model `gamma train` asked for; a composition model is returned with its targets."""
    from speclearn.io import align_table
    if targets is not None:
        from speclearn.gamma.composition import composition_types
        table = align_table(read_table_csv(targets, numeric=True), data, file=targets)
        types = composition_types()
        if method != "auto" and method not in types:
            raise InputError(f"--targets trains a composition model: --method auto, {', '.join(types)}")
        if method == "auto":
            from speclearn.gamma.auto import select_composition
            from speclearn.models.selection import show
            estimator, ranking = select_composition(data, table, epochs=epochs, seed=seed, device=device)
            show(ranking)
            name = ranking.winner
        else:
            name = method
            estimator = types[name](epochs=epochs, seed=seed, device=device) if name == "ae" else types[name]()
            estimator.fit(data, table)
        estimator.save(out, overwrite=overwrite)
        say(f"wrote {name} composition model ({', '.join(table.columns)}) to {out}")
        return table, estimator
    table = align_table(read_table_csv(labels), data, file=labels)
    if "labels" in table.columns:
        from speclearn.gamma.learned import MLPIdentifier
        if method not in ("auto", "mlp"):
            raise InputError("nuclide labels train the mlp identifier: --method auto or mlp")
        identifier = MLPIdentifier(epochs=epochs, seed=seed, progress=True, device=device).fit(
            data, table["labels"].fillna(""))
        identifier.save(out, overwrite=overwrite)
        say(f"wrote nuclide identifier ({len(identifier.nuclides_)} nuclides, {data.n_spectra} spectra) to {out}")
        return None
    column = next((c for c in ("label", "class", "material") if c in table.columns), None)
    if column is None:
        raise InputError("labels need a `labels` (nuclides) or `label` (material) column", file=labels)
    if method == "revae":
        from speclearn.gamma.generate import ReVAEGenerator
        generator = ReVAEGenerator(epochs=epochs, seed=seed, progress=True, device=device).fit(
            data, table[column].astype(str))
        generator.save(out, overwrite=overwrite)
        say(f"wrote ReVAE generator ({len(generator.classes_)} materials) to {out}")
        return None
    if method == "auto":
        from speclearn.gamma.auto import select_material_classifier
        from speclearn.models.selection import show
        classifier, ranking = select_material_classifier(data, table[column].astype(str), epochs=epochs, seed=seed,
                                                         device=device)
        show(ranking)
        method = ranking.winner
    else:
        from speclearn.gamma.materials_cnn import material_classifier
        classifier = material_classifier(method, epochs=epochs, seed=seed, device=device)
        classifier.fit(data, table[column].astype(str))
    classifier.save(out, overwrite=overwrite)
    say(f"wrote {method} material classifier ({len(classifier.classes_)} classes) to {out}")
    return None


@app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Option("--model", help="Model folder from `gamma train`.")],
    spectra: SpectraOption,
    out: OutOption,
    calibration: CalibrationOption = None,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Apply a gamma model: nuclides (id, nuclide, score), material classes, or atom fractions."""
    from speclearn.gamma.composition import AEComposition, NNLSComposition
    from speclearn.gamma.learned import MLPIdentifier
    from speclearn.gamma.materials_cnn import as_material_classifier
    from speclearn.models import load, use_device

    check_output(out, overwrite=overwrite, inputs=[spectra, model])
    check_report(report, overwrite=overwrite, inputs=[spectra, model, out])
    data = load_gamma_spectra(spectra, calibration)
    estimator = use_device(load(model), device)
    if isinstance(estimator, MLPIdentifier):
        table = estimator.predict(data).set_index("id")
    elif isinstance(estimator, (AEComposition, NNLSComposition)):
        table = estimator.predict(data)
    else:
        table = as_material_classifier(estimator).predict(data)
    write_table_csv(table, out, overwrite=overwrite)
    say(f"wrote {len(table)} rows to {out}")
    write_report(report, "gamma predict", inputs={"model": model, "spectra": spectra}, spectra=data, table=table,
                 model=model)


@app.command("generate")
def generate_command(
    model: Annotated[Path, typer.Option("--model", help="ReVAE generator from `gamma train --method revae`.")],
    request: Annotated[list[str], typer.Option("--request", help="Material, or mixture A:0.7+B:0.3 (repeatable).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write: spectra.csv, labels.csv, truth.csv.")],
    n: Annotated[int, typer.Option("--n", help="Spectra per request.")] = 10,
    seed: SeedOption = 0,
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Generate material (or mixture) spectra with a trained ReVAE, with their labels."""
    from speclearn.gamma.generate import ReVAEGenerator
    from speclearn.models import load
    from speclearn.io import atomic_path, write_spectra

    check_output(out, overwrite=overwrite, inputs=[model], directory=True, kind="gamma-generated")
    check_report(report, overwrite=overwrite, inputs=[model, out])
    spectra, truth = load(model, ReVAEGenerator).generate(request, n, seed=seed)
    with atomic_path(out, overwrite=overwrite, directory=True, kind="gamma-generated") as tmp:
        write_spectra(spectra, tmp / "spectra.csv")
        write_table_csv(truth[["label"]], tmp / "labels.csv")
        write_table_csv(truth, tmp / "truth.csv")
    say(f"wrote {spectra.n_spectra} generated spectra ({len(request)} request(s) x {n}) to {out}")
    write_report(report, "gamma generate", inputs={"model": model, "requests": "; ".join(request), "n": n, "seed": seed},
                 spectra=spectra, table=truth, model=model)


def simulate_command(out: Path, *, mode: str, detector: str, n: int, seed: int, overwrite: bool) -> None:
    """`speclearn simulate gamma`: write the simulated spectra and their ground truth to `out`."""
    from speclearn.gamma.simulate import simulate_materials, simulate_nuclides
    if n < 1:
        raise InputError("--n must be at least 1")
    check_output(out, overwrite=overwrite)
    if mode == "nuclides":
        simulation = simulate_nuclides(detector, n, seed=seed)
    elif mode == "materials":
        simulation = simulate_materials(detector, n, seed=seed)
    else:
        raise InputError(f"unknown --mode {mode!r}; choose nuclides or materials")
    simulation.write(out, overwrite=overwrite)
    say(f"wrote {n} {detector} gamma spectra ({mode}, {simulation.spectra.describe_axis()}) with ground truth to {out}")
