"""Gamma-ray spectrum files: ORTEC `.Spe` (text), N42 (XML) and the project's CSV.

Every reader keeps the live and real times and the energy calibration (metadata columns
`live_time_s`, `real_time_s`, `cal_offset`, `cal_gain`, `cal_quad`, `calibration`). A file whose
calibration is invalid (zero or negative slope, energies that do not increase) is refused with an
`InputError` naming the file; a file without a calibration keeps a channel axis unless a
calibration is given.
"""
from __future__ import annotations

import re
from dataclasses import replace
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra

CALIBRATION_COLUMNS = ("cal_offset", "cal_gain", "cal_quad")


def check_calibration(coefficients, n_channels: int, *, file: str | Path | None = None,
                      first_channel: int = 0) -> np.ndarray:
    """Energies (keV) of the channels under `E = a + b*ch + c*ch^2`, refused unless they increase."""
    coefficients = np.zeros(3) if coefficients is None else np.asarray(coefficients, dtype=float)
    coefficients = np.pad(coefficients, (0, max(0, 3 - coefficients.size)))[:3]
    a, b, c = coefficients
    text = f"E = {a:g} + {b:g}*ch + {c:g}*ch^2 keV"
    if not np.all(np.isfinite(coefficients)):
        raise InputError(f"invalid energy calibration ({text}): not finite", file=file)
    if b <= 0:
        raise InputError(f"invalid energy calibration ({text}): the slope is {'zero' if b == 0 else 'negative'}; "
                         "give one with --calibration OFFSET,GAIN", file=file)
    channels = np.arange(first_channel, first_channel + n_channels, dtype=float)
    energy = a + b * channels + c * channels ** 2
    step = np.diff(energy)
    if np.any(step <= 0):
        turn = int(np.flatnonzero(step <= 0)[0]) + first_channel
        raise InputError(f"invalid energy calibration ({text}): energy stops increasing at channel {turn}", file=file)
    return energy


def calibration_text(coefficients) -> str:
    a, b, c = (list(np.asarray(coefficients, dtype=float)) + [0.0, 0.0, 0.0])[:3]
    return f"E = {a:.6g} + {b:.6g}*ch" + (f" + {c:.6g}*ch^2" if c else "") + " keV"


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("$") and stripped.endswith(":"):
            name = stripped[1:-1].upper()
            sections[name] = []
        elif name is not None:
            sections[name].append(stripped)
    return sections


def _numbers(lines: list[str], file: Path, what: str) -> list[float]:
    try:
        return [float(x) for line in lines for x in line.split() if not re.fullmatch(r"[A-Za-z]+", x)]
    except ValueError:
        raise InputError(f"${what} holds a value that is not a number", file=file) from None


def _spectra(counts: np.ndarray, coefficients, first: int, file: Path, meta: dict) -> Spectra:
    """One spectrum on its energy axis (channel axis when no calibration is known)."""
    if coefficients is None:
        axis, kind, cal = np.arange(first, first + counts.size, dtype=float), "channel", "none"
        meta.update(dict.fromkeys(CALIBRATION_COLUMNS, np.nan))
    else:
        axis = check_calibration(coefficients, counts.size, file=file, first_channel=first)
        kind, cal = "energy", calibration_text(coefficients)
        meta.update(zip(CALIBRATION_COLUMNS, (list(np.asarray(coefficients, float)) + [0, 0, 0])[:3]))
    meta.update(calibration=cal, first_channel=first, file=file.name)
    frame = pd.DataFrame([meta], index=pd.Index([file.stem], name="id"))
    return Spectra(counts[None, :], axis, axis_kind=kind, axis_unit="keV" if kind == "energy" else "",
                   meta=frame, source=str(file))


def read_spe(path: str | Path, *, calibration=None) -> Spectra:
    """One ORTEC `.Spe` text spectrum; `calibration` (offset, gain[, quad]) replaces the file's."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise InputError(f"cannot read ({err})", file=path) from None
    sections = _sections(text)
    if "DATA" not in sections or not sections["DATA"]:
        raise InputError("not an ORTEC .Spe text file (no $DATA: section)", file=path)
    data = sections["DATA"]
    try:
        first, last = (int(x) for x in data[0].split()[:2])
        counts = np.array([float(x) for line in data[1:] for x in line.split()], dtype=float)
    except ValueError:
        raise InputError("$DATA: holds a value that is not a number", file=path) from None
    if counts.size != last - first + 1:
        raise InputError(f"$DATA: announces channels {first}..{last} but holds {counts.size} counts", file=path)
    if np.any(counts < 0):
        raise InputError("$DATA: holds negative counts", file=path)
    meta: dict = {}
    times = _numbers(sections.get("MEAS_TIM", []), path, "MEAS_TIM")
    meta["live_time_s"], meta["real_time_s"] = (times + [np.nan, np.nan])[:2] if times else (np.nan, np.nan)
    meta["start"] = sections.get("DATE_MEA", [""])[0] if sections.get("DATE_MEA") else ""
    remarks = " ".join(sections.get("SPEC_REM", []))
    found = re.search(r"DETDESC#\s*(.*?)(?:\s+AP#|$)", remarks)
    meta["detector"] = found.group(1).strip() if found else ""
    meta["description"] = " ".join(sections.get("SPEC_ID", []))
    if calibration is None:
        if "MCA_CAL" in sections and len(sections["MCA_CAL"]) >= 2:
            calibration = _numbers(sections["MCA_CAL"][1:2], path, "MCA_CAL")
        elif "ENER_FIT" in sections and sections["ENER_FIT"]:
            calibration = _numbers(sections["ENER_FIT"][:1], path, "ENER_FIT")
    return _spectra(counts, calibration, first, path, meta)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_n42(path: str | Path, *, calibration=None) -> Spectra:
    """The first spectrum of an ANSI N42.42 XML file, with its energy calibration and times."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise InputError(f"not valid XML ({err})", file=path) from None
    elements = list(root.iter())
    channel = next((e for e in elements if _local(e.tag) == "ChannelData"), None)
    if channel is None or not (channel.text or "").strip():
        raise InputError("no <ChannelData> inside", file=path)
    values = [float(x) for x in channel.text.split()]
    if channel.get("compressionCode", "").lower().startswith("countedzeroes"):
        expanded, i = [], 0
        while i < len(values):
            if values[i] == 0 and i + 1 < len(values):
                expanded += [0.0] * int(values[i + 1])
                i += 2
            else:
                expanded.append(values[i])
                i += 1
        values = expanded
    counts = np.asarray(values, dtype=float)

    def duration(name: str) -> float:
        element = next((e for e in elements if _local(e.tag) == name), None)
        found = re.fullmatch(r"P?T?([\d.]+)S?", (element.text or "").strip()) if element is not None else None
        return float(found.group(1)) if found else np.nan

    meta = {"live_time_s": duration("LiveTimeDuration"), "real_time_s": duration("RealTimeDuration"),
            "start": "", "detector": "", "description": ""}
    if calibration is None:
        coeff = next((e for e in elements if _local(e.tag) == "CoefficientValues"), None)
        if coeff is not None and coeff.text:
            calibration = [float(x) for x in coeff.text.split()]
    return _spectra(counts, calibration, 0, path, meta)


def read_gamma(path: str | Path, *, calibration=None) -> Spectra:
    """Any gamma spectrum file: `.spe`, `.n42`/`.xml`, or a format `speclearn.io` reads (CSV ...)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".spe":
        return read_spe(path, calibration=calibration)
    if suffix in (".n42", ".xml"):
        return read_n42(path, calibration=calibration)
    from speclearn.io import read_spectra
    spectra = read_spectra(path)
    if calibration is not None:
        n = spectra.n_channels
        axis = check_calibration(calibration, n, file=path)
        spectra = replace(spectra, axis=axis, axis_kind="energy", axis_unit="keV")
    elif spectra.axis_kind not in ("energy", "channel"):
        raise InputError(f"a gamma spectrum needs an energy (keV) or channel axis, got {spectra.axis_kind}", file=path)
    return spectra
