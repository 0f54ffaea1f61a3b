"""Metabolite basis sets: the shipped ISMRM 2016 set, or a user's `.npz`, LCModel `.BASIS` file, or
folder of text/FSL-MRS JSON files.

A basis FID of metabolite m at 1 mM is `Basis.fid[m]`; the spectrum convention is `mrs.data`'s
(NAA at 2.01 ppm). A basis whose peaks land on the far side of 4.65 ppm under that convention (the
other sign convention, as the ISMRM text files) is conjugated on loading (`mrs.data.mirrored`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from speclearn.core.errors import InputError
from speclearn.mrs.data import MRSData, mirrored

#: metabolites added up into the totals usually reported
COMBINED = {"tNAA": ("NAA", "NAAG"), "tCr": ("Cr", "PCr"), "tCho": ("GPC", "PCho"), "Glx": ("Glu", "Gln")}
#: the metabolites the benchmark reports
MAIN = ("NAA", "tCr", "tCho", "Ins", "Glu", "GSH", "GABA")
MACROMOLECULES = ("Mac", "MM", "Mac1")


@dataclass(frozen=True, eq=False)
class Basis:
    """names (m), fid complex (m, points), dwell_time_s, central_frequency_mhz, te_ms."""

    names: list[str]
    fid: np.ndarray
    dwell_time_s: float
    central_frequency_mhz: float
    te_ms: float | None = None
    source: str | None = None

    @property
    def points(self) -> int:
        return self.fid.shape[1]

    def index(self, name: str) -> int:
        if name not in self.names:
            raise InputError(f"metabolite {name!r} is not in the basis ({', '.join(self.names)})", file=self.source)
        return self.names.index(name)

    def metabolites(self) -> list[str]:
        """Names other than macromolecules."""
        return [n for n in self.names if n not in MACROMOLECULES]

    def matched(self, data: MRSData) -> "Basis":
        """This basis sampled on `data`'s time grid (linear interpolation of the FIDs; zero beyond)."""
        if abs(self.central_frequency_mhz - data.central_frequency_mhz) > 0.01 * data.central_frequency_mhz:
            raise InputError(f"data at {data.central_frequency_mhz:g} MHz, but the basis "
                             f"{Path(self.source or 'given').name} is for {self.central_frequency_mhz:g} MHz (another "
                             "field strength): give a basis for it (--basis)", file=data.source)
        same_dwell = abs(self.dwell_time_s - data.dwell_time_s) <= 1e-9 * data.dwell_time_s
        if same_dwell and self.points == data.points:
            return self
        if data.dwell_time_s < self.dwell_time_s * (1 - 1e-9):
            raise InputError(f"data bandwidth {data.bandwidth_hz:g} Hz exceeds the basis's "
                             f"{1 / self.dwell_time_s:g} Hz", file=self.source)
        t_basis = np.arange(self.points) * self.dwell_time_s
        t = np.arange(data.points) * data.dwell_time_s
        fid = np.stack([np.interp(t, t_basis, f.real, right=0) + 1j * np.interp(t, t_basis, f.imag, right=0)
                        for f in self.fid])
        return replace(self, fid=fid, dwell_time_s=data.dwell_time_s)


def shipped_basis_path() -> Path:
    return Path(str(resources.files("speclearn.mrs") / "data" / "basis_ismrm2016" / "basis.npz"))


def load_basis(path: str | Path | None = None, *, dwell_time_s: float | None = None,
               central_frequency_mhz: float | None = None, te_ms: float | None = None) -> Basis:
    """The shipped ISMRM 2016 basis (None), an `.npz` (names, fid, dwell_time_s, central_frequency_mhz),
    an LCModel `.BASIS` file, or a folder of FSL-MRS `.json` files or text files (real, imag columns;
    '# dwell_time_s = ...' style headers, else the keywords give the acquisition)."""
    path = shipped_basis_path() if path is None else Path(path)
    if not path.exists():
        raise InputError("basis not found", file=path)
    te = None
    if path.is_dir():
        names, fids, dwells, freqs = [], [], set(), set()
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".json", ".txt")
                       and not p.name.upper().startswith(("LICEN", "README")))
        if not files:
            raise InputError("basis folder has no .json or .txt basis files", file=path)
        for file in files:
            if file.suffix.lower() == ".json":
                fid, dwell, freq, name = _read_fsl_json(file)
            else:
                from speclearn.mrs.io import read_text
                data = read_text(file, dwell_time_s=dwell_time_s, central_frequency_mhz=central_frequency_mhz,
                                 te_ms=te_ms)
                fid, dwell, freq, name, te = data.fid[0], data.dwell_time_s, data.central_frequency_mhz, file.stem, data.te_ms
            names.append(name)
            fids.append(fid)
            dwells.add(round(dwell, 12))
            freqs.add(round(freq, 3))
        if len(dwells) != 1 or len(freqs) != 1 or len({f.size for f in fids}) != 1:
            raise InputError("basis files differ in dwell time, frequency or point count", file=path)
        fid, dwell, frequency = np.stack(fids), dwells.pop(), freqs.pop()
    elif path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("names", "fid", "dwell_time_s", "central_frequency_mhz") if k not in archive]
            if missing:
                raise InputError(f"basis NPZ lacks {', '.join(missing)}", file=path)
            names = [str(n) for n in archive["names"]]
            fid = np.asarray(archive["fid"], dtype=np.complex128)
            dwell, frequency = float(archive["dwell_time_s"]), float(archive["central_frequency_mhz"])
            te = float(archive["te_ms"]) if "te_ms" in archive else None
        if fid.ndim != 2 or fid.shape[0] != len(names):
            raise InputError(f"basis fid shape {fid.shape} does not match {len(names)} names", file=path)
    elif path.suffix.lower() == ".basis":
        names, fid, dwell, frequency, te = read_lcmodel_basis(path)
    else:
        raise InputError("basis must be a folder, an .npz or an LCModel .BASIS file", file=path)
    if len(set(names)) != len(names):
        raise InputError("duplicate metabolite names in the basis", file=path)
    fid = np.asarray(fid, dtype=np.complex128)
    fid = fid.conj() if mirrored(fid, dwell, frequency) else fid
    return Basis(names, fid, dwell, frequency, te, source=str(path))


def read_lcmodel_basis(path: Path) -> tuple[list[str], np.ndarray, float, float, float | None]:
    """(names, fid (m, points), dwell_time_s, central_frequency_mhz, te_ms) of an LCModel `.BASIS` file.

    Layout (LCModel manual): namelist $SEQPAR (HZPPPM, ECHOT), $BASIS1 (BADELT dwell time, NDATAB
    points), then per metabolite an optional $NMUSED, a $BASIS namelist (METABO or ID = name) and
    NDATAB real/imag pairs of its spectrum (frequency domain, FFT order); the FID is its inverse FFT."""
    from speclearn.mrs.io import _namelist_values, _number
    text = path.read_text(errors="replace")
    blocks = list(re.finditer(r"\$(\w+)(.*?)\$END", text, re.S | re.I))
    header = _namelist_values(text[:blocks[0].end()] if blocks else "")
    for block in blocks:
        if block.group(1).upper() in ("SEQPAR", "BASIS1"):
            header |= _namelist_values(block.group(0))
    dwell = _number(header, ("BADELT",), path)
    frequency = _number(header, ("HZPPPM",), path)
    points = _number(header, ("NDATAB",), path)
    if dwell is None or frequency is None or points is None:
        raise InputError("not an LCModel .BASIS file: $SEQPAR HZPPPM and $BASIS1 BADELT, NDATAB are needed",
                         file=path)
    names, fids = [], []
    spans = [b for b in blocks if b.group(1).upper() == "BASIS"]
    for k, block in enumerate(spans):
        values = _namelist_values(block.group(0))
        name = values.get("METABO") or values.get("ID")
        if not name:
            raise InputError(f"$BASIS block {k + 1} has no METABO or ID", file=path)
        following = [b.start() for b in blocks if b.start() > block.end()]
        numbers = text[block.end():min(following, default=len(text))].replace("D", "E").replace("d", "e").split()
        try:
            flat = np.array(numbers, dtype=float)
        except ValueError:
            raise InputError(f"basis spectrum of {name!r} has a value that is not a number", file=path) from None
        if flat.size != 2 * int(points):
            raise InputError(f"basis spectrum of {name!r} has {flat.size} numbers; expected 2 x NDATAB = "
                             f"{2 * int(points)}", file=path)
        names.append(name.strip())
        fids.append(np.fft.ifft(flat[0::2] + 1j * flat[1::2]))
    if not names:
        raise InputError("LCModel .BASIS file has no $BASIS blocks", file=path)
    return names, np.stack(fids), dwell, frequency, _number(header, ("ECHOT",), path)


def _read_fsl_json(file: Path) -> tuple[np.ndarray, float, float, str]:
    try:
        info = json.loads(file.read_text())["basis"]
        fid = np.asarray(info["basis_re"], float) + 1j * np.asarray(info["basis_im"], float)
        return fid, float(info["basis_dwell"]), float(info["basis_centre"]), str(info.get("basis_name", file.stem))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise InputError(f"not an FSL-MRS basis JSON ({type(err).__name__}: {err})", file=file) from None


def combine(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add the totals of `COMBINED` whose parts are all present."""
    out = dict(values)
    for total, parts in COMBINED.items():
        if all(p in values for p in parts):
            out[total] = sum(values[p] for p in parts)
    return out
