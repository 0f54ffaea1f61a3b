"""`speclearn quantify train|predict`: ICP-MS quantification (or any spectra -> concentrations)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from speclearn.cli.common import DeviceOption, OutOption, OverwriteOption, SeedOption, SpectraOption, say
from speclearn.core.errors import InputError
from speclearn.io import check_output, read_spectra, read_table_csv, write_spectra, write_table_csv

app = typer.Typer(no_args_is_help=True, help="Quantify analytes from spectra: CAEM-MT and classical baselines.")


def _flags_path(out: Path) -> Path:
    return out.with_name(out.stem + ".flags.csv")


ParamsOption = Annotated[Path | None, typer.Option(
    "--params", help="Per-spectrum instrument/process parameters: id + numeric columns (e.g. rf_power_w, "
                     "nebuliser_flow_l_min, conductivity_ms_cm); rows for other ids are ignored. A model "
                     "trained with --params needs them at predict too.")]


def _params_for(table: pd.DataFrame | None, data, path: Path | None) -> pd.DataFrame | None:
    """The rows of a parameters table for these spectra; InputError naming `path` if any is missing."""
    from speclearn.quantify.base import check_params

    if table is None:
        return None
    rows = table[table.index.isin(data.meta.index)]
    check_params(rows, data, file=str(path))
    return rows


@app.command()
def train(
    spectra: SpectraOption,
    targets: Annotated[Path, typer.Option("--targets", help="Concentrations: id + one column per analyte.")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    method: Annotated[str | None, typer.Option("--method", help="caemmt, gd, bss, rf, pls, wnnls; with --params "
                                                                "also twohead or wnnls_params (default: the "
                                                                "best measured).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Training epochs (caemmt).")] = None,
    seed: SeedOption = 0,
    clean: Annotated[Path | None, typer.Option("--clean", help="Noise-free spectra (reconstruction loss).")] = None,
    peaks: Annotated[Path | None, typer.Option("--peaks", help="Peak table: id, species, mass_number, centre, "
                                                               "width, amplitude (peak-parameter loss).")] = None,
    blanks: Annotated[Path | None, typer.Option("--blanks", help="Blank replicate spectra for LOD/LOQ (default: "
                                                                 "training spectra whose targets are all 0).")] = None,
    unit: Annotated[str, typer.Option("--unit", help="Concentration unit of the targets.")] = "ug/L",
    calibration_fraction: Annotated[float, typer.Option(
        "--calibration-fraction", help="Hold out this fraction of the training spectra to calibrate "
                                       "split-conformal intervals (0: none; see speclearn.trust).")] = 0.0,
    conformal_score: Annotated[str, typer.Option("--conformal-score", help="absolute, relative or log "
                                                                          "(with --calibration-fraction).")] = "log",
    params: ParamsOption = None,
    device: DeviceOption = "auto",
    overwrite: OverwriteOption = False,
) -> None:
    """Train a quantification model and write it to a model folder."""
    from speclearn.models import resolve_device
    from speclearn.quantify import DEFAULT_METHOD, METHODS, save_quantifier
    from speclearn.quantify.analyst import blank_ids, detection_limits
    from speclearn.quantify.base import check_targets

    method = method or DEFAULT_METHOD
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    check_output(out, overwrite=overwrite, inputs=[spectra, targets, clean, peaks, blanks, params])
    torch_device = str(resolve_device(device))
    data = read_spectra(spectra)
    table = check_targets(read_table_csv(targets, numeric=True), data, file=str(targets))
    hyper: dict = {"seed": seed} if "seed" in METHODS[method]().get_params() else {}
    if epochs is not None:
        if "epochs" not in METHODS[method]().get_params():
            raise InputError(f"--epochs applies to caemmt and twohead only, not {method}")
        hyper["epochs"] = epochs
    param_table = read_table_csv(params, numeric=True) if params else None
    clean_spectra = read_spectra(clean) if clean else None
    if peaks and not peaks.is_file():
        raise InputError("file not found", file=peaks)
    peak_table = pd.read_csv(peaks) if peaks else None
    model = METHODS[method](**hyper)
    fit_data = dict(clean=clean_spectra, peaks=peak_table, device=torch_device)
    if calibration_fraction:
        if param_table is not None:
            raise InputError("--calibration-fraction cannot be combined with --params yet")
        from speclearn.trust.intervals import fit_calibrated
        trusted = fit_calibrated(model, data, table, calibration_fraction=calibration_fraction,
                                 score=conformal_score, seed=seed, **fit_data)
        say(f"conformal calibration ({conformal_score} score) on {trusted.conformal.scores_.shape[0]} held-out "
            f"spectra; the model is fitted on the other {data.n_spectra - trusted.conformal.scores_.shape[0]}")
    else:
        model.fit(data, table, params=_params_for(param_table, data, params), **fit_data)
    model.unit_ = unit
    if blanks:
        blank_data = read_spectra(blanks)
        limits = detection_limits(model.predict(blank_data, _params_for(param_table, blank_data, params)))
    else:
        ids = blank_ids(table)
        blank_data = data.select(ids) if ids else None
        limits = (detection_limits(model.predict(blank_data, _params_for(param_table, blank_data, params)))
                  if ids else None)
    model.limits_ = limits
    if calibration_fraction:
        from speclearn.trust.intervals import save_trusted
        save_trusted(trusted, out, overwrite=overwrite)
    else:
        save_quantifier(model, out, overwrite=overwrite)
    say(f"wrote {out}: {method} model, {data.n_spectra} spectra x {data.n_channels} channels, "
        f"targets {', '.join(model.targets_)} ({unit})")
    if limits is not None and limits["n_blanks"].iloc[0] >= 3:
        say("LOD / LOQ (" + unit + "): " + ", ".join(f"{k} {r.lod:.3g}/{r.loq:.3g}" for k, r in limits.iterrows()))


@app.command()
def predict(
    model: Annotated[Path, typer.Option("--model", help="Model folder from `quantify train`.")],
    spectra: SpectraOption,
    out: OutOption,
    reconstructed: Annotated[Path | None, typer.Option("--reconstructed", help="Also write the reconstructed "
                                                                               "(denoised) spectra here.")] = None,
    metadata: Annotated[Path | None, typer.Option("--metadata", help="id + `dilution` column: results are "
                                                                     "multiplied by the dilution factor.")] = None,
    flags: Annotated[Path | None, typer.Option("--flags", help="Where to write the flags table "
                                                               "(default: OUT stem + .flags.csv).")] = None,
    interval: Annotated[float | None, typer.Option("--interval", help="Add <target>_lo / <target>_hi columns: "
                                                                      "a prediction interval at this level "
                                                                      "(e.g. 0.9).")] = None,
    interval_method: Annotated[str, typer.Option("--interval-method", help="auto, conformal, counting "
                                                                           "(wnnls), dropout or ensemble.")] = "auto",
    peaks_out: Annotated[Path | None, typer.Option("--peaks-out", help="Also write each analyte's main isotope "
                                                                       "peak: centre, FWHM, height (caemmt, "
                                                                       "wnnls, gd).")] = None,
    params: ParamsOption = None,
    device: DeviceOption = "auto",
    overwrite: OverwriteOption = False,
) -> None:
    """Predict concentrations: OUT has id + one column per training target; a flags table beside it
    marks results below LOD / LOQ and gives the internal-standard recovery per spectrum."""
    from speclearn.models import use_device
    from speclearn.quantify import load_quantifier
    from speclearn.quantify.analyst import dilution_factors, flag_results

    flags = flags or _flags_path(out)
    inputs = [spectra, metadata, model, params]
    for path in (out, flags, reconstructed, peaks_out):
        if path is not None:
            check_output(path, overwrite=overwrite, inputs=inputs)
    quantifier = use_device(load_quantifier(model), device)
    data = read_spectra(spectra, expect=quantifier.axis_)
    data.check_axis_matches(quantifier.axis_, what=f"the model {model}")
    meta = read_table_csv(metadata) if metadata else None
    dilution = dilution_factors(meta, data, file=str(metadata) if metadata else None)
    param_table = read_table_csv(params, numeric=True) if params else None
    measured = quantifier.predict(data, _params_for(param_table, data, params))
    X = data.values().astype(float)
    recon = quantifier.reconstruct(X) if reconstructed else None
    if reconstructed and recon is None:
        raise InputError(f"a {quantifier.method} model does not reconstruct spectra; use caemmt or wnnls",
                         file=model)
    peak_values = quantifier.peak_parameters(X) if peaks_out else None
    if peaks_out and peak_values is None:
        raise InputError(f"a {quantifier.method} model does not estimate peak parameters", file=model)
    table = flag_results(measured, getattr(quantifier, "limits_", None))
    recovery = quantifier.internal_standard_recovery(X)
    table["internal_standard_recovery"] = np.nan if recovery is None else recovery
    table["dilution"] = dilution
    result = measured * dilution[:, None]
    if interval is not None:
        from speclearn.trust.intervals import add_intervals
        result = add_intervals(model, quantifier, data, interval, interval_method, scale=dilution)
    write_table_csv(result, out, overwrite=overwrite)
    write_table_csv(table, flags, overwrite=overwrite)
    if recon is not None:
        write_spectra(data.with_intensity(recon), reconstructed, overwrite=overwrite)
    if peak_values is not None:
        from speclearn.quantify.peaks import peak_table
        from speclearn.io import atomic_path

        with atomic_path(peaks_out, overwrite=overwrite) as tmp:
            peak_table(data.ids, quantifier.targets_, quantifier.main_isotopes(), peak_values).to_csv(
                tmp, index=False, float_format="%.8g")
    unit = getattr(quantifier, "unit_", "")
    say(f"wrote {out}: {data.n_spectra} spectra, {len(quantifier.targets_)} targets"
        f"{f' ({unit})' if unit else ''}; flags in {flags}")
