"""Foundation commands: inspect, preprocess, demo."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from speclearn.cli.common import (AxisOption, OutOption, OverwriteOption, QuietOption, ReportOption, SchedulerOption,
                                  SeedOption, SpectraOption, check_outputs, say, write_report)
from speclearn.core.errors import InputError
from speclearn.io import align_table, read_spectra, read_table_csv, write_spectra


def inspect(file: Annotated[Path | None, typer.Argument(help="Any readable spectra file, or a model folder.")] = None,
            spectra: Annotated[Path | None, typer.Option("--spectra", help="The same as FILE, spelled like every "
                                                                           "other command's input.")] = None,
            axis: AxisOption = None) -> None:
    """Print what to know first about a spectra file or a model folder; exit 2 with a precise message if it
    is invalid."""
    if (file is None) == (spectra is None):
        raise InputError("give one file to inspect: speclearn inspect FILE (or --spectra FILE)")
    file = file or spectra
    if file.is_dir() and (file / "config.json").exists():
        return _inspect_model(file)
    if _is_mrs(file):
        return _inspect_mrs(file)
    spectra = read_spectra(file, axis=axis)
    flat = spectra.flat()
    if spectra.is_lazy:
        import dask
        low, high, nan = dask.compute(flat.min(), flat.max(), (~np.isfinite(flat)).sum())
    else:
        low, high, nan = flat.min(), flat.max(), (~np.isfinite(flat)).sum()
    shape = " x ".join(map(str, spectra.intensity.shape))
    kind = "spectrum image (y x x x channels)" if spectra.is_image else "spectra (spectra x channels)"
    ids = spectra.ids
    shown = ", ".join(ids[:5]) + (f", ... ({len(ids)} ids)" if len(ids) > 5 else "")
    typer.echo(f"file:      {file}")
    typer.echo(f"layout:    {kind}, shape {shape}{', lazy (dask)' if spectra.is_lazy else ''}")
    typer.echo(f"axis:      {spectra.describe_axis()}")
    typer.echo(f"values:    {float(low):.6g} .. {float(high):.6g}")
    typer.echo(f"NaN/inf:   {int(nan)}")
    typer.echo(f"ids:       {shown}")
    if len(spectra.meta.columns):
        typer.echo(f"metadata:  {', '.join(map(str, spectra.meta.columns))}")
    if nan:
        raise InputError(f"{int(nan)} values are NaN or infinite", file=file)


def _is_mrs(file: Path) -> bool:
    """An MRS file (`speclearn.mrs.io`): NIfTI-MRS, LCModel, text, or an NPZ holding `fid`."""
    import zipfile

    from speclearn.mrs.io import READABLE, suffix_of
    suffix = suffix_of(file)
    if suffix != ".npz":
        return suffix in READABLE and file.is_file()
    try:
        with np.load(file, allow_pickle=False) as archive:
            return "fid" in archive.files
    except (OSError, ValueError, zipfile.BadZipFile):
        return False  # read_spectra names the problem


def _inspect_mrs(file: Path) -> None:
    from speclearn.mrs.io import read_mrs
    data = read_mrs(file)
    dims = ", ".join(f"{tag} {size}" for tag, size in data.dims) or "no NIfTI-MRS dimensions"
    scans = data.scan_names()
    typer.echo(f"file:      {file}")
    typer.echo(f"layout:    MRS FIDs, {data.n} x {data.points} points ({dims}), {len(scans)} scan(s)")
    typer.echo(f"acquired:  dwell {1e3 * data.dwell_time_s:g} ms ({data.bandwidth_hz:g} Hz), "
               f"{data.central_frequency_mhz:g} MHz ({data.central_frequency_mhz / 42.577:.2f} T), "
               f"TE {'unknown' if data.te_ms is None else f'{data.te_ms:g} ms'}")
    typer.echo(f"|FID|:     max {np.abs(data.fid).max():.6g}")
    shown = ", ".join(data.ids[:5]) + (f", ... ({data.n} ids)" if data.n > 5 else "")
    typer.echo(f"ids:       {shown}")


def _inspect_model(folder: Path) -> None:
    """Model type, targets, axis and, for `--method auto` models, the cross-validated ranking."""
    from speclearn.models import load_model
    from speclearn.models.selection import KEY, show

    model = load_model(folder)
    typer.echo(f"model:     {folder} ({model.model_type}, speclearn {model.version})")
    typer.echo(f"params:    {', '.join(f'{k}={v}' for k, v in model.params.items())}")
    if model.targets:
        typer.echo(f"targets:   {', '.join(map(str, model.targets))}")
    axis = model.axis.get("values", [])
    if len(axis):
        typer.echo(f"axis:      {len(axis)} channels, {axis[0]:g} .. {axis[-1]:g} {model.axis.get('unit') or ''}")
    if "domain.components" in model.arrays:
        from speclearn.models.domain import OUTSIDE
        components = len(model.arrays["domain.components"])
        typer.echo(f"domain:    training spectra kept as {components} principal components; predict warns on spectra "
                   f"over {OUTSIDE:g}x their spread")
    if KEY in model.extra:
        show(model.extra[KEY], stdout=True)


def _range(text: str, flag: str) -> tuple[float | None, float | None]:
    try:
        low, high = text.split(":")
        return (float(low) if low else None, float(high) if high else None)
    except ValueError:
        raise InputError(f"{flag} must look like LOW:HIGH, got {text!r}") from None


def preprocess(
    spectra: SpectraOption,
    out: OutOption,
    pipeline: Annotated[Path | None, typer.Option(help="YAML file listing the steps (overrides the flags).")] = None,
    crop: Annotated[str | None, typer.Option(help="Keep LOW:HIGH (axis units).")] = None,
    mask: Annotated[str | None, typer.Option(help="'chemcam' or LOW:HIGH,LOW:HIGH bands to drop.")] = None,
    baseline: Annotated[str | None, typer.Option(help="snip, arpls, asls, rolling_min, ...")] = None,
    savgol: Annotated[str | None, typer.Option(help="WINDOW,POLYORDER[,DERIV] Savitzky-Golay filter.")] = None,
    normalize: Annotated[str | None, typer.Option(help="snv, area or max.")] = None,
    resample: Annotated[str | None, typer.Option(help="START:STOP:N new axis.")] = None,
    scale: Annotated[bool, typer.Option("--scale/--no-scale", metavar="", help="Standard-scale every channel.")] = False,
    average_by: Annotated[str | None, typer.Option(help="Average spectra sharing this metadata column.")] = None,
    metadata: Annotated[Path | None, typer.Option(help="Metadata CSV (id + columns) for --average-by.")] = None,
    axis: AxisOption = None,
    scheduler: SchedulerOption = None,
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Apply a preprocessing pipeline (flags or YAML) to a file and write the result (Zarr/HDF5 input streams
    chunk by chunk)."""
    from speclearn.distributed import scheduler as cluster
    with cluster(scheduler):
        _preprocess(spectra, out, pipeline, crop, mask, baseline, savgol, normalize, resample, scale, average_by,
                    metadata, axis, report, overwrite)


def _preprocess(spectra, out, pipeline, crop, mask, baseline, savgol, normalize, resample, scale, average_by,
                metadata, axis, report, overwrite) -> None:
    from speclearn.preprocessing import CHEMCAM_MASKED_BANDS, average_by_group, preprocess as apply_pipeline, read_spec

    check_outputs(out, report=report, overwrite=overwrite, inputs=[spectra, pipeline, metadata])
    data = read_spectra(spectra, axis=axis)
    if pipeline is not None:
        spec = read_spec(pipeline)
    else:
        spec = []
        if crop:
            low, high = _range(crop, "--crop")
            spec.append({"crop": {"start": low, "stop": high}})
        if mask:
            bands = CHEMCAM_MASKED_BANDS if mask == "chemcam" else [_range(b, "--mask") for b in mask.split(",")]
            spec.append({"mask": {"bands": [tuple(b) for b in bands]}})
        if baseline:
            spec.append({"baseline": {"method": baseline}})
        if savgol:
            try:
                numbers = [int(v) for v in savgol.split(",")]
            except ValueError:
                raise InputError(f"--savgol must be WINDOW,POLYORDER[,DERIV], got {savgol!r}") from None
            spec.append({"savgol": dict(zip(("window_length", "polyorder", "deriv"), numbers))})
        if normalize:
            spec.append({"normalize": {"method": normalize}})
        if resample:
            try:
                start, stop, n = resample.split(":")
                target = np.linspace(float(start), float(stop), int(n)).tolist()
            except ValueError:
                raise InputError(f"--resample must be START:STOP:N, got {resample!r}") from None
            spec.append({"resample": {"target_axis": target}})
        if scale:
            spec.append({"scale": {}})
    if average_by:
        if metadata is None:
            raise InputError("--average-by needs --metadata META.csv")
        table = align_table(read_table_csv(metadata), data, file=metadata)
        data = average_by_group(replace(data, meta=table), average_by)
    result, _ = apply_pipeline(data, spec)
    write_spectra(result, out, overwrite=overwrite)
    say(f"wrote {out}: {result.describe_axis()}, {result.n_spectra} spectra")
    write_report(report, "preprocess", inputs={"spectra": spectra, "steps": spec}, spectra=data, output=result)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and figures.")] = Path("speclearn-demo"),
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
) -> None:
    """Run the main job on built-in data and write an HTML report with PNG figures."""
    from speclearn.demo import run_demo

    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError("output folder exists and is not empty; pass --overwrite", file=out)
    path = run_demo(out, seed=seed)
    say(f"report written to {path}")
