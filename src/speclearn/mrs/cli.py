"""`speclearn mrs ...` (align, fit, train, predict, qa, denoise) and `speclearn simulate mrs`."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from speclearn.cli.common import (DeviceOption, OutOption, OverwriteOption, QuietOption, ReportOption, SchedulerOption,
                                  SeedOption, check_report, say, write_report)
from speclearn.core.errors import InputError
from speclearn.io import atomic_path, check_output, read_table_csv, write_table_csv

app = typer.Typer(no_args_is_help=True, help="Magnetic resonance spectroscopy: align transients, fit or learn "
                                            "metabolite concentrations, flag corrupted transients.")

MRSIn = Annotated[Path, typer.Option("--spectra", help="MRS file: complex .npz, NIfTI-MRS (.nii/.nii.gz), "
                                                        "LCModel .RAW/.H2O, jMRUI or plain text (real/imag).")]
BasisOption = Annotated[Path | None, typer.Option("--basis", help="Basis set: .npz, LCModel .BASIS or a folder of "
                                                                  "FSL-MRS .json / text files (default: the shipped "
                                                                  "ISMRM 2016 set).")]
WaterOption = Annotated[Path | None, typer.Option("--water", help="Water reference (mM output by the ISMRM 2016 "
                                                                  "challenge convention; else ratios to tCr).")]
DwellTimeOption = Annotated[float | None, typer.Option("--dwell-time", help="Dwell time (s) of inputs and text basis "
                                                                            "files that do not state it (plain text, "
                                                                            "LCModel .RAW).")]
FrequencyOption = Annotated[float | None, typer.Option("--central-frequency", help="Central frequency (MHz) of inputs "
                                                                                  "and text basis files that do not "
                                                                                  "state it.")]
EchoTimeOption = Annotated[float | None, typer.Option("--te", help="Echo time (ms) of inputs that do not state it.")]
ALIGN_METHODS = ("auto", "cnn", "registration")


def shipped_model(name: str) -> Path:
    return Path(str(resources.files("speclearn.mrs") / "data" / "models" / name))


def load_shipped(name: str, cls, device: str = "auto"):
    """A pretrained model shipped with the package (on `device`), or None when it is absent."""
    from speclearn.models import load, use_device
    path = shipped_model(name)
    return use_device(load(path, cls), device) if (path / "config.json").exists() else None


def align_transients(data, method: str = "auto", device: str = "auto"):
    """(aligned data, shift Hz, phase deg, method used). auto: CNN then registration refinement (with a
    +-20 Hz correlation search around the CNN's estimate) when the shipped CNN matches the acquisition,
    else registration with a +-30 Hz coarse search."""
    from speclearn.mrs.align_cnn import CNNAligner
    from speclearn.mrs.data import shift_phase
    from speclearn.mrs.registration import AUTO_SEARCH_HZ, SpectralRegistration
    if method not in ALIGN_METHODS:
        raise InputError(f"--method must be one of {', '.join(ALIGN_METHODS)}, got {method!r}")
    cnn = None
    if method in ("auto", "cnn"):
        cnn = load_shipped("aligner", CNNAligner, device)
        if cnn is None and method == "cnn":
            raise InputError("no CNN aligner is shipped with this installation; use --method registration")
        if cnn is not None:
            try:
                data.check_acquisition(cnn.axis_, what="the shipped CNN aligner")
            except InputError:
                if method == "cnn":
                    raise
                cnn = None
    if cnn is not None:
        shift, phase = cnn.estimate(data)
        if method == "auto":
            shift, phase = SpectralRegistration(search_hz=AUTO_SEARCH_HZ).estimate(data, initial_hz=shift,
                                                                                 initial_deg=phase)
            used = "cnn+registration"
        else:
            used = "cnn"
    else:
        shift, phase = SpectralRegistration(search_hz=30.0).estimate(data)
        used = "registration"
    return data.with_fid(shift_phase(data.fid, data.dwell_time_s, -shift, -phase)), shift, phase, used


def prepare(data, *, align: bool = True, reject: float | None = 3.0):
    """One averaged FID per scan: transients aligned (registration) and outliers (robust z > reject) left out."""
    from speclearn.mrs.preprocess import transient_outlier_scores
    if data.n == len(data.scan_names()):
        return data
    if align:
        data = align_transients(data, "registration")[0]
    keep = None if reject is None else transient_outlier_scores(data) <= reject
    return data.average(keep)


#: ppm window the few-average denoisers work on (the fit window 0.2-4.2 ppm with a margin); the rest of
#: each spectrum passes through unchanged
DENOISE_PPM = (0.0, 4.4)
DENOISE_METHODS = ("noise2noise", "blindspot", "savgol", "none")


def block_averages(data, averages: int, *, first: bool = False):
    """Per scan, the averages of consecutive blocks of `averages` transients (ids <scan>_a<j>; an
    incomplete last block is left out); with `first`, only each scan's first block (id: the scan)."""
    if averages < 1:
        raise InputError(f"--averages must be >= 1, got {averages}")
    scans = np.asarray(data.scans)
    fids, ids, labels = [], [], []
    for name in data.scan_names():
        rows = np.flatnonzero(scans == name)
        if len(rows) < averages:
            raise InputError(f"scan {name!r} has {len(rows)} transients, fewer than --averages {averages}",
                             file=data.source)
        for j in range(1 if first else len(rows) // averages):
            fids.append(data.fid[rows[j * averages:(j + 1) * averages]].mean(axis=0))
            ids.append(name if first else f"{name}_a{j}")
            labels.append(name)
    return data.with_fid(np.stack(fids), ids=ids, scans=labels, dims=[])


def _parts(data):
    """(Spectra, window): real and imaginary parts of the spectra inside DENOISE_PPM as separate rows
    (ids <id>:re then <id>:im, meta column `group` <scan>:re / <scan>:im). The denoisers take real
    spectra; the noise of both parts is alike (white, same variance)."""
    from speclearn.core.spectra import Spectra
    from speclearn.mrs.data import ppm_slice
    ppm = data.ppm()
    window = ppm_slice(ppm, *DENOISE_PPM)
    spectrum = data.spectrum()[:, window]
    parts = ("re", "im")
    meta = pd.DataFrame({"group": [f"{s}:{p}" for p in parts for s in data.scans]},
                        index=pd.Index([f"{i}:{p}" for p in parts for i in data.ids], name="id"))
    return Spectra(np.vstack([spectrum.real, spectrum.imag]), ppm[window], axis_kind="ppm", axis_unit="ppm",
                   meta=meta, source=data.source), window


def fit_few_average_denoiser(train, averages: int, method: str = "noise2noise", *, seed: int = 0, epochs: int = 200,
                             max_seconds: float | None = None, device: str = "auto"):
    """A denoiser for averages of `averages` transients, trained on the aligned transients `train`.

    Per training scan the averages of disjoint blocks of `averages` transients are replicates of one
    signal at the noise level of the spectra to denoise. noise2noise: each block's target is the mean of
    its scan's other blocks (needs >= 2 blocks per scan); savgol: noise2noise's starting smoother alone
    (Savitzky-Golay window chosen by that replicate loss, no network); blindspot: every block on its own
    (Noise2Self); none: no denoiser (None)."""
    from speclearn.models import methods
    if method not in DENOISE_METHODS:
        raise InputError(f"--method must be one of {', '.join(DENOISE_METHODS)}, got {method!r}")
    if method == "none":
        return None
    blocks = block_averages(train, averages)
    if method != "blindspot":
        counts = pd.Series(blocks.scans).value_counts()
        if len(counts) < 2 or counts.max() < 2:
            raise InputError(f"{method} needs at least 2 training scans with 2 x --averages ({2 * averages}) "
                             f"transients or more; got {len(counts)} scan(s) with at most "
                             f"{counts.max() * averages} usable transients (give --train or lower --averages)",
                             file=train.source)
    parts, _ = _parts(blocks)
    params = {"seed": seed, "epochs": 0 if method == "savgol" else epochs, "max_seconds": max_seconds, "device": device}
    if method == "blindspot":
        return methods("denoise")["blindspot"](**params).fit(parts)
    return methods("denoise")["noise2noise"](**params).fit(parts, groups=parts.meta["group"].to_numpy())


def denoise_mrs(denoiser, data):
    """`data` with its spectra inside DENOISE_PPM replaced by the denoiser's output (unchanged for None)."""
    from speclearn.mrs.data import to_fid
    if denoiser is None:
        return data
    parts, window = _parts(data)
    cleaned = denoiser.transform(parts).values()
    spectrum = data.spectrum()
    spectrum[:, window] = cleaned[:data.n] + 1j * cleaned[data.n:]
    return data.with_fid(to_fid(spectrum))


def acquisition(dwell_time: float | None, central_frequency: float | None, te: float | None) -> dict:
    """The reader keywords of --dwell-time, --central-frequency and --te."""
    return {"dwell_time_s": dwell_time, "central_frequency_mhz": central_frequency, "te_ms": te}


def _read(path: Path, given: dict, water: Path | None = None):
    """(data, water reference or None) read with the --dwell-time ... keywords, coils combined
    (`combine_coils`: the reference's weights for both when it has coils), conjugated when they follow
    the opposite sign convention (`conjugate_mirrored`)."""
    from speclearn.mrs.io import read_mrs
    from speclearn.mrs.preprocess import combine_coils, conjugate_mirrored
    data, reference = combine_coils(read_mrs(path, **given), None if water is None else read_mrs(water, **given))
    data, reference, conjugated = conjugate_mirrored(data, reference)
    if conjugated:
        say(f"{path.name}: peaks on the far side of 4.65 ppm (the opposite sign convention): conjugated"
            + (" with the water reference" if reference is not None else ""))
    return data, reference


def _warn_echo_time(expected: float | None, data, what: str) -> None:
    """A console warning when `data` were acquired at another echo time than `what` is for (> 5 ms apart)."""
    if expected is not None and data.te_ms is not None and abs(expected - data.te_ms) > 5:
        say(f"[yellow]warning:[/] {what} is for TE {expected:g} ms, the data were acquired at TE {data.te_ms:g} ms: "
            "J-coupled metabolites (Glu, Gln, GABA, lactate ...) will be misfitted")


def _warn_weak_creatine(tcr: pd.Series, sd: pd.Series) -> None:
    """A console warning naming the spectra whose creatine is below twice its sd: ratios to it mean nothing."""
    weak = tcr.index[~(tcr > 2 * sd)]
    if weak.size:
        say(f"[yellow]warning:[/] creatine below twice its uncertainty in {len(weak)} spectra "
            f"({', '.join(map(str, weak[:5]))}{' ...' if len(weak) > 5 else ''}): their ratios to tCr are not "
            "meaningful; a water reference gives mM instead")


def _basis(path: Path | None, given: dict, data):
    """`load_basis` (the shipped set for None), with a warning when its echo time is not the data's."""
    from speclearn.mrs.basis import load_basis
    basis = load_basis(path, **given)
    _warn_echo_time(basis.te_ms, data, "the basis")
    return basis


def write_concentrations(table: pd.DataFrame, unit: str, path: Path, info: dict, *, overwrite: bool) -> None:
    """CONC.csv plus CONC.json sidecar (units, method ...)."""
    sidecar = path.with_suffix(".json")
    check_output(sidecar, overwrite=overwrite)
    write_table_csv(table, path, overwrite=overwrite)
    with atomic_path(sidecar, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps({"units": unit, "sd_columns": "<name>_sd: same unit"} | info, indent=2, default=str))


@app.command("align")
def align(spectra: MRSIn, out: OutOption,
          method: Annotated[str, typer.Option(help="auto (CNN + registration), cnn or registration.")] = "auto",
          shifts: Annotated[Path | None, typer.Option("--shifts", help="CSV of the estimated offsets per transient "
                                                                       "(id, scan, shift_hz, phase_deg).")] = None,
          dwell_time: DwellTimeOption = None, central_frequency: FrequencyOption = None, te: EchoTimeOption = None,
          device: DeviceOption = "auto", overwrite: OverwriteOption = False) -> None:
    """Frequency/phase-align the transients of each scan; write the aligned FIDs (.npz or NIfTI-MRS)."""
    from speclearn.mrs.io import write_mrs
    check_output(out, overwrite=overwrite, inputs=[spectra])
    data = _read(spectra, acquisition(dwell_time, central_frequency, te))[0]
    aligned, shift, phase, used = align_transients(data, method, device)
    write_mrs(aligned, out, overwrite=overwrite)
    if shifts is not None:
        table = pd.DataFrame({"scan": data.scans, "shift_hz": shift, "phase_deg": phase},
                             index=pd.Index(data.ids, name="id"))
        write_table_csv(table, shifts, overwrite=overwrite)
    say(f"aligned {data.n} transients of {len(data.scan_names())} scans ({used}) -> {out}")


@app.command("fit")
def fit(spectra: MRSIn, out: OutOption, water: WaterOption = None, basis: BasisOption = None,
        ecc: Annotated[bool, typer.Option("--ecc/--no-ecc", metavar="", help="Eddy-current correction from the water "
                                                                 "reference.")] = True,
        dwell_time: DwellTimeOption = None, central_frequency: FrequencyOption = None, te: EchoTimeOption = None,
        scheduler: SchedulerOption = None, report: ReportOption = None, quiet: QuietOption = False,
        overwrite: OverwriteOption = False) -> None:
    """Classical linear-combination fit with Cramer-Rao lower bounds (transients are aligned, outliers
    rejected and averaged per scan first). Spectroscopic imaging: one row per voxel; --scheduler spreads
    the fits over a dask cluster."""
    from speclearn.distributed import scheduler as dask_scheduler
    from speclearn.mrs.lcm import LinearCombinationFit, fit_on_cluster
    from speclearn.mrs.preprocess import eddy_current_correction
    check_output(out, overwrite=overwrite, inputs=[spectra])
    check_report(report, overwrite=overwrite, inputs=[spectra, water, out])
    given = acquisition(dwell_time, central_frequency, te)
    data, reference = _read(spectra, given, water)
    data = prepare(data)
    if reference is not None:
        reference = prepare(reference, align=False, reject=None)
        if ecc:
            data = eddy_current_correction(data, reference)
    basis_set = _basis(basis, given, data)
    with dask_scheduler(scheduler) as client:
        model = LinearCombinationFit()
        model = model.fit(data, basis_set) if client is None else fit_on_cluster(model, data, basis_set, client)
    table, unit = model.concentrations(reference)
    if unit == "ratio to tCr":
        values, crlb = model.amplitude_table()
        _warn_weak_creatine(values["tCr"], crlb["tCr"])
    write_concentrations(table, unit, out, {"method": "linear-combination fit (variable projection) + CRLB",
                                            "sd": "Cramer-Rao lower bound", "params": model.get_params(),
                                            "seconds_per_spectrum": model.seconds_per_spectrum_,
                                            "nuisance": model.nuisance().reset_index().to_dict("records")},
                         overwrite=overwrite)
    say(f"fitted {data.n} spectra ({unit}) in {model.seconds_per_spectrum_:.2f} s each -> {out}")
    write_report(report, "mrs fit", inputs={"spectra": spectra, "water": water, "basis": basis or "default",
                                            "unit": unit}, table=table)


@app.command("train")
def train_command(spectra: MRSIn, out: OutOption, basis: BasisOption = None,
                  targets: Annotated[Path | None, typer.Option("--targets", help="Concentrations CSV (id + one "
                                                                                 "column per basis name, mM).")] = None,
                  method: Annotated[str, typer.Option(help="varpro (CNN nuisance, least-squares amplitudes, MAP "
                                                           "refinement; labels optional) or supervised (CNN "
                                                           "regressing the amplitudes; needs --targets).")] = "varpro",
                  epochs: Annotated[int, typer.Option(help="Training epochs.")] = 80,
                  max_seconds: Annotated[float | None, typer.Option(help="Stop training after this long.")] = None,
                  water: WaterOption = None, seed: SeedOption = 0, dwell_time: DwellTimeOption = None,
                  central_frequency: FrequencyOption = None, te: EchoTimeOption = None, device: DeviceOption = "auto",
                  report: ReportOption = None, quiet: QuietOption = False, overwrite: OverwriteOption = False) -> None:
    """Train the DL quantifier (CNN encoder + basis-model decoder) on averaged spectra (eddy-current
    corrected with --water, which also puts varpro's conformal calibration in mM)."""
    from speclearn.mrs.quantifier import DLQuantifier
    check_output(out, overwrite=overwrite)
    check_report(report, overwrite=overwrite, inputs=[spectra, basis, targets, out])
    given = acquisition(dwell_time, central_frequency, te)
    data, reference = _read(spectra, given, water)
    data = prepare(data)
    table = read_table_csv(targets) if targets is not None else None
    reference = prepare(reference, align=False, reject=None) if reference is not None else None
    if reference is not None:
        from speclearn.mrs.preprocess import eddy_current_correction
        data = eddy_current_correction(data, reference)
    model = DLQuantifier(method=method, epochs=epochs, max_seconds=max_seconds, seed=seed, device=device).fit(
        data, _basis(basis, given, data), table, water=reference)
    model.save(out, overwrite=overwrite)
    say(f"trained the {method} MRS quantifier on {data.n} spectra ({model.history_.stopped}) -> {out}")
    write_report(report, "mrs train", inputs={"spectra": spectra, "basis": basis, "targets": targets, "method": method,
                                              "epochs": epochs, "seed": seed}, model=out)


@app.command("predict")
def predict(model: Annotated[Path, typer.Option("--model", help="Model folder from `speclearn mrs train`.")],
            spectra: MRSIn, out: OutOption, water: WaterOption = None,
            interval: Annotated[float | None, typer.Option(help="Conformal interval level, e.g. 0.9 "
                                                                "(adds <name>_lo/_hi).")] = None,
            ecc: Annotated[bool, typer.Option("--ecc/--no-ecc", help="Eddy-current correction from the water "
                                                                     "reference.")] = True,
            dwell_time: DwellTimeOption = None, central_frequency: FrequencyOption = None, te: EchoTimeOption = None,
            device: DeviceOption = "auto", scheduler: SchedulerOption = None, report: ReportOption = None,
            quiet: QuietOption = False, overwrite: OverwriteOption = False) -> None:
    """Metabolite concentrations from the DL quantifier (sd columns: conformally calibrated MC-dropout
    spread, or CRLB for varpro models)."""
    from speclearn.models import load, use_device
    from speclearn.mrs.quantifier import DLQuantifier
    check_output(out, overwrite=overwrite, inputs=[spectra])
    check_report(report, overwrite=overwrite, inputs=[spectra, model, out, water])
    quantifier = use_device(load(model, DLQuantifier), device)
    data, reference = _read(spectra, acquisition(dwell_time, central_frequency, te), water)
    data = prepare(data)
    _warn_echo_time(quantifier.axis_.get("te_ms"), data, "the model")
    reference = prepare(reference, align=False, reject=None) if reference is not None else None
    if reference is not None and ecc:
        from speclearn.mrs.preprocess import eddy_current_correction
        data = eddy_current_correction(data, reference)
    from speclearn.distributed import scheduler as dask_scheduler
    with dask_scheduler(scheduler) as client:
        table, unit = quantifier.predict(data, water=reference, interval=interval) if client is None else \
            quantifier.predict_on_cluster(data, client, water=reference, interval=interval)
    if unit == "ratio to tCr":
        _warn_weak_creatine(table["tCr"], table["tCr_sd"])
    write_concentrations(table, unit, out, {"method": f"DL quantifier ({quantifier.method})", "model": str(model),
                                            "sd": ("CRLB" if quantifier.method == "varpro" else "MC dropout")
                                            + (", conformally calibrated" if quantifier.conformal_ else
                                               " (uncalibrated)"), "interval": interval},
                         overwrite=overwrite)
    say(f"predicted {data.n} spectra ({unit}) -> {out}")
    write_report(report, "mrs predict", inputs={"model": model, "spectra": spectra, "water": water, "unit": unit,
                                                "interval": interval}, table=table, model=model)


@app.command("denoise")
def denoise(spectra: MRSIn, out: OutOption,
            method: Annotated[str, typer.Option(help="noise2noise (trained on replicate averages), blindspot "
                                                     "(Noise2Self, single averages), savgol (noise2noise's "
                                                     "smoother alone) or none (the plain average).")] = "noise2noise",
            averages: Annotated[int | None, typer.Option("--averages", help="Transients per output average: the "
                                                                            "first K of each scan (default: the "
                                                                            "fewest a scan has).")] = None,
            train: Annotated[Path | None, typer.Option("--train", help="Transients of scans to train on (default: "
                                                                       "--spectra); per scan, blocks of --averages "
                                                                       "transients are the replicates.")] = None,
            epochs: Annotated[int, typer.Option(help="Training epochs of the network.")] = 200,
            max_seconds: Annotated[float | None, typer.Option(help="Stop training after this long.")] = None,
            seed: SeedOption = 0, dwell_time: DwellTimeOption = None, central_frequency: FrequencyOption = None,
            te: EchoTimeOption = None, device: DeviceOption = "auto", report: ReportOption = None,
            quiet: QuietOption = False, overwrite: OverwriteOption = False) -> None:
    """Denoise few-average spectra: align the transients (registration), leave outliers out, average the
    first --averages of each scan and denoise the 0-4.4 ppm part of its spectrum (real and imaginary parts
    as separate spectra); writes one FID per scan (.npz or NIfTI-MRS) for `mrs fit`. The fit's CRLBs
    assume white noise: on denoised spectra they no longer describe the error."""
    from speclearn.mrs.io import write_mrs
    check_output(out, overwrite=overwrite, inputs=[spectra, train])
    check_report(report, overwrite=overwrite, inputs=[spectra, train, out])
    given = acquisition(dwell_time, central_frequency, te)
    data = _clean_transients(_read(spectra, given)[0])
    k = averages if averages is not None else int(pd.Series(data.scans).value_counts().min())
    if train is None:
        training = data
    else:
        training = _clean_transients(_read(train, given)[0])
        training.check_acquisition(data.acquisition(), what=f"--spectra {spectra.name}")
    few = block_averages(data, k, first=True)
    denoiser = fit_few_average_denoiser(training, k, method, seed=seed, epochs=epochs, max_seconds=max_seconds,
                                        device=device)
    result = denoise_mrs(denoiser, few)
    write_mrs(result, out, overwrite=overwrite)
    trained = "" if denoiser is None else f", trained on {len(training.scan_names())} scans"
    verb = "wrote" if denoiser is None else "denoised"
    say(f"{verb} {result.n} averages of {k} transients ({method}{trained}) -> {out}")
    write_report(report, "mrs denoise", inputs={"spectra": spectra, "train": train, "method": method, "averages": k,
                                                "epochs": epochs, "seed": seed})


def _clean_transients(data, reject: float = 3.0):
    """Transients aligned (registration), robust-z outliers left out (as `prepare` before averaging)."""
    from speclearn.mrs.preprocess import transient_outlier_scores
    data = align_transients(data, "registration")[0]
    return data.select(np.flatnonzero(transient_outlier_scores(data) <= reject))


@app.command("qa")
def qa(spectra: MRSIn, out: OutOption,
       threshold: Annotated[float, typer.Option(help="Robust z-score above which the classical check flags.")] = 3.0,
       dwell_time: DwellTimeOption = None, central_frequency: FrequencyOption = None, te: EchoTimeOption = None,
       device: DeviceOption = "auto", report: ReportOption = None, quiet: QuietOption = False,
       overwrite: OverwriteOption = False) -> None:
    """Flag corrupted transients (motion, ghosts): CNN detector where it matches the data, else robust z."""
    from speclearn.mrs.artifacts import TransientDetector
    from speclearn.mrs.preprocess import transient_outlier_scores
    check_output(out, overwrite=overwrite, inputs=[spectra])
    check_report(report, overwrite=overwrite, inputs=[spectra, out])
    data = _read(spectra, acquisition(dwell_time, central_frequency, te))[0]
    aligned = align_transients(data, "registration")[0]
    z = transient_outlier_scores(aligned)
    table = pd.DataFrame({"scan": data.scans, "outlier_z": z, "classical_flag": z > threshold},
                         index=pd.Index(data.ids, name="id"))
    detector = load_shipped("detector", TransientDetector, device)
    try:
        if detector is None:
            raise InputError("no shipped detector")
        table["cnn_score"] = detector.score(aligned)
        table["corrupted"] = table["cnn_score"] > detector.threshold_
        used = "cnn"
    except InputError:
        table["corrupted"] = table["classical_flag"]
        used = "robust z"
    write_table_csv(table, out, overwrite=overwrite)
    say(f"flagged {int(table['corrupted'].sum())} of {data.n} transients ({used}) -> {out}")
    write_report(report, "mrs qa", inputs={"spectra": spectra, "threshold": threshold, "detector": used}, table=table)


def simulate(out: OutOption, basis: BasisOption = None, n: Annotated[int, typer.Option("--n", help="Number of scans.")] = 20,
             seed: SeedOption = 0,
             transients: Annotated[int, typer.Option(help="Transients per scan.")] = 16,
             snr: Annotated[str, typer.Option(help="SNR of the averaged spectrum (NAA height / noise sd): "
                                                   "a number or LOW:HIGH.")] = "20:60",
             corrupted: Annotated[float, typer.Option(help="Share of corrupted transients.")] = 0.1,
             like: Annotated[Path | None, typer.Option("--like", help="MRS file whose dwell time and point count the "
                                                                      "simulation takes (the basis resampled to them), "
                                                                      "e.g. to train `mrs train` for real data.")] = None,
             dwell_time: DwellTimeOption = None, central_frequency: FrequencyOption = None, te: EchoTimeOption = None,
             overwrite: OverwriteOption = False) -> None:
    """Simulate MRS scans into the folder OUT: transients.npz, spectra.npz (oracle average), clean.npz,
    water.npz, concentrations.csv (mM), scans.csv, offsets.csv (per-transient truth), simulation.json."""
    from speclearn.mrs.basis import load_basis
    from speclearn.mrs.simulate import MRSSimConfig, simulate_mrs
    low, _, high = snr.partition(":")
    try:
        snr_range = (float(low), float(high or low))
    except ValueError:
        raise InputError(f"--snr must be a number or LOW:HIGH, got {snr!r}") from None
    config = MRSSimConfig(transients=transients, snr=snr_range, corrupted_fraction=corrupted)
    given = acquisition(dwell_time, central_frequency, te)
    basis_set = load_basis(basis, **given)
    if like is not None:
        basis_set = basis_set.matched(_read(like, given)[0])
    simulation = simulate_mrs(n, seed=seed, basis=basis_set, config=config)
    simulation.write(out, overwrite=overwrite)
    say(f"wrote {n} scans x {transients} transients ({basis_set.points} points, {1 / basis_set.dwell_time_s:g} Hz) "
        f"to {out}")

