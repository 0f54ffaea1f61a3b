"""Array formats for large sets and spectrum images: NPY/NPZ, and HDF5/NetCDF/Zarr via xarray.

The xarray layout (one for every container format): a Dataset with an `intensity` variable over
(`spectrum`, `channel`) or (`y`, `x`, `channel`); the `channel` coordinate holds the axis values
with attributes `kind` and `units`; the `spectrum` coordinate holds the ids; any other variable over
`spectrum` is per-spectrum metadata. Containers open lazily (dask), chunked over spectra/pixels.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError, existing
from speclearn.core.spectra import Spectra
from speclearn.io.atomic import MARKER, atomic_path, check_output
from speclearn.io.csv import read_sidecar, sidecar_path

XARRAY_SUFFIXES = {".zarr": "zarr", ".h5": "h5netcdf", ".hdf5": "h5netcdf", ".nc": "h5netcdf"}


def parse_axis_range(text: str, n_channels: int) -> np.ndarray:
    """`START:STOP` -> n_channels evenly spaced values from START to STOP inclusive."""
    try:
        start, stop = (float(part) for part in text.split(":"))
    except ValueError:
        raise InputError(f"--axis must look like START:STOP, got {text!r}") from None
    return np.linspace(start, stop, n_channels)


def _axis_for(path: Path, n_channels: int, axis: str | None) -> tuple[np.ndarray, str, str]:
    side = read_sidecar(path)
    kind, unit = side.get("kind", "channel"), side.get("unit", "")
    if axis is not None:
        return parse_axis_range(axis, n_channels), kind, unit
    if "values" in side:
        return np.asarray(side["values"], dtype=float), kind, unit
    if "start" in side and "stop" in side:
        return np.linspace(side["start"], side["stop"], n_channels), kind, unit
    return np.arange(n_channels, dtype=float), "channel", ""


def read_npy(path: str | Path, *, axis: str | None = None, lazy: bool = True) -> Spectra:
    """An `.npy` array (n, channels) or cube (y, x, channels); memory-mapped and wrapped lazily."""
    path = _existing_file(path)
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"not a valid .npy array ({str(err)[:80]})", file=path) from None
    if not isinstance(data, np.ndarray):
        raise InputError("not a .npy array (an .npz archive? name it .npz)", file=path)
    if data.ndim not in (2, 3):
        raise InputError(f"expected a 2-D (spectra, channels) or 3-D (y, x, channels) array, got "
                         f"shape {data.shape}", file=path)
    if data.size == 0:
        raise InputError("array is empty", file=path)
    values, kind, unit = _axis_for(path, data.shape[-1], axis)
    if lazy:
        import dask.array as da
        intensity = da.from_array(data, chunks=_pixel_chunks(data.shape))
    else:
        intensity = np.asarray(data)
    return Spectra(intensity, values, axis_kind=kind, axis_unit=unit, source=str(path))


def read_npz(path: str | Path) -> Spectra:
    """An `.npz` with `intensity`, `axis` and optional `ids`, `axis_kind`, `axis_unit`."""
    import zipfile
    path = _existing_file(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise InputError("not an .npz archive (a plain .npy array? name it .npy)", file=path)
            for key in ("intensity", "axis"):
                if key not in archive:
                    raise InputError(f"missing array {key!r} (found {', '.join(archive.files)[:80]})", file=path)
            arrays = {key: archive[key] for key in ("intensity", "axis", "ids", "axis_kind", "axis_unit")
                      if key in archive}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise InputError(f"not a readable .npz archive ({type(err).__name__}: {str(err)[:80]})", file=path) from None
    if arrays["axis"].dtype.kind not in "biuf":
        raise InputError(f"array 'axis' holds {arrays['axis'].dtype}, not numbers", file=path)
    ids = arrays["ids"].astype(str) if "ids" in arrays else None
    return Spectra(arrays["intensity"], arrays["axis"],
                   axis_kind=str(arrays.get("axis_kind", "channel")), axis_unit=str(arrays.get("axis_unit", "")),
                   meta=None if ids is None else pd.DataFrame(index=pd.Index(ids, name="id")),
                   source=str(path))


def _existing_file(path: str | Path) -> Path:
    path = existing(path)
    if path.is_dir():
        raise InputError(f"is a folder, expected a {path.suffix or 'data'} file", file=path)
    return path


def _pixel_chunks(shape: tuple[int, ...], target_bytes: int = 64 * 2**20) -> tuple[int, ...]:
    """Chunk over spectra/pixels, never over channels (every transformer sees whole spectra)."""
    per_row = shape[-1] * 8 * (shape[1] if len(shape) == 3 else 1)
    rows = int(max(1, min(shape[0], target_bytes // max(per_row, 1))))
    return (rows, *shape[1:])


def to_dataset(spectra: Spectra):
    """The documented xarray layout of `spectra`."""
    import xarray as xr
    channel = xr.Variable("channel", spectra.axis, attrs={"kind": spectra.axis_kind, "units": spectra.axis_unit})
    if spectra.is_image:
        ny, nx, _ = spectra.intensity.shape
        ds = xr.Dataset({"intensity": (("y", "x", "channel"), spectra.intensity)},
                        coords={"channel": channel, "y": np.arange(ny), "x": np.arange(nx)})
    else:
        coords: dict[str, Any] = {"channel": channel, "spectrum": np.asarray(spectra.ids, dtype=object)}
        ds = xr.Dataset({"intensity": (("spectrum", "channel"), spectra.intensity)}, coords=coords)
        for name in spectra.meta.columns:
            column = spectra.meta[name]
            values = column.to_numpy(dtype=float) if pd.api.types.is_numeric_dtype(column) \
                else column.astype(str).to_numpy(dtype=object)
            ds[str(name)] = ("spectrum", values)
    return ds


def from_dataset(ds, *, source: str) -> Spectra:
    """Spectra from the documented xarray layout (lazy when the dataset is)."""
    if "intensity" not in ds:
        raise InputError(f"no 'intensity' variable (found {', '.join(map(str, ds.data_vars)) or 'none'})", file=source)
    da = ds["intensity"]
    if da.dims[-1] != "channel" or da.ndim not in (2, 3):
        raise InputError(f"'intensity' must have dims (spectrum, channel) or (y, x, channel), got {da.dims}",
                         file=source)
    axis = ds["channel"].values if "channel" in ds.coords else np.arange(da.shape[-1], dtype=float)
    attrs = ds["channel"].attrs if "channel" in ds.coords else {}
    meta = None
    if da.ndim == 2:
        ids = [str(i) for i in ds["spectrum"].values] if "spectrum" in ds.coords else None
        extra = {name: _plain(ds[name].values) for name in ds.data_vars
                 if name != "intensity" and ds[name].dims == (da.dims[0],)}
        if ids is not None or extra:
            index = pd.Index(ids if ids is not None else [f"s{i}" for i in range(da.shape[0])], name="id")
            meta = pd.DataFrame(extra, index=index)
    return Spectra(da.data, axis, axis_kind=attrs.get("kind", "channel"), axis_unit=attrs.get("units", ""),
                   meta=meta, source=source)


def _plain(values: np.ndarray) -> np.ndarray:
    """Numbers stay numbers; any string dtype (fixed, variable, object) becomes Python str objects."""
    return values if values.dtype.kind in "biuf" else np.asarray([str(v) for v in values], dtype=object)


def read_xarray(path: str | Path) -> Spectra:
    """HDF5 / NetCDF / Zarr in the documented layout, opened lazily with dask."""
    import xarray as xr
    path = existing(path)
    engine = XARRAY_SUFFIXES[path.suffix.lower()]
    try:
        if engine == "zarr":
            import warnings
            with warnings.catch_warnings():  # the marker file of a speclearn output is no Zarr node
                warnings.filterwarnings("ignore", message=f"Object at {MARKER} is not recognized")
                ds = xr.open_zarr(path, chunks={}, consolidated=False)
        else:
            ds = xr.open_dataset(path, engine=engine, chunks={})
    except Exception as err:  # noqa: BLE001 - any backend failure is a bad file for the user
        raise InputError(f"cannot open as {engine} ({type(err).__name__}: {str(err)[:80]})", file=path) from None
    spectra = from_dataset(ds, source=str(path))
    rows, *rest = _pixel_chunks(spectra.intensity.shape)
    stored = spectra.intensity.chunks[0][0]  # whole storage chunks per task: each is decoded once
    return spectra.with_intensity(spectra.intensity.rechunk((max(stored, rows // stored * stored), *rest)))


def write_xarray(spectra: Spectra, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the documented layout to Zarr or HDF5/NetCDF, streaming dask chunks, atomically."""
    path = Path(path)
    ds = to_dataset(spectra)
    engine = XARRAY_SUFFIXES[path.suffix.lower()]
    if engine == "zarr":
        chunks = _pixel_chunks(spectra.intensity.shape)
        ds = ds.chunk(dict(zip(ds["intensity"].dims, chunks)))
        for name in ds.variables:
            ds[name].encoding.pop("chunks", None)
        with atomic_path(path, overwrite=overwrite, directory=True, kind="zarr") as tmp:
            ds.to_zarr(tmp, mode="w", consolidated=False)
    else:
        with atomic_path(path, overwrite=overwrite) as tmp:
            ds.to_netcdf(tmp, engine="h5netcdf")
    return path


def write_npy(spectra: Spectra, path: str | Path, *, overwrite: bool = False) -> Path:
    """The intensity array as `.npy`, with the axis in a sidecar JSON."""
    path = Path(path)
    check_output(sidecar_path(path), overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if spectra.is_lazy:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=spectra.intensity.dtype,
                                            shape=spectra.intensity.shape)
            spectra.intensity.store(out, lock=True)
            out.flush()
            del out
        else:
            np.save(tmp, spectra.intensity)
    with atomic_path(sidecar_path(path), overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps({"kind": spectra.axis_kind, "unit": spectra.axis_unit,
                                   "values": spectra.axis.tolist()}))
    return path


def write_npz(spectra: Spectra, path: str | Path, *, overwrite: bool = False) -> Path:
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, intensity=spectra.values() if not spectra.is_image else np.asarray(spectra.intensity),
                                axis=spectra.axis, ids=np.asarray(spectra.ids, dtype=str),
                                axis_kind=np.asarray(spectra.axis_kind), axis_unit=np.asarray(spectra.axis_unit))
    return path
