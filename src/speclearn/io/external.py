"""Formats users bring from instruments: every RosettaSciIO spectral format (HyperSpy .hspy/.zspy,
.msa/.emsa, Bruker .bcf/.spx, EDAX .spd/.spc, JEOL .pts, .emd, Renishaw .wdf, Ripple .rpl) and JCAMP-DX."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError, existing
from speclearn.core.spectra import PixelIds, Spectra, default_ids, is_dask

#: RosettaSciIO plugin for each spectral file type (all read lazily).
RSCIIO_READERS = {".hspy": "hspy", ".zspy": "zspy", ".msa": "msa", ".emsa": "msa", ".bcf": "bruker",
                  ".spx": "bruker", ".spd": "edax", ".spc": "edax", ".pts": "jeol", ".emd": "emd",
                  ".wdf": "renishaw", ".rpl": "ripple"}
#: Reader options: Bruker .bcf holds an SEM image and a spectrum image; speclearn wants the latter.
RSCIIO_OPTIONS = {".bcf": {"select_type": "spectrum_image"}}
#: Small text formats whose reader has no lazy mode.
RSCIIO_EAGER = {".msa", ".emsa"}
#: Axis kind from an axis's units, or failing that its name (HyperSpy, JCAMP-DX, xarray).
UNIT_KINDS = {"kev": "energy", "ev": "energy", "nm": "wavelength", "µm": "wavelength", "um": "wavelength",
              "cm-1": "wavenumber", "cm⁻¹": "wavenumber", "1/cm": "wavenumber", "m/z": "mz"}
NAME_KINDS = {"energy": "energy", "energy loss": "energy", "wavelength": "wavelength",
              "wavenumber": "wavenumber", "raman shift": "wavenumber", "m/z": "mz", "mz": "mz"}


def axis_kind(unit: str, name: str = "") -> str:
    """The speclearn axis kind of an axis with these units (or, failing that, this name)."""
    return UNIT_KINDS.get(str(unit or "").strip().lower()) or NAME_KINDS.get(str(name or "").strip().lower(), "channel")


def _spectral_axes(signal: dict) -> tuple[list[dict], list[dict]]:
    """(navigation axes, signal axes) of a RosettaSciIO signal dictionary, in array order."""
    axes = signal.get("axes", [])
    signal_axes = [a for a in axes if not a.get("navigate", False)]
    return [a for a in axes if a.get("navigate", False)], signal_axes or axes[-1:]


def _axis_values(axis: dict, size: int) -> np.ndarray:
    if axis.get("axis") is not None:
        return np.asarray(axis["axis"], dtype=float)
    return axis.get("offset", 0.0) + axis.get("scale", 1.0) * np.arange(size)


def read_rsciio(path: str | Path) -> Spectra:
    """The largest spectral signal (one signal axis, at most 2 navigation axes) of a
    RosettaSciIO-readable file, read lazily (dask; .msa eagerly) in its native dtype; the file's metadata (beam
    energy, elements, the HyperSpy tree) goes to `Spectra.meta.attrs` (see `speclearn.interop`)."""
    from speclearn.interop import file_attrs
    path = existing(path)
    suffix = path.suffix.lower()
    try:
        module = importlib.import_module(f"rsciio.{RSCIIO_READERS[suffix]}")
    except ImportError:
        raise InputError("reading this format needs RosettaSciIO: pip install 'speclearn[formats]'", file=path) from None
    try:
        signals = module.file_reader(str(path), lazy=suffix not in RSCIIO_EAGER, **RSCIIO_OPTIONS.get(suffix, {}))
    except Exception as err:  # noqa: BLE001 - any reader failure means an unreadable file
        raise InputError(f"cannot read ({type(err).__name__}: {str(err)[:80]})", file=path) from None
    spectral = [s for s in signals if len(_spectral_axes(s)[1]) == 1 and np.ndim(s["data"]) in (1, 2, 3)]
    if not spectral:
        raise InputError("no 1-D spectrum, spectrum set or spectrum image inside", file=path)
    signal = max(spectral, key=lambda s: int(np.prod(np.shape(s["data"]))))
    data = signal["data"]
    if not is_dask(data):
        data = np.asarray(data)
    navigation, (axis,) = _spectral_axes(signal)
    unit = str(axis.get("units", "") or "")
    name = str(axis.get("name", "") or "")
    if data.ndim == 1:
        data = data[None, :]
    nav = [{"name": str(a.get("name", "") or ""), "units": str(a.get("units", "") or ""), "size": int(a.get("size", n)),
            **({"values": _axis_values(a, n).tolist()} if a.get("axis") is not None else
               {"offset": float(a.get("offset", 0.0)), "scale": float(a.get("scale", 1.0))})}
           for a, n in zip(navigation, data.shape[:-1])]
    meta = PixelIds() if data.ndim == 3 else pd.DataFrame(index=default_ids(data.shape[:-1], source=str(path)))
    meta.attrs.update(file_attrs(signal.get("metadata", {}) or {}, nav, name))
    return Spectra(data, _axis_values(axis, data.shape[-1]), axis_kind=axis_kind(unit, name),
                   axis_unit=unit, meta=meta, source=str(path))


def read_jcamp(path: str | Path) -> Spectra:
    """One JCAMP-DX spectrum (.jdx/.dx) through the `jcamp` package."""
    path = existing(path)
    try:
        import jcamp
    except ImportError:
        raise InputError("reading JCAMP-DX needs the jcamp package: pip install 'speclearn[formats]'", file=path) from None
    try:
        record = jcamp.readfile(str(path))
    except Exception as err:  # noqa: BLE001
        raise InputError(f"cannot read JCAMP-DX ({type(err).__name__}: {str(err)[:80]})", file=path) from None
    if "x" not in record or "y" not in record:
        raise InputError("no XYDATA block found", file=path)
    x, y = np.asarray(record["x"], dtype=float), np.asarray(record["y"], dtype=float)
    order = np.argsort(x)
    unit = str(record.get("xunits", "")).strip()
    kind = axis_kind(unit)
    return Spectra(y[order][None, :], x[order], axis_kind=kind, axis_unit=unit, source=str(path))
