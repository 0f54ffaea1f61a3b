"""The CSV exchange format: `id` + one numeric header cell per axis value, one row per spectrum.

Tables (targets, groups, metadata) are `id` + named columns. Every problem is reported with the
file, the row (1-based, header excluded, with the id) and the column (1-based, `id` is column 1).
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError, existing, note_read, shorten
from speclearn.core.spectra import Spectra, check_axis
from speclearn.io.atomic import atomic_path, check_output


#: Largest CSV read into memory (text parsing needs several times the file size).
CSV_BUDGET = 2 * 2**30


def _read_lines(path: Path) -> tuple[bytes, list[bytes]]:
    existing(path)
    if path.is_dir():
        raise InputError("is a folder, expected a CSV file", file=path)
    size = path.stat().st_size
    if size > CSV_BUDGET:
        raise InputError(f"CSV of {size / 2**30:.1f} GiB: too large to parse in memory; convert it to .zarr or .npy "
                         "(read lazily, block by block)", file=path)
    text = path.read_bytes()
    lines = [line for line in text.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        raise InputError("file is empty", file=path)
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as err:
        row = text[:err.start].count(b"\n")
        raise InputError(f"not UTF-8 text (byte 0x{text[err.start]:02x}); save the file as UTF-8",
                         file=path, row=row if row else "header") from None
    return text, lines


def _header(path: Path, line: bytes) -> list[str]:
    text = line.decode("utf-8-sig")
    if "," not in text:
        for name, sep in (("semicolon", ";"), ("tab", "\t")):
            if sep in text:
                comma = " with decimal commas" if re.search(rb"\d,\d", line + b"") or sep == ";" else ""
                raise InputError(f"{name}-delimited file{comma} (a spreadsheet export?); speclearn reads "
                                 "comma-delimited CSV with '.' decimals: export it again that way",
                                 file=path, row="header")
    cells = [c.strip() for c in next(csv.reader([text]))]
    if cells[0].lower() not in ("id", ""):  # empty: pandas' `to_csv` of a frame indexed by id
        raise InputError(f"first header cell must be 'id', found {shorten(cells[0])}", file=path, column=1)
    if len(cells) < 2:
        raise InputError("header has no column after 'id'", file=path)
    return cells


def _check_ragged(path: Path, lines: list[bytes], n_fields: int) -> None:
    if any(b'"' in line for line in lines[1:]):
        counts = [len(row) for row in csv.reader(line.decode("utf-8", "replace") for line in lines[1:])]
    else:
        counts = [line.count(b",") + 1 for line in lines[1:]]
    for i, count in enumerate(counts):
        if count != n_fields:
            raise InputError(f"ragged row: {count} fields where the header has {n_fields}",
                             file=path, row=i + 1)


def _locate_bad_cell(path: Path, frame: pd.DataFrame, first_column: int) -> InputError:
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().to_numpy() | ~np.isfinite(numeric.to_numpy(dtype=float))
    r, c = (int(x[0]) for x in np.nonzero(bad))
    value = frame.iat[r, c]
    text = "missing value" if pd.isna(value) or str(value).strip() == "" else \
        f"value {shorten(value)} is not a finite number"
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+,\d+\s*", value):
        text += " (a decimal comma? speclearn reads '.' decimals)"
    return InputError(text, file=path, row=f"{r + 1} (id {shorten(frame.index[r])})",
                      column=f"{c + first_column} ({str(frame.columns[c])[:20]})")


def _parse_numeric(path: Path, text: bytes, header: list[str]) -> pd.DataFrame:
    names = ["id", *header[1:]]
    try:
        frame = pd.read_csv(io.BytesIO(text), header=0, names=names, index_col=0,
                            dtype={"id": str}, skip_blank_lines=True,
                            float_precision="round_trip", engine="c")
        values = frame.to_numpy(dtype=float)
    except (ValueError, TypeError):
        frame = pd.read_csv(io.BytesIO(text), header=0, names=names, index_col=0, dtype=str)
        raise _locate_bad_cell(path, frame, 2) from None
    if not np.isfinite(values).all():
        raise _locate_bad_cell(path, frame, 2)
    if frame.index.isna().any():
        raise InputError("empty id", file=path, row=int(np.flatnonzero(frame.index.isna())[0]) + 1, column=1)
    frame.index = frame.index.astype(str).str.strip()
    dup = frame.index.duplicated()
    if dup.any():
        r = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(frame.index == frame.index[r])[0])
        raise InputError(f"duplicate id {shorten(frame.index[r])} (also row {first + 1})", file=path, row=r + 1)
    return frame


def sidecar_path(path: Path) -> Path:
    """`X.csv` -> `X.csv.axis.json`: axis kind/unit (and values for cubes without a header)."""
    return path.with_name(path.name + ".axis.json")


def read_sidecar(path: Path) -> dict[str, Any]:
    side = sidecar_path(path)
    if not side.exists():
        return {}
    try:
        record = json.loads(side.read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"axis sidecar is not valid JSON ({str(err)[:60]})", file=side) from None
    if not isinstance(record, dict) or not all(isinstance(record.get(k, ""), str) for k in ("kind", "unit")):
        raise InputError("axis sidecar must be a JSON object with text 'kind' and 'unit'", file=side)
    return record


def read_spectra_csv(path: str | Path, *, axis_kind: str | None = None,
                     axis_unit: str | None = None, expect: dict[str, Any] | None = None) -> Spectra:
    """Read spectra from the CSV exchange format (axis kind/unit from a sidecar if present).

    expect: a model's axis (`Spectra.axis_spec()`), checked on the header before the body is read.
    """
    path = Path(path)
    text, lines = _read_lines(path)
    header = _header(path, lines[0])
    if expect is not None and isinstance(expect.get("values"), list) and len(header) - 1 != len(expect["values"]):
        raise InputError(f"{len(header) - 1} channels in the header, but the model was trained on "
                         f"{len(expect['values'])}", file=path, row="header")
    axis_cells = header[1:]
    axis = np.empty(len(axis_cells))
    for j, cell in enumerate(axis_cells):
        try:
            axis[j] = float(cell)
        except ValueError:
            raise InputError(f"header cell {shorten(cell)} is not a number (the header holds the axis values)",
                             file=path, column=j + 2) from None
    axis = check_axis(axis, file=str(path))
    if len(lines) < 2:
        raise InputError("file has a header but no spectra", file=path)
    _check_ragged(path, lines, len(header))
    frame = _parse_numeric(path, text, header)
    side = read_sidecar(path)
    return Spectra(frame.to_numpy(dtype=float), axis,
                   axis_kind=axis_kind or side.get("kind", "channel"),
                   axis_unit=axis_unit or side.get("unit", ""),
                   meta=pd.DataFrame(index=frame.index), source=str(path))


def read_table_csv(path: str | Path, *, numeric: bool = False, columns: list[str] | None = None) -> pd.DataFrame:
    """Read an `id` + columns table (targets, groups, metadata), indexed by id.

    numeric: every column must hold finite numbers (targets). columns: required column names.
    """
    path = Path(path)
    note_read(path)
    text, lines = _read_lines(path)
    header = _header(path, lines[0])
    if len(lines) < 2:
        raise InputError("file has a header but no rows", file=path)
    _check_ragged(path, lines, len(header))
    if numeric:
        frame = _parse_numeric(path, text, header)
    else:
        frame = pd.read_csv(io.BytesIO(text), header=0, index_col=0, dtype={header[0] or "Unnamed: 0": str})
        frame.index = frame.index.astype(str).str.strip().rename("id")
        dup = frame.index.duplicated()
        if dup.any():
            r = int(np.flatnonzero(dup)[0])
            raise InputError(f"duplicate id {shorten(frame.index[r])}", file=path, row=r + 1)
    frame.index.name = "id"
    for name in columns or []:
        if name not in frame.columns:
            raise InputError(f"missing column {name!r} (found {shorten(', '.join(map(str, frame.columns)), 80)})", file=path)
    return frame


def align_table(table: pd.DataFrame, spectra: Spectra, *, file: str | Path | None = None) -> pd.DataFrame:
    """Rows of `table` in the order of the spectra; every id must be present on both sides."""
    missing = spectra.meta.index.difference(table.index, sort=False)
    if len(missing):
        raise InputError(f"{len(missing)} spectrum id(s) have no row here, e.g. {shorten(missing[0])} "
                         f"(from {spectra.source or 'the spectra'})", file=file)
    extra = table.index.difference(spectra.meta.index, sort=False)
    if len(extra):
        raise InputError(f"{len(extra)} id(s) are not among the spectra, e.g. {shorten(extra[0])} "
                         f"(spectra: {spectra.source or 'given'})", file=file)
    return table.loc[spectra.meta.index]


def write_spectra_csv(spectra: Spectra, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the CSV exchange format (and its axis sidecar) atomically."""
    path = Path(path)
    frame = pd.DataFrame(spectra.values(), index=spectra.meta.index,
                         columns=[repr(float(v)) for v in spectra.axis])
    side = sidecar_path(path)
    check_output(side, overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp:
        frame.to_csv(tmp, index_label="id", float_format="%.10g")
    with atomic_path(side, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps({"kind": spectra.axis_kind, "unit": spectra.axis_unit}))
    return path


def write_table_csv(table: pd.DataFrame, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write an `id` + columns table atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        table.to_csv(tmp, index_label="id", float_format="%.10g")
    return Path(path)
