"""Gamma readers for ORTEC .Spc, Canberra .cnf and IEC 1455, on files built per the documented layouts."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from speclearn.core.errors import InputError
from speclearn.io import read_spectra

COUNTS = np.array([0, 3, 10, 250, 40, 7, 1, 0] * 32, dtype=np.uint32)  # 256 channels


def _spc(path, counts, *, coefficients=(1.5, 0.75, 1e-6), live="     120.0", real="     125.5"):
    """ORTEC .Spc: record 1 pointers (uint16 words), acquisition record 2, calibration record 3,
    spectrum from record 4 (uint32)."""
    words = np.zeros(64, dtype="<u2")
    words[[0, 1, 4, 17, 30, 31, 32, 33]] = [1, 1, 2, 3, 4, len(counts) // 32, len(counts), 0]
    acquisition = f"{'TEST.SPC':16s}{'17-SEP-121':12s}{'13:41:07':10s}{live}{real}".encode().ljust(128, b"\0")
    calibration = (b"\0" * 20 + struct.pack("<3f", *coefficients)).ljust(128, b"\0")
    path.write_bytes(words.tobytes() + acquisition + calibration + counts.astype("<u4").tobytes())
    return path


def _pdp11(value: float) -> bytes:
    if value == 0:
        return b"\0\0\0\0"
    m, e = np.frexp(abs(value))  # value = m * 2**e, 0.5 <= m < 1
    mantissa, exponent = int(round(m * 2 ** 24)), int(e) + 128
    return bytes([((exponent & 1) << 7) | ((mantissa >> 16) & 0x7F), (0x80 if value < 0 else 0) | (exponent >> 1),
                  mantissa & 0xFF, (mantissa >> 8) & 0xFF])


def _cnf(path, counts, *, coefficients=(-0.21, 0.719, 0.0), live=841.42, real=849.51):
    """Canberra .cnf: section table at 112, acquisition (0), sample (1), efficiency (2), channels (5)."""
    acq, sample, eff, chan = 1024, 4096, 5120, 6144
    data = bytearray(chan + 512 + 4 * len(counts))
    for k, (kind, offset) in enumerate(((0, acq), (1, sample), (2, eff), (5, chan))):
        at = 112 + 48 * k
        data[at:at + 3] = bytes([kind, 0x20, 0x01])
        data[at + 10:at + 14] = struct.pack("<I", offset)
    for kind, offset in ((0, acq), (1, sample), (2, eff), (5, chan)):
        data[offset:offset + 2] = bytes([kind, 0x20])
    offset1, offset2 = 400, 600
    data[acq + 34:acq + 38] = struct.pack("<HH", offset1, offset2)
    data[acq + 176:acq + 179] = b"PHA"
    data[acq + 186:acq + 188] = struct.pack("<H", len(counts) // 256)
    at = acq + 48 + offset2 + 1
    ticks = int((2014 - 1858) * 365.2425 * 86400 * 1e7)
    data[at:at + 8] = struct.pack("<Q", ticks)
    for j, seconds in enumerate((real, live)):
        data[at + 8 + 8 * j:at + 16 + 8 * j] = struct.pack("<Q", ~int(round(seconds * 1e7)) & (2 ** 64 - 1))
    base = acq + 48 + 32 + offset1 + 36
    for i, c in enumerate(coefficients):
        data[base + 4 * i:base + 4 * i + 4] = _pdp11(c)
    data[sample + 48:sample + 60] = b"Kelp sample\0"
    data[chan + 512:] = counts.astype("<u4").tobytes()
    path.write_bytes(bytes(data))
    return path


def _iec(path, counts, *, coefficients="-1.55656000E-02 8.00000000E-01-2.97939000E-08 0.00000000E+00"):
    """IEC 1455: 'A004' + 66 characters per record; spectrum from record 59, 5 counts per line."""
    records = ["NUCICA   HPGE   0   0     0", f"     3564.00     3600.00  {len(counts)}", "09/12/21 10:54:31",
               coefficients, "", "Test spectrum", "", "", "", ""] + [""] * 48
    assert len(records) == 58
    for i in range(0, len(counts), 5):
        records.append(f"{i:6d}" + "".join(f"{int(c):10d}" for c in counts[i:i + 5]))
    path.write_text("".join("A004" + r.ljust(66) + "\r\n" for r in records))
    return path


def test_ortec_spc_counts_times_and_calibration(tmp_path):
    s = read_spectra(_spc(tmp_path / "a.Spc", COUNTS))
    assert s.values()[0].tolist() == COUNTS.tolist() and s.axis_kind == "energy"
    assert s.axis[:2] == pytest.approx([1.5, 2.250001], rel=1e-5)
    assert s.meta["live_time_s"].iloc[0] == 120.0 and s.meta["real_time_s"].iloc[0] == 125.5
    assert "13:41:07" in s.meta["start"].iloc[0]


def test_ortec_spc_invalid_calibration_and_truncation_refused(tmp_path):
    with pytest.raises(InputError, match="invalid energy calibration"):
        read_spectra(_spc(tmp_path / "b.spc", COUNTS, coefficients=(1.0, -0.5, 0.0)))
    path = _spc(tmp_path / "c.spc", COUNTS)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(InputError, match="ends before"):
        read_spectra(path)


def test_canberra_cnf_counts_times_and_calibration(tmp_path):
    counts = np.tile(COUNTS, 2)  # 512 channels
    counts[:2] = 0
    s = read_spectra(_cnf(tmp_path / "a.cnf", counts))
    assert s.values()[0].tolist() == counts.tolist()
    assert s.meta["live_time_s"].iloc[0] == pytest.approx(841.42)
    assert s.meta["real_time_s"].iloc[0] == pytest.approx(849.51)
    assert s.meta["cal_gain"].iloc[0] == pytest.approx(0.719, rel=1e-6)
    assert s.axis[0] == pytest.approx(-0.21, rel=1e-6) and s.meta["description"].iloc[0] == "Kelp sample"
    assert s.meta["start"].iloc[0].startswith("2014-")


def test_canberra_cnf_refuses_other_files(tmp_path):
    path = tmp_path / "x.cnf"
    path.write_bytes(b"\x07" * 4000)
    with pytest.raises(InputError, match="not a Canberra"):
        read_spectra(path)


def test_iec1455_counts_times_and_calibration(tmp_path):
    s = read_spectra(_iec(tmp_path / "a.iec", COUNTS))
    assert s.values()[0].tolist() == COUNTS.tolist()
    assert s.meta["live_time_s"].iloc[0] == 3564.0 and s.meta["real_time_s"].iloc[0] == 3600.0
    assert s.meta["cal_gain"].iloc[0] == pytest.approx(0.8) and s.meta["cal_quad"].iloc[0] == pytest.approx(-2.97939e-8)
    assert s.meta["description"].iloc[0] == "Test spectrum"


def test_iec1455_without_calibration_keeps_channels_and_short_file_refused(tmp_path):
    s = read_spectra(_iec(tmp_path / "b.iec", COUNTS, coefficients="0 0 0 0"))
    assert s.axis_kind == "channel" and s.n_channels == 256
    path = tmp_path / "c.iec"
    path.write_text("A004 short\n")
    with pytest.raises(InputError, match="record 59"):
        read_spectra(path)
