"""`speclearn quantify train|predict`: ICP-MS quantification (or any spectra -> concentrations)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from speclearn.cli.common import (BudgetOption, DeviceOption, OutOption, OverwriteOption, QuietOption, ReportOption,
                                  SchedulerOption, SeedOption, SpectraOption, check_outputs, say, warn_outside_domain,
                                  write_report)
from speclearn.core.errors import InputError
from speclearn.io import read_spectra, read_table_csv, write_spectra, write_table_csv

RECOVERY = "internal_standard_recovery"
UNEXPLAINED_MZ, UNEXPLAINED_SIGNIFICANCE = "unexplained_peak_mz", "unexplained_peak_z"
#: flags column: distance from the training spectra (`models.domain`; above 3 a spectrum is unlike them)
TRAINING_DISTANCE = "training_distance"
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
    targets: Annotated[Path, typer.Option("--targets", help="Concentrations or properties: id + one column per "
                                                            "target.")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    method: Annotated[str, typer.Option("--method", help="auto (rank the methods that suit the data by "
                                                         "cross-validation), caemmt, cnn, gd, bss, rf, pls, wnnls, vpro; with "
                                                         "--params also twohead or wnnls_params.")] = "auto",
    epochs: Annotated[int | None, typer.Option("--epochs", help="Training epochs (caemmt, cnn).")] = None,
    seed: SeedOption = 0,
    clean: Annotated[Path | None, typer.Option("--clean", help="Noise-free spectra (reconstruction loss).")] = None,
    peaks: Annotated[Path | None, typer.Option("--peaks", help="Peak table: id, species, mass_number, centre, "
                                                               "width, amplitude (peak-parameter loss).")] = None,
    blanks: Annotated[Path | None, typer.Option("--blanks", help="ICP-MS: blank replicate spectra for LOD/LOQ "
                                                                 "(default: training spectra whose targets are all "
                                                                 "0).")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Unit of the targets (default: ug/L for ICP-MS data, "
                                                            "else the unit in the targets header, e.g. "
                                                            "'glucose (g/L)', else none).")] = None,
    internal_standard: Annotated[str, typer.Option(
        "--internal-standard", help="ICP-MS: element added at a constant level to every sample (e.g. Rh, Sc), "
                                    "'none', or 'auto' (an element seen at a constant level in every training "
                                    "spectrum and absent from the targets).")] = "auto",
    groups: Annotated[Path | None, typer.Option("--groups", help="CSV id,group (sample / replicate ids): auto "
                                                                 "cross-validates by group.")] = None,
    budget_s: BudgetOption = None,
    calibration_fraction: Annotated[float, typer.Option(
        "--calibration-fraction", help="Hold out this fraction of the training spectra to calibrate "
                                       "split-conformal intervals (0: none; auto calibrates on its "
                                       "cross-validation folds instead; see speclearn.trust).")] = 0.0,
    conformal_score: Annotated[str | None, typer.Option(
        "--conformal-score", help="absolute, relative or log (default: log for ICP-MS, absolute otherwise).")] = None,
    params: ParamsOption = None,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Train a quantification model and write it to a model folder."""
    from speclearn.models import resolve_device, use_device
    from speclearn.models.selection import read_groups, show
    from speclearn.quantify import METHODS
    from speclearn.quantify.analyst import blank_ids, detection_limits
    from speclearn.quantify.auto import is_icpms
    from speclearn.quantify.base import check_targets, collapse_reason

    if method != "auto" and method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from auto, {', '.join(METHODS)}")
    check_outputs(out, report=report, overwrite=overwrite,
                  inputs=[spectra, targets, clean, peaks, blanks, params, groups])
    resolve_device(device)
    data = read_spectra(spectra)
    raw_table = read_table_csv(targets, numeric=True)
    table = check_targets(raw_table, data, file=str(targets))
    kind = "icpms" if is_icpms(data, list(table.columns)) else "property"
    standard = _internal_standard(internal_standard, kind, data, list(table.columns))
    score = conformal_score or ("log" if kind == "icpms" else "absolute")
    unit = unit if unit is not None else "ug/L" if kind == "icpms" else _header_unit(list(raw_table.columns))
    param_table = read_table_csv(params, numeric=True) if params else None
    clean_spectra = read_spectra(clean) if clean else None
    if peaks and not peaks.is_file():
        raise InputError("file not found", file=peaks)
    peak_table = pd.read_csv(peaks) if peaks else None
    fit_data = dict(clean=clean_spectra, peaks=peak_table)
    trusted = None
    if method == "auto":
        if param_table is not None or calibration_fraction:
            raise InputError("--method auto cannot be combined with --params or --calibration-fraction; "
                             "name a method")
        from speclearn.quantify.auto import cross_coverage, select_quantifier
        from speclearn.models.conformal import SplitConformal
        from speclearn.quantify.intervals import TrustedQuantifier

        labels = read_groups(groups, data) if groups else None
        say(f"auto: {'ICP-MS data' if kind == 'icpms' else 'property targets'} "
            f"({', '.join(table.columns)}); cross-validating candidates"
            + (f" (budget {budget_s:g} s)" if budget_s else ""))
        model, ranking, oof = select_quantifier(data, table, kind=kind, internal_standard=standard, groups=labels,
                                                seed=seed, budget_s=budget_s)
        show(ranking)
        Y = table.to_numpy(float)
        tests = [test for test, _ in ranking.payloads[ranking.winner]]
        coverage = cross_coverage(Y, oof, tests, 0.9, score)
        model.selection_["interval_coverage_0.9"] = coverage
        trusted = TrustedQuantifier(model, SplitConformal(score).calibrate(Y, oof), None, 0.0)
        say(f"auto chose {ranking.winner}; conformal intervals ({score} score) calibrated on {len(Y)} out-of-fold "
            f"predictions: 90 % intervals covered {coverage:.0%} of held-out values"
            + ("" if len(Y) >= 19 else f"; with {len(Y)} points only levels <= {len(Y) / (len(Y) + 1):.2f} "
                                       "give finite intervals"))
        method = model.method
    else:
        accepted = METHODS[method]().get_params()
        if epochs is not None and "epochs" not in accepted:
            raise InputError(f"--epochs applies to the network methods (caemmt, cnn, twohead), not {method}")
        hyper = {k: v for k, v in {"seed": seed, "internal_standard": standard, "epochs": epochs}.items()
                 if k in accepted and v is not None}
        model = use_device(METHODS[method](**hyper), device)
        if calibration_fraction:
            if param_table is not None:
                raise InputError("--calibration-fraction cannot be combined with --params yet")
            from speclearn.quantify.intervals import fit_calibrated
            trusted = fit_calibrated(model, data, table, calibration_fraction=calibration_fraction,
                                     score=score, seed=seed, **fit_data)
            say(f"conformal calibration ({score} score) on {trusted.conformal.scores_.shape[0]} held-out "
                f"spectra; the model is fitted on the other {data.n_spectra - trusted.conformal.scores_.shape[0]}")
        else:
            model.fit(data, table, params=_params_for(param_table, data, params), **fit_data)
        reason = collapse_reason(table.to_numpy(float),
                                 model.predict(data, _params_for(param_table, data, params)).to_numpy(float),
                                 list(table.columns))
        if reason:
            raise InputError(f"the {method} model collapsed on these data: {reason} on its own training spectra; "
                             "it learned nothing. Try --method auto or pls", file=targets)
    model.unit_, model.data_kind_ = unit, kind
    limits = None
    if kind == "icpms":
        ids = None if blanks else blank_ids(table)
        blank_data = read_spectra(blanks) if blanks else data.select(ids) if ids else None
        blank_predictions = (table.iloc[:0] if blank_data is None else
                             model.predict(blank_data, _params_for(param_table, blank_data, params)))
        limits = detection_limits(blank_predictions).assign(top_standard=table.max(axis=0))
    elif blanks:
        raise InputError("--blanks (LOD/LOQ) applies to ICP-MS data only (element targets on an m/z axis)")
    model.limits_ = limits
    if trusted is not None:
        trusted.save(out, overwrite=overwrite)
    else:
        model.save(out, overwrite=overwrite)
    say(f"wrote {out}: {method} model, {data.n_spectra} spectra x {data.n_channels} channels, "
        f"targets {', '.join(model.targets_)}{f' ({unit})' if unit else ''}"
        + (f", internal standard {standard or 'none'}" if kind == "icpms" else ""))
    if limits is not None and limits["n_blanks"].iloc[0] >= 3:
        say("LOD / LOQ (" + unit + "): " + ", ".join(f"{k} {r.lod:.3g}/{r.loq:.3g}" for k, r in limits.iterrows()))
    if report is not None:
        write_report(report, "quantify train", inputs={"spectra": spectra, "targets": targets, "method": method,
                                                       "seed": seed}, spectra=data, model=out,
                     parity=(table, model.predict(data, _params_for(param_table, data, params))))


def _header_unit(columns: list[str]) -> str:
    """The unit written in every target header as 'name (unit)' or 'name [unit]', if they all agree."""
    import re

    units = {m.group(1).strip() if (m := re.search(r"[(\[]([^)\]]+)[)\]]\s*$", c)) else "" for c in columns}
    return units.pop() if len(units) == 1 else ""


def _internal_standard(choice: str, kind: str, data, targets: list[str]) -> str:
    """The internal standard element ('' for none) for --internal-standard EL|none|auto."""
    from speclearn.quantify.auto import detect_internal_standard, single_element
    from speclearn.quantify.physics import check_analytes

    if choice == "none" or (kind != "icpms" and choice == "auto"):
        return ""
    if kind != "icpms":
        raise InputError(f"--internal-standard {choice} applies to ICP-MS data (element-symbol targets on an m/z "
                         "axis); these targets are properties")
    if choice == "auto":
        found, spreads = detect_internal_standard(data, targets)
        seen = ", ".join(f"{k} (sd log {v:.2f})" for k, v in spreads.items()) or "none visible in every spectrum"
        say(f"internal standard: {found or 'none found'} (auto; candidates {seen})")
        return found or ""
    if not single_element(choice):
        raise InputError(f"--internal-standard {choice!r} is not an element symbol (e.g. Rh, Sc), 'none' or 'auto'")
    if choice in targets:
        raise InputError(f"--internal-standard {choice} is also a target; it must be added at a constant level")
    check_analytes([choice], data.axis)
    return choice


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
    scheduler: SchedulerOption = None,
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Predict concentrations: OUT has id + one column per training target; for ICP-MS models a flags
    table beside it marks results below LOD / LOQ or above the highest training standard (>range) and
    gives per spectrum the internal-standard recovery
    and, for models that fit the spectrum (wnnls, vpro, caemmt), the m/z of a peak the model does not explain
    (unexplained_peak_mz, empty when none reaches significance 10; unexplained_peak_z)."""
    from speclearn.models import load, use_device
    from speclearn.quantify import Quantifier
    from speclearn.distributed import predict_table, scheduler as cluster
    from speclearn.quantify.analyst import UNEXPLAINED_Z, dilution_factors, flag_results, unexplained_peaks

    quantifier = use_device(load(model, Quantifier), device)
    if getattr(quantifier, "data_kind_", "icpms") != "icpms" and flags is None:
        flags = None  # LOD / LOQ flags and internal-standard recovery mean nothing for property targets
    else:
        flags = flags or _flags_path(out)
    check_outputs(out, flags, reconstructed, peaks_out, report=report, overwrite=overwrite,
                  inputs=[spectra, metadata, model, params])
    data = read_spectra(spectra, expect=quantifier.axis_)
    data.check_axis_matches(quantifier.axis_, what=f"the model {model}")
    meta = read_table_csv(metadata) if metadata else None
    dilution = dilution_factors(meta, data, file=str(metadata) if metadata else None)
    param_table = read_table_csv(params, numeric=True) if params else None
    param_rows = _params_for(param_table, data, params)

    def predict_block(block, rows: slice) -> pd.DataFrame:
        table = quantifier.predict(block, None if param_rows is None else param_rows.iloc[rows])
        values = block.values().astype(float)
        recovery = quantifier.internal_standard_recovery(values)
        fitted = quantifier.reconstruct(values) if flags is not None else None
        mz, z = (np.nan, np.nan) if fitted is None else unexplained_peaks(values, fitted, block.axis)
        distance = quantifier.domain_distance(block)
        return table.assign(**{RECOVERY: np.nan if recovery is None else recovery, UNEXPLAINED_MZ: mz,
                               UNEXPLAINED_SIGNIFICANCE: z, TRAINING_DISTANCE: np.nan if distance is None else distance})

    with cluster(scheduler):
        measured = predict_table(data, predict_block)
    recovery = measured.pop(RECOVERY).to_numpy()
    distance = measured.pop(TRAINING_DISTANCE).to_numpy()
    unexplained = pd.DataFrame({name: measured.pop(name) for name in (UNEXPLAINED_MZ, UNEXPLAINED_SIGNIFICANCE)})
    unexplained.loc[~(unexplained[UNEXPLAINED_SIGNIFICANCE] > UNEXPLAINED_Z), UNEXPLAINED_MZ] = np.nan
    X = data.values().astype(float) if reconstructed or peaks_out else None
    recon = quantifier.reconstruct(X) if reconstructed else None
    if reconstructed and recon is None:
        raise InputError(f"a {quantifier.method} model does not reconstruct spectra; use caemmt or wnnls",
                         file=model)
    peak_values = quantifier.peak_parameters(X) if peaks_out else None
    if peaks_out and peak_values is None:
        raise InputError(f"a {quantifier.method} model does not estimate peak parameters", file=model)
    table = flag_results(measured, getattr(quantifier, "limits_", None))
    table[RECOVERY] = recovery
    table["dilution"] = dilution
    table[TRAINING_DISTANCE] = distance
    table = table.join(unexplained)
    found = unexplained[UNEXPLAINED_MZ].dropna()
    if len(found):
        say(f"[yellow]warning:[/] {len(found)} of {data.n_spectra} spectra hold a peak the model does not explain "
            f"(first: {found.index[0]} at m/z {found.iloc[0]:.2f}): an interference or element it does not "
            f"know; see {UNEXPLAINED_MZ} in {flags}")
    warn_outside_domain(distance, data.ids,
                        where=f"; see {TRAINING_DISTANCE} in {flags}" if flags is not None else
                        f" (--flags FILE writes each spectrum's {TRAINING_DISTANCE})")
    result = measured * dilution[:, None]
    if interval is not None:
        from speclearn.quantify.intervals import add_intervals
        result = add_intervals(model, quantifier, data, interval, interval_method, scale=dilution)
        if not np.isfinite(result.to_numpy(float)).all():
            say(f"[yellow]warning:[/] too few calibration points for {interval:g} coverage: the interval is "
                "unbounded (infinite); ask for a lower level or train on more spectra")
    write_table_csv(result, out, overwrite=overwrite)
    if flags is not None:
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
        f"{f' ({unit})' if unit else ''}" + (f"; flags in {flags}" if flags is not None else ""))
    write_report(report, "quantify predict", inputs={"model": model, "spectra": spectra, "interval": interval},
                 spectra=data, table=result, model=model)
