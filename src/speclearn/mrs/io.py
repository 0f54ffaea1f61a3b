"""Read and write MRS files: complex NPZ, NIfTI-MRS, LCModel .RAW/.H2O, jMRUI text, plain text.

`read_mrs` picks the reader by suffix; `write_mrs` writes `.npz` or NIfTI-MRS (`.nii`, `.nii.gz`).
Every problem raises `InputError` naming the file.
"""
from __future__ import annotations

import gzip
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from speclearn.core.errors import InputError, existing
from speclearn.io.atomic import atomic_path
from speclearn.mrs.data import MRSData

READABLE = (".npz", ".nii", ".nii.gz", ".raw", ".h2o", ".txt", ".dat", ".mrui.txt")
WRITABLE = (".npz", ".nii", ".nii.gz")
#: scanner formats read by spec2nii (the community converter to NIfTI-MRS): (name, its spec2nii subcommand)
VENDOR = {".rda": ("Siemens RDA", "rda"), ".spar": ("Philips SPAR/SDAT", "philips"),
          ".sdat": ("Philips SPAR/SDAT", "philips"), ".7": ("GE P-file", "ge"),
          ".data": ("Philips DATA/LIST", "philips_dl"), ".list": ("Philips DATA/LIST", "philips_dl"),
          ".dat": ("Siemens TWIX", "twix -e image")}
NIFTI_MRS_ECODE = 44


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_mrs(path: str | Path, *, dwell_time_s: float | None = None, central_frequency_mhz: float | None = None,
             te_ms: float | None = None) -> MRSData:
    """Read one MRS file. The keyword values fill in what a format does not store (plain text, .RAW)."""
    path = existing(path)
    given = {"dwell_time_s": dwell_time_s, "central_frequency_mhz": central_frequency_mhz, "te_ms": te_ms}
    suffix = suffix_of(path)
    try:
        if suffix == ".npz":
            return read_npz(path)
        if suffix in (".nii", ".nii.gz"):
            return read_nifti_mrs(path)
        if suffix in (".raw", ".h2o"):
            return read_lcmodel_raw(path, **given)
        if suffix in VENDOR and (suffix != ".dat" or b"\0" in path.read_bytes()[:4096]):  # a text .dat is text
            name, command = VENDOR[suffix]
            raise InputError(f"{name} raw data: convert it to NIfTI-MRS with spec2nii (pip install spec2nii; its "
                             f"`{command}` subcommand), then give the .nii.gz", file=path)
        if suffix in (".txt", ".dat"):
            with open(path, errors="replace") as handle:
                head = handle.read(200)
            if head.lstrip().lower().startswith("jmrui"):
                return read_jmrui(path)
            return read_text(path, **given)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise InputError(f"cannot read MRS data ({type(err).__name__}: {err})", file=path) from None
    raise InputError(f"unknown MRS file type {suffix!r}; readable: {', '.join(READABLE)}", file=path)


def write_mrs(data: MRSData, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write complex NPZ or NIfTI-MRS, atomically."""
    path = Path(path)
    suffix = suffix_of(path)
    if suffix == ".npz":
        return write_npz(data, path, overwrite=overwrite)
    if suffix in (".nii", ".nii.gz"):
        return write_nifti_mrs(data, path, overwrite=overwrite)
    raise InputError(f"cannot write {suffix!r}; writable: {', '.join(WRITABLE)}", file=path)


# --- complex NPZ ----------------------------------------------------------------------------
def _npz_number(archive, key: str, path: Path) -> float:
    try:
        return float(np.asarray(archive[key]).item())
    except (TypeError, ValueError):
        raise InputError(f"{key} must be one number, got {str(archive[key])[:30]!r}", file=path) from None


def read_npz(path: Path) -> MRSData:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise InputError(f"not a readable NPZ archive ({str(err)[:60]})", file=path) from None
    with archive:
        missing = [k for k in ("fid", "dwell_time_s", "central_frequency_mhz") if k not in archive]
        if missing:
            raise InputError(f"MRS NPZ lacks {', '.join(missing)} (needs fid, dwell_time_s, "
                             "central_frequency_mhz)", file=path)
        fid = archive["fid"]
        if not np.iscomplexobj(fid):
            raise InputError(f"fid must be complex, got {fid.dtype}", file=path)
        te = _npz_number(archive, "te_ms", path) if "te_ms" in archive else None
        te = te if te is not None and np.isfinite(te) else None
        ids = [str(i) for i in archive["ids"]] if "ids" in archive else None
        scans = [str(i) for i in archive["scans"]] if "scans" in archive else None
        dims = []
        if "dim_tags" in archive and "dim_sizes" in archive:  # NIfTI-MRS dimensions (DIM_COIL, DIM_DYN ...)
            dims = [(str(t), int(n)) for t, n in zip(archive["dim_tags"], archive["dim_sizes"])]
            if int(np.prod([n for _, n in dims])) != len(fid):
                raise InputError(f"dim_sizes {[n for _, n in dims]} do not multiply to the {len(fid)} FIDs", file=path)
        dwell, frequency = (_npz_number(archive, key, path) for key in ("dwell_time_s", "central_frequency_mhz"))
        return MRSData(fid, dwell, frequency, te, ids=ids, scans=scans, dims=dims, source=str(path))


def write_npz(data: MRSData, path: Path, *, overwrite: bool = False) -> Path:
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as handle:
            dims = {"dim_tags": np.array([t for t, _ in data.dims]), "dim_sizes": np.array([n for _, n in data.dims])}
            np.savez_compressed(handle, fid=data.fid.astype(np.complex64), dwell_time_s=data.dwell_time_s,
                                central_frequency_mhz=data.central_frequency_mhz,
                                te_ms=np.nan if data.te_ms is None else data.te_ms,
                                ids=np.array(data.ids), scans=np.array(data.scans), **(dims if data.dims else {}))
    return path


# --- NIfTI-MRS (nibabel) ----------------------------------------------------------------------
def _nibabel():
    try:
        import nibabel
    except ImportError:
        raise InputError("NIfTI-MRS needs nibabel: pip install 'speclearn[mrs]'") from None
    return nibabel


def read_nifti_mrs(path: Path) -> MRSData:
    """NIfTI-MRS: rows are the flattened higher dimensions (DIM_DYN, DIM_COIL ...). Spectroscopic imaging
    (more than one voxel): every voxel is a scan named `<file>_x<i>_y<j>_z<k>`, its rows its transients;
    its coils must be combined already."""
    nib = _nibabel()
    try:
        image = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for a broken file
        raise InputError(f"not a readable NIfTI file ({err})", file=path) from None
    header = image.header
    info: dict[str, Any] = {}
    for extension in header.extensions:
        if extension.get_code() == NIFTI_MRS_ECODE:
            try:
                info = json.loads(extension.get_content().decode().rstrip("\x00"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise InputError(f"NIfTI-MRS header extension is not valid JSON ({err})", file=path) from None
    if "SpectrometerFrequency" not in info:
        raise InputError("no NIfTI-MRS header extension with SpectrometerFrequency (not NIfTI-MRS?)", file=path)
    nucleus = info.get("ResonantNucleus", ["1H"])
    nucleus = str(nucleus[0] if isinstance(nucleus, list) and nucleus else nucleus)
    if nucleus.upper() != "1H":
        raise InputError(f"resonant nucleus {nucleus}: speclearn's MRS handles 1H spectra only", file=path)
    data = np.asanyarray(image.dataobj)
    if not np.iscomplexobj(data):
        raise InputError(f"NIfTI-MRS data must be complex, got {data.dtype}", file=path)
    if data.ndim < 4:
        raise InputError(f"NIfTI-MRS data must have at least 4 dimensions, got shape {data.shape}", file=path)
    # NIfTI-MRS keeps the dwell time in pixdim[4], in the header's time unit (seconds unless it says otherwise)
    dwell = float(header["pixdim"][4]) * {"msec": 1e-3, "usec": 1e-6}.get(header.get_xyzt_units()[1], 1.0)
    frequency = info["SpectrometerFrequency"]
    frequency = float(frequency[0] if isinstance(frequency, list) else frequency)
    echo = info.get("EchoTime")
    extra = data.shape[4:]
    dims = [(str(info.get(f"dim_{5 + i}", f"DIM_{5 + i}")), int(size)) for i, size in enumerate(extra)]
    points, stem = data.shape[3], path.name.split(".")[0]
    # rows: higher dimensions flattened in Fortran order (dim 5 fastest), like NIfTI storage; voxels outermost
    per_voxel = int(np.prod(extra))
    fid = np.moveaxis(data.reshape(-1, points, per_voxel, order="F"), 1, 2).reshape(-1, points)
    voxels = [stem]
    if data.shape[:3] != (1, 1, 1):
        if any(tag.upper() == "DIM_COIL" for tag, _ in dims):
            raise InputError("spectroscopic imaging with uncombined coils (DIM_COIL) is not supported: combine "
                             "the coils first (e.g. FSL-MRS `fsl_mrs_proc coilcombine`)", file=path)
        voxels = [f"{stem}_x{i}_y{j}_z{k}" for k, j, i in np.ndindex(*reversed(data.shape[:3]))]
        dims = []  # a voxel's rows are its transients: the layout is not written back
    ids = [f"{v}_{t}" if per_voxel > 1 else v for v in voxels for t in range(per_voxel)]
    scans = [v for v in voxels for _ in range(per_voxel)]
    if len(info.get("speclearn_ids", [])) == fid.shape[0] == len(info.get("speclearn_scans", [])):
        ids, scans = info["speclearn_ids"], info["speclearn_scans"]  # written by speclearn: several scans
    return MRSData(fid, dwell, frequency, None if echo is None else 1000 * float(echo), ids=ids,
                   scans=scans, dims=dims, source=str(path))


def write_nifti_mrs(data: MRSData, path: Path, *, overwrite: bool = False) -> Path:
    nib = _nibabel()
    sizes = [size for _, size in data.dims]
    if data.dims and int(np.prod(sizes)) == data.n:
        tags = data.dims
    else:
        tags = [("DIM_DYN", data.n)] if data.n > 1 else []
    shape = (1, 1, 1, data.points, *[size for _, size in tags])
    array = data.fid.T.reshape(shape, order="F").astype(np.complex64)
    image = nib.Nifti2Image(array, np.eye(4))
    header = image.header
    pixdim = header["pixdim"]
    pixdim[4] = data.dwell_time_s
    header["pixdim"] = pixdim
    header.set_xyzt_units("mm", "sec")
    header.set_intent(0, name="mrs_v0_9")
    info: dict[str, Any] = {"SpectrometerFrequency": [data.central_frequency_mhz], "ResonantNucleus": ["1H"]}
    if data.te_ms is not None:
        info["EchoTime"] = data.te_ms / 1000
    for i, (tag, _) in enumerate(tags):
        info[f"dim_{5 + i}"] = tag
    if len(set(data.scans)) > 1 or data.ids != [f"{path.name.split('.')[0]}_{i}" for i in range(data.n)]:
        info["speclearn_ids"], info["speclearn_scans"] = list(data.ids), list(data.scans)
    header.extensions.append(nib.nifti1.Nifti1Extension(NIFTI_MRS_ECODE, json.dumps(info).encode()))
    payload = image.to_bytes()
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(gzip.compress(payload) if suffix_of(path) == ".nii.gz" else payload)
    return path


# --- LCModel .RAW / .H2O ------------------------------------------------------------------------
_NAMELIST = re.compile(r"\$(\w+)(.*?)\$END", re.S | re.I)
_ASSIGN = re.compile(r"(\w+)\s*=\s*('[^']*'|\"[^\"]*\"|[^,\s]+)")


def _namelist_values(text: str) -> dict[str, str]:
    values = {}
    for _, body in _NAMELIST.findall(text):
        for key, value in _ASSIGN.findall(body):
            values[key.upper()] = value.strip("'\"")
    return values


def _number(values: dict[str, str], keys: tuple[str, ...], path: Path) -> float | None:
    for key in keys:
        if key in values:
            try:
                return float(values[key].replace("D", "E").replace("d", "e"))
            except ValueError:
                raise InputError(f"{key} = {values[key]!r} is not a number", file=path) from None
    return None


def read_lcmodel_raw(path: Path, *, dwell_time_s: float | None = None, central_frequency_mhz: float | None = None,
                     te_ms: float | None = None) -> MRSData:
    """LCModel time-domain file: namelists ($SEQPAR, $NMID) then real/imag pairs.

    .RAW does not store the dwell time; it is taken from DELTAT/BADELT/DWELL in a namelist if
    present, else from `dwell_time_s`. NUNFIL (points per FID) splits several FIDs.
    """
    text = path.read_text(errors="replace")
    ends = [m.end() for m in re.finditer(r"\$END", text, re.I)]
    if not ends:
        raise InputError("no $END: not an LCModel .RAW/.H2O file", file=path)
    values = _namelist_values(text[:ends[-1]])
    numbers = text[ends[-1]:].replace("D", "E").replace("d", "e").split()
    try:
        flat = np.array(numbers, dtype=float)
    except ValueError:
        raise InputError("data section has a value that is not a number", file=path) from None
    if flat.size == 0 or flat.size % 2:
        raise InputError(f"data section has {flat.size} numbers; expected real/imag pairs", file=path)
    dwell = _number(values, ("DELTAT", "BADELT", "DWELL"), path) or dwell_time_s
    frequency = _number(values, ("HZPPPM",), path) or central_frequency_mhz
    if dwell is None:
        raise InputError("no dwell time: LCModel .RAW does not store one; add DELTAT=<seconds> to $SEQPAR "
                         "or give it (command line: --dwell-time)", file=path)
    if frequency is None:
        raise InputError("no HZPPPM (central frequency in MHz) in $SEQPAR; add it or give it (command line: "
                         "--central-frequency)", file=path)
    fid = flat[0::2] + 1j * flat[1::2]
    points = int(_number(values, ("NUNFIL",), path) or fid.size)
    if fid.size % points:
        raise InputError(f"{fid.size} complex points is not a multiple of NUNFIL={points}", file=path)
    return MRSData(fid.reshape(-1, points), dwell, frequency, _number(values, ("ECHOT",), path) or te_ms,
                   ids=_ids(path, fid.size // points), scans=[path.stem] * (fid.size // points), source=str(path))


def _ids(path: Path, n: int) -> list[str]:
    return [path.stem] if n == 1 else [f"{path.stem}_{i}" for i in range(n)]


# --- jMRUI text ---------------------------------------------------------------------------------
def read_jmrui(path: Path) -> MRSData:
    """jMRUI Data Textfile: 'Key: value' header, then signals (time real, imag, fft real, imag)."""
    lines = path.read_text(errors="replace").splitlines()
    header, signals, current = {}, [], None
    for line in lines:
        stripped = line.strip()
        if stripped.lower().startswith("signal") and "out of" in stripped.lower():
            current = []
            signals.append(current)
        elif current is not None and stripped:
            parts = stripped.split()
            try:
                current.append(float(parts[0]) + 1j * float(parts[1]))
            except (ValueError, IndexError):
                raise InputError(f"bad data line {stripped!r}", file=path) from None
        elif ":" in stripped and current is None:
            key, _, value = stripped.partition(":")
            header[key.strip().lower()] = value.split()[0] if value.split() else ""
    if not signals or not signals[0]:
        raise InputError("no 'Signal 1 out of N' data block: not a jMRUI text file", file=path)
    try:
        dwell = float(header["samplinginterval"]) / 1000.0  # ms
        frequency = float(header["transmitterfrequency"]) / 1e6  # Hz
    except (KeyError, ValueError):
        raise InputError("jMRUI header needs SamplingInterval (ms) and TransmitterFrequency (Hz)", file=path) from None
    if len({len(s) for s in signals}) != 1:
        raise InputError("signals have different lengths", file=path)
    return MRSData(np.array(signals), dwell, frequency, ids=_ids(path, len(signals)),
                   scans=[path.stem] * len(signals), source=str(path))


def write_jmrui(data: MRSData, path: Path, *, overwrite: bool = False) -> Path:
    """jMRUI text (for exchange with jMRUI and for tests)."""
    lines = ["jMRUI Data Textfile", "", f"Filename: {path.name}", "", f"PointsInDataset: {data.points}",
             f"DatasetsInFile: {data.n}", f"SamplingInterval: {data.dwell_time_s * 1000:.8E}",
             "ZeroOrderPhase: 0E0", "BeginTime: 0E0", f"TransmitterFrequency: {data.central_frequency_mhz * 1e6:.8E}",
             f"MagneticField: {data.central_frequency_mhz / 42.577:.4E}", "TypeOfNucleus: 0E0", "", "",
             "Signal and FFT", "sig(real)\tsig(imag)\tfft(real)\tfft(imag)"]
    spectra = data.spectrum()
    for k in range(data.n):
        lines.append(f"Signal {k + 1} out of {data.n} in file")
        lines += [f"{f.real:.8E}\t{f.imag:.8E}\t{s.real:.8E}\t{s.imag:.8E}" for f, s in zip(data.fid[k], spectra[k])]
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


# --- plain text ---------------------------------------------------------------------------------
def read_text(path: Path, *, dwell_time_s: float | None = None, central_frequency_mhz: float | None = None,
              te_ms: float | None = None) -> MRSData:
    """Columns real, imag (2k columns: k FIDs). Header comments `# dwell_time_s = ...`,
    `# central_frequency_mhz = ...`, `# te_ms = ...` give the parameters, else the keywords."""
    given = {"dwell_time_s": dwell_time_s, "central_frequency_mhz": central_frequency_mhz, "te_ms": te_ms}
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(("#", "%")):
            key, sep, value = stripped.lstrip("#% ").partition("=")
            if sep and key.strip() in given and given[key.strip()] is None:
                try:
                    given[key.strip()] = float(value)
                except ValueError:
                    raise InputError(f"{key.strip()} = {value.strip()!r} is not a number", file=path, row=number) from None
            continue
        try:
            rows.append([float(v) for v in stripped.replace(",", " ").split()])
        except ValueError:
            raise InputError(f"not a number in {stripped!r}", file=path, row=number) from None
    if not rows:
        raise InputError("no data rows", file=path)
    widths = {len(r) for r in rows}
    if len(widths) != 1 or (width := widths.pop()) % 2:
        raise InputError("every row needs the same even number of columns (real, imag pairs)", file=path)
    for key in ("dwell_time_s", "central_frequency_mhz"):
        if given[key] is None:
            raise InputError(f"no {key}: add a '# {key} = ...' header line or give it (command line: "
                             f"--{key.rsplit('_', 1)[0].replace('_', '-')})", file=path)
    table = np.array(rows)
    fid = (table[:, 0::2] + 1j * table[:, 1::2]).T
    return MRSData(fid, given["dwell_time_s"], given["central_frequency_mhz"], given["te_ms"],
                   ids=_ids(path, width // 2), scans=[path.stem] * (width // 2), source=str(path))


def write_text(data: MRSData, path: Path, *, overwrite: bool = False) -> Path:
    header = [f"# dwell_time_s = {data.dwell_time_s!r}", f"# central_frequency_mhz = {data.central_frequency_mhz!r}"]
    if data.te_ms is not None:
        header.append(f"# te_ms = {data.te_ms!r}")
    table = np.empty((data.points, 2 * data.n))
    table[:, 0::2], table[:, 1::2] = data.fid.real.T, data.fid.imag.T
    with atomic_path(path, overwrite=overwrite) as tmp:
        np.savetxt(tmp, table, header="\n".join(h[2:] for h in header), comments="# ")
    return path
