"""One front door for spectra files: `read_spectra` and `write_spectra` pick the format by suffix."""
from __future__ import annotations

from pathlib import Path

from speclearn.core.errors import InputError, note_read
from speclearn.core.spectra import Spectra
from speclearn.io.arrays import XARRAY_SUFFIXES, read_npy, read_npz, read_xarray, write_npy, write_npz, write_xarray
from speclearn.io.atomic import atomic_path, check_output
from speclearn.io.csv import (align_table, read_spectra_csv, read_table_csv, write_spectra_csv,
                              write_table_csv)
from speclearn.io.external import RSCIIO_READERS, read_jcamp, read_rsciio

READABLE = [".csv", ".npy", ".npz", *XARRAY_SUFFIXES, *RSCIIO_READERS, ".jdx", ".dx", ".spe", ".n42", ".spc", ".cnf", ".iec"]
WRITABLE = [".csv", ".npy", ".npz", *XARRAY_SUFFIXES]


def _suffix(path: Path) -> str:
    return (path.suffix if path.suffix else path.name).lower()


def read_spectra(path: str | Path, *, axis: str | None = None, expect: dict | None = None) -> Spectra:
    """Read any supported spectra file. `axis` ('START:STOP') gives an `.npy` cube its axis.

    expect: the axis a model was trained on; a CSV header that cannot match is refused before
    its body is read.
    """
    path = Path(path)
    note_read(path)
    suffix = _suffix(path)
    if suffix == ".csv":
        return read_spectra_csv(path, expect=expect)
    if suffix == ".npy":
        return read_npy(path, axis=axis)
    if suffix == ".npz":
        return read_npz(path)
    if suffix in XARRAY_SUFFIXES:
        return read_xarray(path)
    if suffix in RSCIIO_READERS and not (suffix == ".spc" and _ortec_spc(path)):
        return read_rsciio(path)
    if suffix in (".jdx", ".dx"):
        return read_jcamp(path)
    if suffix in (".spe", ".n42", ".spc", ".cnf", ".iec"):  # gamma-ray spectra (ORTEC, Canberra, IEC 1455, N42)
        from speclearn.io.gamma_formats import read_gamma
        return read_gamma(path)
    raise InputError(f"unknown file type {suffix!r}; readable: {', '.join(READABLE)}", file=path)


def _ortec_spc(path: Path) -> bool:
    """An ORTEC gamma `.Spc` (not EDAX's EDS `.spc`)."""
    from speclearn.io.gamma_formats import is_ortec_spc
    return is_ortec_spc(path)


def write_spectra(spectra: Spectra, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write spectra in the format named by the suffix, atomically."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".csv":
        if spectra.is_image:
            raise InputError("a spectrum image cannot be written as CSV; use .zarr, .h5 or .npy", file=path)
        return write_spectra_csv(spectra, path, overwrite=overwrite)
    if suffix == ".npy":
        return write_npy(spectra, path, overwrite=overwrite)
    if suffix == ".npz":
        return write_npz(spectra, path, overwrite=overwrite)
    if suffix in XARRAY_SUFFIXES:
        return write_xarray(spectra, path, overwrite=overwrite)
    raise InputError(f"cannot write {suffix!r}; writable: {', '.join(WRITABLE)}", file=path)


__all__ = ["READABLE", "WRITABLE", "align_table", "atomic_path", "check_output", "read_spectra",
           "read_table_csv", "write_spectra", "write_table_csv"]
