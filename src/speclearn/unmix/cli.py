"""`speclearn unmix train --spectra MAP --components K --out DIR` and `speclearn unmix predict --model DIR --spectra MAP --out DIR`."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from speclearn.cli.common import (AxisOption, DeviceOption, OverwriteOption, QuietOption, ReportOption, SchedulerOption,
                                  SeedOption, check_report, say, write_report)
from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import atomic_path, check_output, read_spectra, write_spectra

app = typer.Typer(no_args_is_help=True,
                  help="Unmix a spectrum image (y, x, energy) into component spectra and abundance maps.")

CubeOption = Annotated[Path, typer.Option("--spectra", help="Spectrum image: .zarr, .h5, .npy or .hspy.")]
DirOption = Annotated[Path, typer.Option("--out", help="Output folder.")]
UNMIX_FILES = ("components.csv", "components.npy", "abundances.npy", "abundance_maps.png", "component_spectra.png",
               "summary.json", "model")
APPLY_FILES = ("abundances.npy", "abundance_maps.png", "summary.json")


def _prepare_out(out: Path, names: tuple[str, ...], overwrite: bool, inputs: list[Path]) -> None:
    """Create the folder; refuse existing outputs (unless --overwrite) and outputs that are inputs."""
    if out.exists() and not out.is_dir():
        raise InputError("--out must be a folder", file=out)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        check_output(out / name, overwrite=overwrite, inputs=inputs)


def _write_npy(path: Path, array: np.ndarray, overwrite: bool) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        np.save(tmp, array)


def _write_json(path: Path, payload: dict, overwrite: bool) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(payload, indent=2))


def _write_maps(out: Path, abundances: np.ndarray, overwrite: bool) -> None:
    from speclearn.unmix.plots import plot_maps
    check_output(out / "abundance_maps.png", overwrite=overwrite)
    plot_maps({"component": abundances}, out / "abundance_maps.png", vmax=None)


def _parse_elements(text: str | None) -> list[str]:
    return [e.strip() for e in text.split(",") if e.strip()] if text else []


@app.command("train")
def train_command(
    cube: CubeOption,
    out: DirOption,
    components: Annotated[int | None, typer.Option("--components", min=1, help="Number of components K (default: "
                                                   "estimated from the eigenvalues of the Poisson-weighted data).")] = None,
    method: Annotated[str, typer.Option("--method", help="psnmf, nmf or pca-nmf.")] = "psnmf",
    bin_factor: Annotated[str, typer.Option("--bin", help="PSNMF: bin b x b pixels in step 1, or 'auto'.")] = "4",
    loss: Annotated[str, typer.Option("--loss", help="nmf / pca-nmf: kullback-leibler or frobenius.")] = "kullback-leibler",
    refine: Annotated[bool, typer.Option("--refine/--fixed", metavar="", help="PSNMF: refine the spectra in step 2.")] = False,
    smoothness: Annotated[float, typer.Option("--smoothness", help="PSNMF: spatial smoothness of the maps (0 = off).")] = 0.0,
    elements: Annotated[str | None, typer.Option("--elements", help="Fe,Pt,...: quantify each component (energy axis); "
                                                 "default: the elements in the file's metadata (.hspy, .bcf, ...).")] = None,
    beam_kv: Annotated[float | None, typer.Option("--beam-kv", help="Beam energy for --elements; default: the file's "
                                                  "metadata, else 200.")] = None,
    seed: SeedOption = 0,
    axis: AxisOption = None,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Unmix --spectra (a spectrum image) into --components spectra and maps; the model goes to OUT/model."""
    from speclearn.unmix import METHODS, FixedSpectraUnmixer
    from speclearn.models import use_device
    from speclearn.unmix.model import component_names
    from speclearn.unmix.plots import plot_spectra
    if method not in METHODS:
        raise InputError(f"unknown --method {method!r}; choose {', '.join(METHODS)}")
    _prepare_out(out, UNMIX_FILES, overwrite, [cube])
    check_report(report, overwrite=overwrite, inputs=[cube, out])
    data = read_spectra(cube, axis=axis)
    if bin_factor != "auto" and not bin_factor.isdigit():
        raise InputError(f"--bin must be a positive integer or 'auto', got {bin_factor!r}")
    eigenvalues = None
    if components is None:
        from speclearn.unmix.rank import estimate_components
        components, eigenvalues = estimate_components(data, seed=seed)
        say(f"--components not given: {components} estimated (leading eigenvalues of the Poisson-weighted "
            f"data: {', '.join(f'{v:.3g}' for v in eigenvalues[:components + 2])})")
    options = {"psnmf": {"bin_factor": bin_factor if bin_factor == "auto" else int(bin_factor),
                         "refine_spectra": refine, "smoothness": smoothness, "progress": True},
               "nmf": {"loss": loss}, "pca-nmf": {"loss": loss}}[method]
    estimator = use_device(METHODS[method](components, random_state=seed, **options), device)
    start = time.perf_counter()
    estimator.fit(data)
    runtime = time.perf_counter() - start
    spectra = estimator.components_
    header = Spectra(spectra, data.axis, axis_kind=data.axis_kind, axis_unit=data.axis_unit,
                     meta=pd.DataFrame(index=pd.Index(component_names(components), name="id")))
    write_spectra(header, out / "components.csv", overwrite=overwrite)
    _write_npy(out / "components.npy", spectra, overwrite)
    _write_npy(out / "abundances.npy", estimator.abundances_, overwrite)
    _write_maps(out, estimator.abundances_, overwrite)
    check_output(out / "component_spectra.png", overwrite=overwrite)
    plot_spectra(data.axis, {"component": spectra}, out / "component_spectra.png",
                 xlabel=f"{data.axis_kind} ({data.axis_unit})" if data.axis_unit else data.axis_kind)
    summary = {"cube": str(cube), "shape": list(data.intensity.shape), "axis": data.describe_axis(),
               "method": method, "params": {k: v for k, v in estimator.get_params().items()
                                            if isinstance(v, (int, float, str, bool, type(None)))},
               "runtime_s": runtime, "bin_factor_used": getattr(estimator, "bin_factor_", None),
               "components_estimated": eigenvalues is not None,
               **({"eigenvalues": eigenvalues.tolist()} if eigenvalues is not None else {}),
               "mean_abundance": estimator.abundances_.reshape(components, -1).mean(axis=1).tolist()}
    element_list = _parse_elements(elements) or list(data.attrs.get("elements", []))
    beam_kv = beam_kv if beam_kv is not None else float(data.attrs.get("beam_energy_kv", 200.0))
    if element_list:
        if data.axis_kind != "energy":
            raise InputError("--elements needs a cube on an energy axis (keV)", file=cube)
        from speclearn.unmix.quantify import quantify_spectrum
        axis_kev = data.axis / 1000 if data.axis_unit.lower() == "ev" else data.axis
        summary["elements"], summary["beam_kv"] = element_list, beam_kv
        summary["composition_weight_fraction"] = {
            name: quantify_spectrum(spectrum, axis_kev, element_list, beam_kv=beam_kv).weight_fractions
            for name, spectrum in zip(component_names(components), spectra)}
    FixedSpectraUnmixer(sum_to_one=estimator.sum_to_one).fit(
        estimator.components_, data.axis_spec(), fitted_with={"method": method, "cube": str(cube)}
    ).save(out / "model", overwrite=overwrite)
    _write_json(out / "summary.json", summary, overwrite)
    say(f"wrote {components} components of {cube} ({method}, {runtime:.1f} s) to {out}")
    write_report(report, "unmix train", inputs={"spectra": cube, "components": components, "method": method,
                                                "seed": seed}, spectra=data, components=header, model=out / "model",
                 maps={"abundance": estimator.abundances_})


@app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Option("--model", help="Model folder (or an `unmix train` output folder).")],
    cube: Annotated[Path, typer.Option("--spectra", help="Spectrum image on the model's axis.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    axis: AxisOption = None,
    device: DeviceOption = "auto",
    scheduler: SchedulerOption = None,
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Abundance maps of a new cube with the saved component spectra fixed (Poisson fit, streamed)."""
    from speclearn.models import resolve_device
    from speclearn.unmix.model import apply_unmixing
    if device == "cuda":
        resolve_device(device)
        raise InputError("unmixing computes with numpy on the CPU; use --device cpu or auto")
    _prepare_out(out, APPLY_FILES, overwrite, [cube])
    check_report(report, overwrite=overwrite, inputs=[cube, model, out])
    data = read_spectra(cube, axis=axis)
    start = time.perf_counter()
    if scheduler:
        from speclearn.distributed import scheduler as cluster, unmix_lazy
        from speclearn.unmix.model import load_unmixing
        unmixer = load_unmixing(model)
        unmixer.check_spectra(data)
        with cluster(scheduler):
            abundances = np.asarray(unmix_lazy(data.intensity, unmixer.components_,
                                               sum_to_one=unmixer.sum_to_one).compute())
    else:
        abundances = apply_unmixing(model, data, progress=True)
    runtime = time.perf_counter() - start
    _write_npy(out / "abundances.npy", abundances, overwrite)
    _write_maps(out, abundances, overwrite)
    _write_json(out / "summary.json", {"cube": str(cube), "model": str(model), "shape": list(data.intensity.shape),
                                       "runtime_s": runtime,
                                       "mean_abundance": abundances.reshape(abundances.shape[0], -1).mean(axis=1).tolist()},
                overwrite)
    say(f"wrote abundance maps of {cube} to {out}")
    write_report(report, "unmix predict", inputs={"model": model, "spectra": cube}, spectra=data, model=model if (
        model / "config.json").exists() else model / "model", maps={"abundance": abundances})
