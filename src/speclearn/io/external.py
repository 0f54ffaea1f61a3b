"""Formats users bring from instruments: HyperSpy/RosettaSciIO (.hspy, .msa/.emsa, .bcf) and JCAMP-DX."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra

RSCIIO_READERS = {".hspy": "hspy", ".msa": "msa", ".emsa": "msa", ".bcf": "bruker"}
_UNIT_KIND = {"kev": "energy", "ev": "energy", "nm": "wavelength", "cm-1": "wavenumber",
              "1/cm": "wavenumber", "m/z": "mz"}


def read_rsciio(path: str | Path) -> Spectra:
    """The first signal in a RosettaSciIO-readable file whose last axis is the spectral one."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    try:
        module = importlib.import_module(f"rsciio.{RSCIIO_READERS[path.suffix.lower()]}")
    except ImportError:
        raise InputError("reading this format needs RosettaSciIO: pip install 'speclearn[formats]'", file=path) from None
    try:
        signals = module.file_reader(str(path))
    except Exception as err:  # noqa: BLE001 - any reader failure means an unreadable file
        raise InputError(f"cannot read ({type(err).__name__}: {str(err)[:80]})", file=path) from None
    signal = next((s for s in signals if np.ndim(s["data"]) in (1, 2, 3)), None)
    if signal is None:
        raise InputError("no 1-D spectrum, spectrum set or spectrum image inside", file=path)
    data = np.asarray(signal["data"], dtype=float)
    spectral = signal["axes"][-1]
    axis = spectral.get("offset", 0.0) + spectral.get("scale", 1.0) * np.arange(data.shape[-1])
    unit = str(spectral.get("units", "") or "")
    if data.ndim == 1:
        data = data[None, :]
    return Spectra(data, axis, axis_kind=_UNIT_KIND.get(unit.lower(), "channel"), axis_unit=unit, source=str(path))


def read_jcamp(path: str | Path) -> Spectra:
    """One JCAMP-DX spectrum (.jdx/.dx) through the `jcamp` package."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
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
    kind = _UNIT_KIND.get(unit.lower().replace("1/cm", "cm-1"), "channel")
    return Spectra(y[order][None, :], x[order], axis_kind=kind, axis_unit=unit, source=str(path))
