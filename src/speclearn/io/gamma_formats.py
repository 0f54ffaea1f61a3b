"""Gamma-ray spectrum files: ORTEC `.Spe` (text) and `.Spc` (binary), Canberra `.cnf` (binary),
IEC 1455 (`.iec`, text), N42 (XML) and the project's CSV.

Every reader keeps the live and real times and the energy calibration (metadata columns
`live_time_s`, `real_time_s`, `cal_offset`, `cal_gain`, `cal_quad`, `calibration`). A file whose
calibration is invalid (zero or negative slope, energies that do not increase) is refused with an
`InputError` naming the file; a file without a calibration keeps a channel axis unless a
calibration is given.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError, existing
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
    path = existing(path)
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


def _read_bytes(path: Path, what: str) -> bytes:
    existing(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read ({err})", file=path) from None
    if not data:
        raise InputError(f"empty file, not {what}", file=path)
    return data


def is_ortec_spc(path: str | Path) -> bool:
    """Record 1 of an ORTEC `.Spc` starts with INFTYP 1 and FILTYP 1 (integer) or 5 (real) as uint16."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return len(head) == 4 and head[:2] == b"\x01\x00" and head[2:4] in (b"\x01\x00", b"\x05\x00")


def read_spc(path: str | Path, *, calibration=None) -> Spectra:
    """One ORTEC `.Spc` binary spectrum (ORTEC Software File Structure Manual: 128-byte records;
    record 1 holds the pointers, the acquisition record the times as text, the first calibration
    record the energy coefficients as floats at bytes 20-31)."""
    path = Path(path)
    data = _read_bytes(path, "an ORTEC .Spc file")
    n_records = len(data) // 128
    if n_records < 2:
        raise InputError("not an ORTEC .Spc file (shorter than two 128-byte records)", file=path)
    words = np.frombuffer(data[:128], dtype="<u2")
    filetype, acq_record, cal_record = int(words[1]), int(words[4]), int(words[17])
    first_record, n_channels, first = int(words[30]), int(words[32]), int(words[33])
    if words[0] != 1 or not 1 <= first_record <= n_records or n_channels < 1:
        raise InputError("not an ORTEC .Spc file (record 1 does not point to a spectrum)", file=path)
    start = 128 * (first_record - 1)
    if start + 4 * n_channels > len(data):
        raise InputError(f"the file ends before its {n_channels} channels", file=path)
    counts = np.frombuffer(data[start:start + 4 * n_channels], dtype="<u4" if filetype == 1 else "<f4").astype(float)
    meta: dict = {"live_time_s": np.nan, "real_time_s": np.nan, "start": "", "detector": "", "description": ""}
    if 1 <= acq_record <= n_records:
        record = data[128 * (acq_record - 1):128 * acq_record].decode("latin-1")
        try:
            meta["live_time_s"], meta["real_time_s"] = float(record[38:48]), float(record[48:58])
        except ValueError:
            pass
        meta["start"] = f"{record[16:28].strip()} {record[28:38].strip()}".strip()
    if calibration is None and 1 <= cal_record <= n_records:
        calibration = np.frombuffer(data[128 * (cal_record - 1) + 20:128 * (cal_record - 1) + 32], dtype="<f4")
        if not np.any(calibration):
            calibration = None
    return _spectra(counts, calibration, first, path, meta)


def _pdp11(data: bytes, at: int) -> float:
    """A 32-bit DEC PDP-11 float (how Canberra stores calibration coefficients)."""
    b = data[at:at + 4]
    exponent = ((b[1] & 0x7F) << 1) | (b[0] >> 7)
    if exponent == 0:
        return 0.0
    mantissa = (128 + (b[0] & 0x7F)) / 256.0 + b[3] / 65536.0 + b[2] / 16777216.0
    return (-1.0 if b[1] & 0x80 else 1.0) * mantissa * 2.0 ** (exponent - 128)


def _uint(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at:at + size], "little")


def _cnf_duration(data: bytes, at: int) -> float:
    """A CNF time interval: the bitwise complement of a count of 100 ns ticks."""
    return float(~_uint(data, at, 8) & (2 ** 64 - 1)) * 1e-7


def read_cnf(path: str | Path, *, calibration=None) -> Spectra:
    """One Canberra `.cnf` (Genie 2000) binary spectrum: the section table from byte 112 (48-byte
    entries: type byte, offset at +10) points to the acquisition (type 0), sample (1) and channel
    (5) sections; times and the PDP-11 float energy coefficients are read from the acquisition
    section, the counts (uint32) from 512 bytes into the channel section (layout as documented by
    xylib's canberra_cnf reader)."""
    path = Path(path)
    data = _read_bytes(path, "a Canberra .cnf file")
    sections: dict[int, list[int]] = {}
    for at in range(112, min(len(data) - 48, 128 * 1024), 48):
        kind, b1, b2 = data[at], data[at + 1], data[at + 2]
        if (b1 == 0x20 and b2 == 0x01) or b1 == 0 or b2 == 0:
            sections.setdefault(kind, []).append(_uint(data, at + 10, 4))
            if all(k in sections for k in (0, 1, 2, 5)):
                break
    acq = next((o for o in sections.get(0, []) if 0 < o < len(data) - 256 and data[o:o + 2] == b"\x00\x20"), None)
    chan = next((o for o in sections.get(5, []) if 0 < o < len(data) and data[o:o + 2] == b"\x05\x20"), None)
    if acq is None or chan is None:
        raise InputError("not a Canberra .cnf file (no acquisition or channel section)", file=path)
    pha = acq + 48 + 128
    if data[pha:pha + 3] != b"PHA":
        raise InputError("not a Canberra .cnf file (no PHA parameters)", file=path)
    n_channels = 256 * _uint(data, pha + 10, 2)
    if not 256 <= n_channels <= 65536 or chan + 512 + 4 * n_channels > len(data):
        raise InputError(f"the channel section does not hold the announced {n_channels} channels", file=path)
    at = acq + 48 + _uint(data, acq + 36, 2) + 1
    ticks = _uint(data, at, 8)  # 100 ns ticks since 17 November 1858 (the MJD epoch)
    start = (datetime(1858, 11, 17) + timedelta(microseconds=ticks // 10)).isoformat(sep=" ") if ticks else ""
    meta = {"real_time_s": _cnf_duration(data, at + 8), "live_time_s": _cnf_duration(data, at + 16),
            "start": start, "detector": "", "description": ""}
    sample = next((o for o in sections.get(1, []) if 0 < o < len(data) - 112 and data[o:o + 2] == b"\x01\x20"), None)
    if sample is not None:
        meta["description"] = data[sample + 48:sample + 112].decode("latin-1").replace("\x00", " ").strip()
    counts = np.frombuffer(data[chan + 512:chan + 512 + 4 * n_channels], dtype="<u4").astype(float)
    # the first two channels hold the live and real times in seconds, not counts
    counts[:2] = [0.0 if int(c) in (int(meta["real_time_s"]), int(meta["live_time_s"])) else c for c in counts[:2]]
    if calibration is None:
        encoding = next((o for o in sections[0] if o != acq and 0 < o < len(data) and data[o:o + 2] == b"\x00\x20"),
                        acq)
        for base in (encoding + 48 + 32 + _uint(data, acq + 34, 2), encoding + 48 + 32):
            coefficients = [_pdp11(data, base + 36 + 4 * i) for i in range(3)]
            if base + 48 <= len(data) and coefficients[1] != 0:
                calibration = coefficients
                break
    return _spectra(counts, calibration, 0, path, meta)


def read_iec(path: str | Path, *, calibration=None) -> Spectra:
    """One IEC 1455 (IEC 61455) text spectrum: 'A004'-prefixed records; record 2 live time, real
    time, channels; 3 start; 4 energy coefficients; 59 on: a channel number then counts."""
    path = Path(path)
    data = _read_bytes(path, "an IEC 1455 file").decode("latin-1")
    records = [line[4:].rstrip("\r") for line in data.splitlines() if line.startswith("A004")]
    if len(records) < 59:
        raise InputError(f"not an IEC 1455 file ({len(records)} 'A004' records; the spectrum starts at record 59)",
                         file=path)
    try:
        live, real, n_channels = records[1].split()[:3]
        live_s, real_s, n = float(live), float(real), int(n_channels)
        counts = np.array([float(x) for line in records[58:] for x in line.split()[1:]], dtype=float)
        coefficients = [float(x) for x in re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", records[3])]
    except ValueError:
        raise InputError("an IEC 1455 record holds a value that is not a number", file=path) from None
    if counts.size < n:
        raise InputError(f"record 2 announces {n} channels but the file holds {counts.size} counts", file=path)
    if np.any(counts < 0):
        raise InputError("the spectrum holds negative counts", file=path)
    meta = {"live_time_s": live_s, "real_time_s": real_s, "start": " ".join(records[2].split()[:2]),
            "detector": records[0].strip(), "description": " ".join(r.strip() for r in records[5:9] if r.strip())}
    if calibration is None and any(coefficients):
        calibration = coefficients[:3]
    return _spectra(counts[:n], calibration, 0, path, meta)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_n42(path: str | Path, *, calibration=None) -> Spectra:
    """The first spectrum of an ANSI N42.42 XML file, with its energy calibration and times."""
    path = existing(path)
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
    """Any gamma spectrum file: `.spe`, `.spc`, `.cnf`, `.iec`, `.n42`/`.xml`, or a format
    `speclearn.io` reads (CSV ...)."""
    path = Path(path)
    suffix = path.suffix.lower()
    readers = {".spe": read_spe, ".spc": read_spc, ".cnf": read_cnf, ".iec": read_iec}
    if suffix in readers:
        return readers[suffix](path, calibration=calibration)
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
