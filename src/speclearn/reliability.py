"""Reliability suite: every command fed hundreds of malformed inputs, as a careless user or an attacker would.

Each case writes valid inputs, corrupts one of them in one way (a table-driven generator: CSV text
mutations, array files, tables, model folders), runs one `speclearn` command in-process and records
whether it held: exit 0 or 2, on failure exactly one stderr line naming the corrupted file, no
traceback, no failure left to the generic last-resort handler, and every input file byte-identical
afterwards. `speclearn bench reliability` runs them all; the test suite runs a sample.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N, CHANNELS = 12, 16
AXIS = np.linspace(400.0, 700.0, CHANNELS)


def _spectra_text(values: np.ndarray | None = None, ids: list[str] | None = None, axis=AXIS) -> str:
    values = _values() if values is None else values
    ids = ids or [f"s{i:02d}" for i in range(len(values))]
    lines = ["id," + ",".join(f"{a:g}" for a in axis)]
    lines += [f"{i}," + ",".join(f"{v:.6g}" for v in row) for i, row in zip(ids, values)]
    return "\n".join(lines) + "\n"


def _values(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(450, 650, (N, 1))
    return 100 * np.exp(-0.5 * ((AXIS - centres) / 25) ** 2) + 5 + rng.normal(0, 0.5, (N, CHANNELS))


def _table(column: str, values) -> str:
    return f"id,{column}\n" + "".join(f"s{i:02d},{v}\n" for i, v in enumerate(values))


# --- corruptions of the CSV exchange format ---------------------------------------------------------
def _csv_mutations() -> dict[str, Callable[[str], str | bytes]]:
    def replace_cell(value: str, row: int = 2, col: int = 3) -> Callable[[str], str]:
        def mutate(text: str) -> str:
            lines = text.splitlines()
            cells = lines[row].split(",")
            cells[col] = value
            lines[row] = ",".join(cells)
            return "\n".join(lines) + "\n"
        return mutate

    huge = _values() * 1e306
    return {
        "empty": lambda t: "",
        "only newline": lambda t: "\n\n",
        "header only": lambda t: t.splitlines()[0] + "\n",
        "no id header": lambda t: t.replace("id,", "name,", 1),
        "text header cell": lambda t: t.replace(f"{AXIS[2]:g}", "abc", 1),
        "empty header cell": lambda t: t.replace(f",{AXIS[2]:g},", ",,", 1),
        "ragged short row": lambda t: "\n".join(l if i != 3 else l.rsplit(",", 1)[0] for i, l in enumerate(t.splitlines())) + "\n",
        "ragged long row": lambda t: "\n".join(l if i != 3 else l + ",1" for i, l in enumerate(t.splitlines())) + "\n",
        "nan cell": replace_cell("nan"),
        "inf cell": replace_cell("inf"),
        "-inf cell": replace_cell("-inf"),
        "text cell": replace_cell("x"),
        "empty cell": replace_cell(""),
        "huge exponent cell": replace_cell("1e999"),
        "1e308 values": lambda t: _spectra_text(huge),
        "-1e308 values": lambda t: _spectra_text(-huge),
        "decimal comma cell": replace_cell('"1,5"'),
        "50k-char cell": replace_cell("9" * 50_000),
        "duplicate id": lambda t: t.replace("s03,", "s01,", 1),
        "empty id": lambda t: t.replace("s03,", ",", 1),
        "non-monotonic axis": lambda t: t.replace(f",{AXIS[3]:g},", f",{AXIS[1]:g}5,", 1),
        "duplicated axis": lambda t: t.replace(f",{AXIS[3]:g},", f",{AXIS[2]:g},", 1),
        "semicolon delimiter": lambda t: t.replace(",", ";"),
        "semicolon + decimal comma": lambda t: t.replace(",", ";").replace(".", ","),
        "tab delimiter": lambda t: t.replace(",", "\t"),
        "latin-1 id": lambda t: t.replace("s03", "m\u00e9lange").encode("latin-1"),
        "binary garbage": lambda t: bytes(range(256)) * 8,
        "nul bytes": lambda t: t.replace("s03", "s\x0003"),
        "truncated mid-row": lambda t: t[: len(t) // 2],
        "one channel": lambda t: "\n".join(",".join(l.split(",")[:2]) for l in t.splitlines()) + "\n",
        "one spectrum": lambda t: "\n".join(t.splitlines()[:2]) + "\n",
        "all zeros": lambda t: _spectra_text(np.zeros((N, CHANNELS))),
        "constant spectra": lambda t: _spectra_text(np.ones((N, CHANNELS))),
        "all negative": lambda t: _spectra_text(-_values()),
        "other channel count": lambda t: _spectra_text(_values()[:, :10], axis=AXIS[:10]),
        "shifted axis": lambda t: _spectra_text(axis=AXIS + 0.5),
        "20k channels": lambda t: _spectra_text(np.ones((2, 20_000)), axis=np.arange(20_000.0)),
        "other ids": lambda t: _spectra_text(ids=[f"x{i}" for i in range(N)]),
        "html instead of csv": lambda t: "<html><body>not a csv</body></html>\n",
        "json instead of csv": lambda t: json.dumps({"id": [1, 2]}),
        "trailing comma": lambda t: "\n".join(l + "," for l in t.splitlines()) + "\n",
        "quoted header": lambda t: t.replace("id,", '"id,x",', 1),
        "crlf line ends": lambda t: t.replace("\n", "\r\n"),
        "utf-8 bom": lambda t: "\ufeff" + t,
        "unicode ids": lambda t: t.replace("s03", "\u03b1\u03b2"),
        "200-char id": lambda t: t.replace("s03", "s" * 200),
        "spaces around cells": lambda t: t.replace(",", " , "),
    }


#: Corruptions of the axis sidecar `X.csv.axis.json` (the CSV itself stays valid).
SIDECAR_MUTATIONS = {
    "sidecar not json": "{kind: wavelength",
    "sidecar other kind": json.dumps({"kind": "mz", "unit": "m/z"}),
    "sidecar other unit": json.dumps({"kind": "wavelength", "unit": "um"}),
    "sidecar a list": "[1, 2]",
}


#: MRS FIDs of the suite: one scan of 4 transients, 2048 points at 4000 Hz, 3 T (what the shipped basis fits)
MRS_POINTS, MRS_DWELL, MRS_MHZ = 2048, 2.5e-4, 123.2


def _mrs_fid(rows: int = 4) -> np.ndarray:
    t = np.arange(MRS_POINTS) * MRS_DWELL
    rng = np.random.default_rng(0)
    lines = sum(a * np.exp(2j * np.pi * (ppm - 4.65) * MRS_MHZ * t - t / 0.08) for a, ppm in ((3, 2.01), (2, 3.03)))
    return lines[None] + 0.05 * (rng.normal(size=(rows, MRS_POINTS)) + 1j * rng.normal(size=(rows, MRS_POINTS)))


def _mrs_mutations() -> dict[str, tuple[str, Callable[[Path], None]]]:
    """name -> (suffix, writer of a malformed MRS file at the given path)."""
    good = dict(fid=_mrs_fid(), dwell_time_s=MRS_DWELL, central_frequency_mhz=MRS_MHZ, te_ms=30.0)

    def npz(**changes):
        arrays = {k: v for k, v in {**good, **changes}.items() if v is not None}
        return lambda p: np.savez(p, **arrays)

    def text(body: str):
        return lambda p: p.write_text(f"# dwell_time_s = {MRS_DWELL}\n# central_frequency_mhz = {MRS_MHZ}\n" + body)

    fid = good["fid"]
    rows = "\n".join(f"{z.real:.6g} {z.imag:.6g}" for z in fid[0])
    return {
        "mrs npz without fid": (".npz", npz(fid=None, data=fid)),
        "mrs npz real fid": (".npz", npz(fid=fid.real)),
        "mrs npz 8-point fid": (".npz", npz(fid=fid[:, :8])),
        "mrs npz 3-D fid": (".npz", npz(fid=fid[None])),
        "mrs npz nan in fid": (".npz", npz(fid=np.where(np.eye(4, MRS_POINTS) > 0, np.nan, fid))),
        "mrs npz no dwell time": (".npz", npz(dwell_time_s=None)),
        "mrs npz zero dwell time": (".npz", npz(dwell_time_s=0.0)),
        "mrs npz dwell time in ms": (".npz", npz(dwell_time_s=0.25)),
        "mrs npz text dwell time": (".npz", npz(dwell_time_s=np.array("fast"))),
        "mrs npz nan frequency": (".npz", npz(central_frequency_mhz=np.nan)),
        "mrs npz 7 T frequency": (".npz", npz(central_frequency_mhz=298.0)),
        "mrs npz text echo time": (".npz", npz(te_ms=np.array("long"))),
        "mrs npz duplicate ids": (".npz", npz(ids=np.array(["a", "a", "b", "c"]))),
        "mrs npz 3 ids for 4 fids": (".npz", npz(ids=np.array(["a", "b", "c"]))),
        "mrs npz edited dimension": (".npz", npz(dim_tags=np.array(["DIM_EDIT"]), dim_sizes=np.array([4]))),
        "mrs npz dims not matching": (".npz", npz(dim_tags=np.array(["DIM_COIL"]), dim_sizes=np.array([7]))),
        "mrs npz object array (pickle)": (".npz", lambda p: np.savez(p, **{**good, "fid": np.array([{"a": 1}], dtype=object)})),
        "mrs npz truncated": (".npz", lambda p: (npz()(p), p.write_bytes(p.read_bytes()[:300]))),
        "mrs npz not a zip": (".npz", lambda p: p.write_bytes(b"PK\x03\x04 not really")),
        "mrs text one column": (".txt", text("\n".join(f"{z.real:.6g}" for z in fid[0]))),
        "mrs text a word": (".txt", text(rows.replace("\n", "\nabc def\n", 1))),
        "mrs text 10 rows": (".txt", text("\n".join(rows.splitlines()[:10]))),
        "mrs text no dwell time": (".txt", lambda p: p.write_text(rows)),
        "mrs text empty": (".txt", lambda p: p.write_text("")),
        "mrs nifti garbage": (".nii.gz", lambda p: p.write_bytes(b"\x1f\x8b garbage")),
        "mrs raw without header": (".RAW", lambda p: p.write_text(rows)),
        "mrs twix binary": (".dat", lambda p: p.write_bytes(b"\x00\x01" * 64)),
        "mrs folder": (".npz", lambda p: p.mkdir()),
        "mrs unknown suffix": (".xyz", npz()),
    }


def _spe_text(counts: np.ndarray | None = None, calibration: str = "0.0 3.0 0.0", data: str | None = None) -> str:
    """An ORTEC .Spe gamma spectrum: 1024 channels, a K-40 line at 1461 keV over a falling continuum."""
    if counts is None:
        channel = np.arange(1024)
        counts = np.round(2000 * np.exp(-channel / 150) + 400 * np.exp(-0.5 * ((channel - 487) / 8) ** 2) + 5)
    body = data if data is not None else f"0 {len(counts) - 1}\n" + "\n".join(f"{c:g}" for c in counts)
    return (f"$SPEC_ID:\nsuite\n$DATE_MEA:\n01/01/2024 00:00:00\n$MEAS_TIM:\n600 600\n$DATA:\n{body}\n"
            f"$MCA_CAL:\n3\n{calibration} keV\n")


def _gamma_mutations() -> dict[str, tuple[str, Callable[[Path], None]]]:
    """name -> (suffix, writer of a malformed gamma spectrum file at the given path)."""
    good = _spe_text()
    lines = good.splitlines()
    first = lines.index("$DATA:") + 2  # the first count

    def edit(row: int, value: str):
        return lambda p: p.write_text("\n".join(lines[:first + row] + [value] + lines[first + row + 1:]) + "\n")
    return {
        "spe without $DATA": (".spe", lambda p: p.write_text(good.replace("$DATA:", "$NOTES:"))),
        "spe text count": (".spe", edit(10, "abc")),
        "spe negative count": (".spe", edit(10, "-5")),
        "spe nan count": (".spe", edit(10, "nan")),
        "spe fewer counts than its range": (".spe", lambda p: p.write_text(_spe_text(data="0 1023\n1\n2\n3"))),
        "spe 1e9-channel range": (".spe", lambda p: p.write_text(_spe_text(data="0 999999999\n1\n2"))),
        "spe zero-gain calibration": (".spe", lambda p: p.write_text(_spe_text(calibration="0 0 0"))),
        "spe falling calibration": (".spe", lambda p: p.write_text(_spe_text(calibration="3000 -3 0"))),
        "spe text calibration": (".spe", lambda p: p.write_text(_spe_text(calibration="zero three"))),
        "spe all zero counts": (".spe", lambda p: p.write_text(_spe_text(np.zeros(1024)))),
        "spe empty": (".spe", lambda p: p.write_text("")),
        "spe binary": (".spe", lambda p: p.write_bytes(bytes(range(256)) * 4)),
        "n42 not xml": (".n42", lambda p: p.write_text("<RadInstrumentData><Spectrum>")),
        "cnf garbage": (".cnf", lambda p: p.write_bytes(b"\x00" * 100)),
    }


# --- corruptions of the other files ------------------------------------------------------------------
def _write_npy(path: Path, array) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=True)


def _array_mutations() -> dict[str, tuple[str, Callable[[Path], None]]]:
    """name -> (suffix, writer of a malformed array file at the given path)."""
    def npz(**arrays):
        return lambda p: np.savez(p, **arrays)

    def zarr_missing_chunk(p: Path) -> None:
        import xarray as xr
        ds = xr.Dataset({"intensity": (("spectrum", "channel"), _values())},
                        coords={"channel": AXIS, "spectrum": [f"s{i:02d}" for i in range(N)]})
        ds.chunk({"spectrum": 4}).to_zarr(p, mode="w", consolidated=False)
        chunk = next(q for q in sorted((p / "intensity").rglob("*")) if q.is_file() and not q.name.startswith(".")
                     and q.name != "zarr.json")
        chunk.unlink()

    def zarr_huge(p: Path) -> None:
        import zarr
        group = zarr.open_group(str(p), mode="w")
        array = group.create_array("intensity", shape=(100_000, 100_000, 1000), chunks=(100, 100, 1000),
                                   dtype="f4", dimension_names=["y", "x", "channel"])
        array.attrs["_ARRAY_DIMENSIONS"] = ["y", "x", "channel"]

    def folder(p: Path) -> None:
        p.mkdir()

    return {
        "npy complex": (".npy", lambda p: _write_npy(p, _values() + 1j)),
        "npy strings": (".npy", lambda p: _write_npy(p, _values().astype(str))),
        "npy object (pickle)": (".npy", lambda p: _write_npy(p, np.array([{"a": 1}, None], dtype=object))),
        "npy nan": (".npy", lambda p: _write_npy(p, np.where(np.eye(N, CHANNELS) > 0, np.nan, _values()))),
        "npy inf": (".npy", lambda p: _write_npy(p, np.full((N, CHANNELS), np.inf))),
        "npy 1-D": (".npy", lambda p: _write_npy(p, np.ones(CHANNELS))),
        "npy 4-D": (".npy", lambda p: _write_npy(p, np.ones((2, 2, 2, CHANNELS)))),
        "npy empty": (".npy", lambda p: _write_npy(p, np.ones((0, CHANNELS)))),
        "npy truncated": (".npy", lambda p: (_write_npy(p, _values()), p.write_bytes(p.read_bytes()[:200]))),
        "npy is a folder": (".npy", folder),
        "npy is text": (".npy", lambda p: p.write_text("hello")),
        "npy bool": (".npy", lambda p: _write_npy(p, _values() > 5)),
        "npz missing axis": (".npz", npz(intensity=_values())),
        "npz text axis": (".npz", npz(intensity=_values(), axis=AXIS.astype(str))),
        "npz wrong axis length": (".npz", npz(intensity=_values(), axis=AXIS[:5])),
        "npz nan": (".npz", npz(intensity=np.full((N, CHANNELS), np.nan), axis=AXIS)),
        "npz complex": (".npz", npz(intensity=_values() * 1j, axis=AXIS)),
        "npz duplicate ids": (".npz", npz(intensity=_values(), axis=AXIS, ids=np.array(["a"] * N))),
        "npz truncated": (".npz", lambda p: (np.savez(p, intensity=_values(), axis=AXIS),
                                             p.write_bytes(p.read_bytes()[:300]))),
        "npz not a zip": (".npz", lambda p: p.write_bytes(b"PK\x03\x04 not really")),
        "npz is a folder": (".npz", folder),
        "zarr missing chunk": (".zarr", zarr_missing_chunk),
        "zarr 1e13-value cube": (".zarr", zarr_huge),
        "zarr empty folder": (".zarr", folder),
        "h5 garbage": (".h5", lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)),
        "unknown suffix": (".xyz", lambda p: p.write_text("id,1\na,1\n")),
    }


def _table_mutations(column: str, good: list) -> dict[str, str | bytes]:
    base = _table(column, good)
    return {
        "table empty": "",
        "table header only": f"id,{column}\n",
        "table no value column": "id\n" + "".join(f"s{i:02d}\n" for i in range(N)),
        "table missing id": "\n".join(base.splitlines()[:-1]) + "\n",
        "table extra id": base + f"zz,{good[0]}\n",
        "table duplicate id": base + f"s00,{good[0]}\n",
        "table nan": base.replace(f"s03,{good[3]}", "s03,nan"),
        "table text": base.replace(f"s03,{good[3]}", "s03,abc"),
        "table 1e308": base.replace(f"s03,{good[3]}", "s03,1e308"),
        "table negative": base.replace(f"s03,{good[3]}", "s03,-5"),
        "table latin-1": base.replace("s03", "s\u00e903").encode("latin-1"),
        "table semicolons": base.replace(",", ";"),
        "table one row": "\n".join(base.splitlines()[:2]) + "\n",
        "table ragged": base.replace(f"s03,{good[3]}", f"s03,{good[3]},9"),
        "table single class": _table(column, [good[0]] * N),
    }


def _model_mutations() -> dict[str, Callable[[Path], None]]:
    """name -> corruption of a saved model folder (in place, on a copy)."""
    def edit_config(change: Callable[[dict], None]) -> Callable[[Path], None]:
        def mutate(folder: Path) -> None:
            config = json.loads((folder / "config.json").read_text())
            change(config)
            (folder / "config.json").write_text(json.dumps(config))
        return mutate

    def hostile_skops(payload: tuple[str, str, list[str]]) -> Callable[[Path], None]:
        module, name, args = payload

        def mutate(folder: Path) -> None:
            target = next(iter(sorted(folder.glob("*.skops"))), None)
            if target is None:  # a model without estimators: add one
                target = folder / "estimator.skops"
                config = json.loads((folder / "config.json").read_text())
                config["estimators"].append("estimator")
                config["files"]["estimator.skops"] = ""
                (folder / "config.json").write_text(json.dumps(config))
            write_hostile_skops(target, module, name, args)
            rehash(folder)
        return mutate

    marker = "__SPECLEARN_PWNED__"
    return {
        "config missing": lambda f: (f / "config.json").unlink(),
        "config not json": lambda f: (f / "config.json").write_text("{not json"),
        "config a list": lambda f: (f / "config.json").write_text("[]"),
        "config 60 MiB": lambda f: (f / "config.json").write_text(" " * (65 * 2**20)),
        "config other format_version": edit_config(lambda c: c.update(format_version=99)),
        "config format_version 1": edit_config(lambda c: c.update(format_version=1)),
        "config missing params": edit_config(lambda c: c.pop("params")),
        "config params a string": edit_config(lambda c: c.update(params="x")),
        "config unknown param": edit_config(lambda c: c["params"].update(evil_param=1)),
        "config missing axis": edit_config(lambda c: c.pop("axis")),
        "config axis values text": edit_config(lambda c: c["axis"].update(values="abc")),
        "config other model type": edit_config(lambda c: c.update(model_type="unknown.kind")),
        "config estimator path escape": edit_config(lambda c: c.update(estimators=["../../outside"])),
        "config absolute estimator": edit_config(lambda c: c.update(estimators=["/etc/passwd"])),
        "weights truncated": lambda f: (f / "weights.safetensors").write_bytes(b"\x10\0\0\0"),
        "weights modified, checksum stale": lambda f: (f / "weights.safetensors").write_bytes(b"garbage"),
        "estimator truncated": lambda f: [p.write_bytes(p.read_bytes()[:50]) for p in f.glob("*.skops")],
        "estimator symlink out": lambda f: [(p.unlink(), p.symlink_to("/etc/hostname")) for p in f.glob("*.skops")],
        "skops exec payload": hostile_skops(("builtins", "exec", [f"open('{marker}', 'w')"])),
        "skops eval payload": hostile_skops(("builtins", "eval", [f"open('{marker}', 'w')"])),
        "skops open payload": hostile_skops(("builtins", "open", [marker, "w"])),
        "skops numpy.load payload": hostile_skops(("numpy", "load", [marker, "r", "True"])),
        "skops os.system payload": hostile_skops(("os", "system", [f"touch {marker}"])),
    }


def rehash(folder: Path) -> None:
    """What an attacker would do after planting files: make the recorded checksums match them."""
    config = json.loads((folder / "config.json").read_text())
    config["files"] = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                       for name in config["files"] if (folder / name).exists()}
    (folder / "config.json").write_text(json.dumps(config))


def write_hostile_skops(path: Path, module: str, name: str, args: list[str]) -> None:
    """A `.skops` file whose schema asks the loader to call `module.name(*args)`."""
    import zipfile
    content = [{"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(a),
                "is_json": True, "__id__": i} for i, a in enumerate(args)]
    schema = {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
              "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                          "content": content, "__id__": 100},
              "__id__": 101, "protocol": 2, "_skops_version": "0.16.0"}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))


# --- the commands under test -------------------------------------------------------------------------
@dataclass
class Case:
    command: str
    slot: str
    corruption: str


@dataclass
class Outcome:
    case: Case
    held: bool
    code: int
    problem: str
    seconds: float


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every regular file below `folder` (to prove inputs are left unchanged)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


class Workspace:
    """Valid inputs and trained models, copied fresh into each case's folder."""

    def __init__(self, root: Path):
        from speclearn.cli.main import main
        self.root = root
        good = root / "good"
        good.mkdir()
        (good / "spectra.csv").write_text(_spectra_text())
        (good / "spectra.csv.axis.json").write_text(json.dumps({"kind": "wavelength", "unit": "nm"}))
        (good / "secondary.csv").write_text(_spectra_text(_values(1) * 1.1 + 2))
        (good / "targets.csv").write_text(_table("fat", np.round(np.linspace(1, 9, N), 3)))
        (good / "labels.csv").write_text(_table("label", ["a", "b", "c"] * (N // 3)))
        (good / "groups.csv").write_text(_table("group", [f"g{i // 3}" for i in range(N)]))
        np.save(good / "cube.npy", np.abs(_values()).reshape(3, 4, CHANNELS))
        (good / "gamma.spe").write_text(_spe_text())
        np.savez(good / "scan.npz", fid=_mrs_fid(), dwell_time_s=MRS_DWELL, central_frequency_mhz=MRS_MHZ, te_ms=30.0)
        np.savez(good / "water.npz", fid=300 * _mrs_fid(1), dwell_time_s=MRS_DWELL, central_frequency_mhz=MRS_MHZ,
                 te_ms=30.0)
        (good / "reference.csv").write_text(_spectra_text(np.vstack([_values(0), _values(1)]),
                                                          ids=[f"r{i:02d}" for i in range(2 * N)]))
        (good / "reference.csv.axis.json").write_text(json.dumps({"kind": "wavelength", "unit": "nm"}))
        runs = {
            "quantify": ["quantify", "train", "--spectra", good / "spectra.csv", "--targets", good / "targets.csv",
                         "--method", "pls", "--out", good / "quantify"],
            "classify": ["classify", "train", "--spectra", good / "spectra.csv", "--targets", good / "labels.csv",
                         "--method", "plsda", "--out", good / "classify"],
            "denoise": ["denoise", "train", "--spectra", good / "spectra.csv", "--method", "classical",
                        "--out", good / "denoise"],
            "transfer": ["transfer", "train", "--targets", good / "spectra.csv", "--spectra",
                         good / "secondary.csv", "--method", "ds", "--out", good / "transfer"],
            "qa": ["qa", "train", "--spectra", good / "reference.csv", "--internal-standard", "", "--epochs", "5",
                   "--out", good / "qa"],
        }
        for name, args in runs.items():
            code, err = _run(main, args)
            if code != 0:
                raise RuntimeError(f"could not train the {name} model for the reliability suite: {err}")
        self.good = good

    def case_folder(self, index: int) -> Path:
        folder = self.root / f"case{index:04d}"
        shutil.copytree(self.good, folder, symlinks=True)
        return folder


def _run(main, args) -> tuple[int, str]:
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        code = main([str(a) for a in args])
    return code, stderr.getvalue()


def _commands(folder: Path) -> dict[str, dict[str, object]]:
    """command -> {slot: the input file that slot names, 'args': builder(slot paths) -> argv}."""
    f = folder
    return {
        "inspect": {"spectra": f / "spectra.csv",
                    "args": lambda p: ["inspect", p["spectra"]]},
        "preprocess": {"spectra": f / "spectra.csv",
                       "args": lambda p: ["preprocess", "--spectra", p["spectra"], "--normalize", "snv",
                                          "--out", f / "out.csv"]},
        "quantify train": {"spectra": f / "spectra.csv", "targets": f / "targets.csv",
                           "args": lambda p: ["quantify", "train", "--spectra", p["spectra"], "--targets",
                                              p["targets"], "--method", "pls", "--out", f / "model_out"]},
        "quantify predict": {"spectra": f / "spectra.csv", "model": f / "quantify",
                             "args": lambda p: ["quantify", "predict", "--model", p["model"], "--spectra",
                                                p["spectra"], "--out", f / "pred.csv"]},
        "classify train": {"spectra": f / "spectra.csv", "labels": f / "labels.csv",
                           "args": lambda p: ["classify", "train", "--spectra", p["spectra"], "--targets",
                                              p["labels"], "--method", "plsda", "--out", f / "model_out"]},
        "classify predict": {"spectra": f / "spectra.csv", "model": f / "classify",
                             "args": lambda p: ["classify", "predict", "--model", p["model"], "--spectra",
                                                p["spectra"], "--out", f / "pred.csv"]},
        "denoise train": {"spectra": f / "spectra.csv",
                          "args": lambda p: ["denoise", "train", "--spectra", p["spectra"], "--method",
                                             "classical", "--out", f / "model_out"]},
        "denoise predict": {"spectra": f / "spectra.csv", "model": f / "denoise",
                          "args": lambda p: ["denoise", "predict", "--model", p["model"], "--spectra",
                                             p["spectra"], "--out", f / "out.csv"]},
        "transfer predict": {"spectra": f / "secondary.csv", "model": f / "transfer",
                           "args": lambda p: ["transfer", "predict", "--model", p["model"], "--spectra",
                                              p["spectra"], "--out", f / "out.csv"]},
        "qa predict": {"spectra": f / "spectra.csv", "model": f / "qa",
               "args": lambda p: ["qa", "predict", "--model", p["model"], "--spectra", p["spectra"], "--out", f / "flags.csv"]},
        "mrs fit": {"mrs": f / "scan.npz", "water": f / "water.npz",
                    "args": lambda p: ["mrs", "fit", "--spectra", p["mrs"], "--water", p["water"], "--out", f / "conc.csv"]},
        "mrs align": {"mrs": f / "scan.npz",
                      "args": lambda p: ["mrs", "align", "--spectra", p["mrs"], "--out", f / "aligned.npz"]},
        "mrs qa": {"mrs": f / "scan.npz",
                   "args": lambda p: ["mrs", "qa", "--spectra", p["mrs"], "--out", f / "flags.csv"]},
        "gamma identify": {"gamma": f / "gamma.spe",
                           "args": lambda p: ["gamma", "identify", "--spectra", p["gamma"], "--out", f / "ids.csv"]},
        "gamma identify --method peaks": {"gamma": f / "gamma.spe",
                                          "args": lambda p: ["gamma", "identify", "--spectra", p["gamma"], "--method",
                                                             "peaks", "--out", f / "ids.csv"]},
        "unmix train": {"cube": f / "cube.npy",
                  "args": lambda p: ["unmix", "train", "--spectra", p["cube"], "--components", "2", "--method", "nmf",
                                     "--out", f / "unmix_out"]},
    }


def all_cases() -> list[Case]:
    """Every (command, input slot, corruption) combination the generator knows."""
    cases = []
    sample = _commands(Path("."))
    for command, slots in sample.items():
        for slot in slots:
            if slot == "args":
                continue
            if slot in ("spectra",):
                names = [*_csv_mutations(), *SIDECAR_MUTATIONS, *_array_mutations()]
            elif slot == "cube":
                names = [n for n, (suffix, _) in _array_mutations().items() if suffix != ".csv"]
            elif slot in ("targets", "labels"):
                names = list(_table_mutations("x", [0] * N))
            elif slot in ("mrs", "water"):
                names = list(_mrs_mutations())
            elif slot == "gamma":
                names = list(_gamma_mutations())
            else:
                names = list(_model_mutations())
            cases += [Case(command, slot, name) for name in names]
    return cases


def _corrupt(case: Case, folder: Path, paths: dict[str, Path]) -> Path:
    """Apply the corruption; returns the path of the corrupted input (which the error must name)."""
    slot_path = paths[case.slot]
    if case.slot == "model":
        _model_mutations()[case.corruption](slot_path)
        return slot_path
    if case.slot in ("mrs", "water", "gamma"):
        suffix, write = (_gamma_mutations() if case.slot == "gamma" else _mrs_mutations())[case.corruption]
        target = folder / f"bad_{case.slot}{suffix}"
        write(target)
        paths[case.slot] = target
        return target
    if case.corruption in _array_mutations():
        suffix, write = _array_mutations()[case.corruption]
        target = folder / f"bad_{case.slot}{suffix}"
        write(target)
        paths[case.slot] = target
        return target
    if case.corruption in SIDECAR_MUTATIONS:
        slot_path.with_name(slot_path.name + ".axis.json").write_text(SIDECAR_MUTATIONS[case.corruption])
        return slot_path
    if case.slot in ("targets", "labels"):
        good = ["a", "b", "c"] * (N // 3) if case.slot == "labels" else list(np.round(np.linspace(1, 9, N), 3))
        column = "label" if case.slot == "labels" else "fat"
        text = _table_mutations(column, good)[case.corruption]
    else:
        text = _csv_mutations()[case.corruption](slot_path.read_text())
    slot_path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return slot_path


def run_case(case: Case, workspace: Workspace, index: int) -> Outcome:
    from speclearn.cli.main import UNEXPECTED, main
    folder = workspace.case_folder(index)
    commands = _commands(folder)
    spec = commands[case.command]
    paths = {k: v for k, v in spec.items() if k != "args"}
    corrupted = _corrupt(case, folder, paths)
    before = digest(folder)
    start = time.perf_counter()
    try:
        code, err = _run(main, spec["args"](paths))
    except BaseException as exc:  # noqa: BLE001 - anything escaping main is a failure of the suite's target
        return Outcome(case, False, -1, f"escaped main: {type(exc).__name__}: {exc}"[:200], time.perf_counter() - start)
    seconds = time.perf_counter() - start
    after = {k: v for k, v in digest(folder).items() if k in before}
    lines = [line for line in err.splitlines() if line.strip()]
    problem = ""
    if after != before:
        problem = "an input changed: " + ", ".join(k for k in before if after.get(k) != before[k])[:100]
    elif "Traceback" in err:
        problem = "traceback"
    elif (folder / "__SPECLEARN_PWNED__").exists() or Path("__SPECLEARN_PWNED__").exists():
        problem = "code from a model folder ran"
    elif code not in (0, 2):
        problem = f"exit code {code}"
    elif code == 2 and len(lines) != 1:
        problem = f"{len(lines)} stderr lines"
    elif code == 2 and UNEXPECTED in err:
        problem = "left to the last-resort handler: " + lines[0][-160:]
    elif code == 2 and corrupted.name not in err:
        problem = "error does not name the corrupted file: " + lines[0][-120:]
    shutil.rmtree(folder, ignore_errors=True)
    return Outcome(case, not problem, code, problem, seconds)


def run_suite(cases: list[Case], workdir: Path | None = None) -> list[Outcome]:
    """Run `cases` in a scratch folder (its own working directory, so no payload can land elsewhere)."""
    import os
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        root = Path(tmp)
        cwd = os.getcwd()
        os.chdir(root)
        try:
            workspace = Workspace(root)
            return [run_case(case, workspace, i) for i, case in enumerate(cases)]
        finally:
            os.chdir(cwd)


def run_benchmark(out_dir: Path, *, scale: str = "full", seed: int = 0) -> dict:
    """All cases (`full`) or every fourth (`quick`); writes reliability.json and reliability.md."""
    from speclearn.io.atomic import write_result
    from speclearn.metrics import timed
    cases = all_cases()
    if scale == "quick":
        cases = cases[seed % 4::4]
    outcomes, wall = timed(lambda: run_suite(cases))
    failed = [o for o in outcomes if not o.held]
    by_command: dict[str, list[int]] = {}
    for o in outcomes:
        tried_held = by_command.setdefault(o.case.command, [0, 0])
        tried_held[0] += 1
        tried_held[1] += int(o.held)
    summary = {"tried": len(outcomes), "held": len(outcomes) - len(failed),
               "tracebacks": sum(o.problem == "traceback" or o.problem.startswith("escaped") for o in outcomes),
               "inputs_changed": sum(o.problem.startswith("an input changed") for o in outcomes),
               "code_ran": sum(o.problem == "code from a model folder ran" for o in outcomes),
               "last_resort": sum(o.problem.startswith("left to the last-resort") for o in outcomes),
               "wall_s": round(wall, 1)}
    result = {"summary": summary, "scale": scale, "by_command": by_command,
              "failures": [{"command": o.case.command, "slot": o.case.slot, "corruption": o.case.corruption,
                            "code": o.code, "problem": o.problem} for o in failed]}
    write_result(out_dir / "reliability.json", result)
    rows = "\n".join(f"| {c} | {t} | {h} |" for c, (t, h) in sorted(by_command.items()))
    md = (f"## Reliability (malformed and hostile inputs; scale {scale})\n\n"
          f"Scale: {summary['tried']} cases (command x input x corruption: CSV text mutations, array files, "
          f"tables, MRS and gamma files, model folders incl. hostile skops payloads), {N} spectra x {CHANNELS} channels each "
          f"(MRS: {MRS_POINTS}-point FIDs), "
          f"wall {summary['wall_s']} s on 2 shared CPU cores.\n\n"
          "A case holds when the command exits 0 or 2, a failure is one stderr line naming the corrupted file, "
          "no traceback, no failure left to the last-resort handler, no code from a model folder runs, and every "
          "input is byte-identical afterwards.\n\n"
          f"| command | tried | held |\n|---|---|---|\n{rows}\n| **all** | **{summary['tried']}** | "
          f"**{summary['held']}** |\n\n"
          f"Tracebacks: {summary['tracebacks']}; inputs changed: {summary['inputs_changed']}; code run from a model "
          f"folder: {summary['code_ran']}; left to the last-resort handler: {summary['last_resort']}.\n")
    if failed:
        md += "\nCases that did not hold:\n\n" + "\n".join(
            f"- {o.case.command} / {o.case.slot} / {o.case.corruption}: {o.problem}" for o in failed[:40]) + "\n"
    write_result(out_dir / "reliability.md", md)
    return result
