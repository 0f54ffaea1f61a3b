"""`MRSData`: complex time-domain FIDs with the acquisition parameters that give them a ppm axis.

Convention: spectrum = fftshift(fft(fid)) along the points; frequency f (Hz) runs from -bw/2 up;
ppm = 4.65 + f / central_frequency_mhz, so metabolites (NAA 2.01 ppm) sit at negative frequencies.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from speclearn.core.errors import InputError

#: chemical shift of water, the ppm reference of the receiver frequency
WATER_PPM = 4.65


def frequency_axis(points: int, dwell_time_s: float) -> np.ndarray:
    """Frequencies (Hz) of the fftshifted spectrum, ascending."""
    return np.fft.fftshift(np.fft.fftfreq(points, dwell_time_s))


def ppm_axis(points: int, dwell_time_s: float, central_frequency_mhz: float) -> np.ndarray:
    """ppm of each point of the fftshifted spectrum (ascending; water at 4.65)."""
    return WATER_PPM + frequency_axis(points, dwell_time_s) / central_frequency_mhz


def to_spectrum(fid: np.ndarray) -> np.ndarray:
    """Complex spectrum (fftshifted) of FIDs along the last axis."""
    return np.fft.fftshift(np.fft.fft(fid, axis=-1), axes=-1)


def to_fid(spectrum: np.ndarray) -> np.ndarray:
    """Inverse of `to_spectrum`."""
    return np.fft.ifft(np.fft.ifftshift(spectrum, axes=-1), axis=-1)


def ppm_slice(ppm: np.ndarray, low: float, high: float) -> slice:
    """The contiguous index range of `ppm` (ascending) inside [low, high]."""
    inside = np.flatnonzero((ppm >= low) & (ppm <= high))
    if inside.size == 0:
        raise InputError(f"no spectral point between {low} and {high} ppm")
    return slice(int(inside[0]), int(inside[-1]) + 1)


def edge_noise_power(fid: np.ndarray) -> np.ndarray:
    """Mean |spectrum|^2 per FID (rows of `fid`) over the outer fifth of the band, far from water and
    every metabolite: the noise power per spectral point (/ points: the time-domain noise variance)."""
    spectra = np.fft.fft(fid, axis=-1)  # unshifted: the band's two edges meet mid-array
    points = spectra.shape[-1]
    return np.mean(np.abs(spectra[..., points // 2 - points // 10:points // 2 + points // 10]) ** 2, axis=-1)


def mirrored(fid: np.ndarray, dwell_time_s: float, central_frequency_mhz: float, *, margin: float = 1.0) -> bool:
    """Whether the peaks of FIDs (rows, averaged) sit on the far side of 4.65 ppm under this module's
    convention (data of the opposite sign convention): the averaged spectrum's highest point in
    5.1-9.1 ppm exceeds `margin` x its highest in 0.2-4.2 ppm (residual water, 4.2-5.1, left out)."""
    ppm = ppm_axis(fid.shape[-1], dwell_time_s, central_frequency_mhz)
    spectrum = np.abs(to_spectrum(np.atleast_2d(fid).mean(axis=0)))
    inside = spectrum[(ppm > 0.2) & (ppm < 4.2)]
    outside = spectrum[(ppm > 2 * WATER_PPM - 4.2) & (ppm < 2 * WATER_PPM - 0.2)]
    return bool(inside.size and outside.size and outside.max() > margin * inside.max())


def shift_phase(fid: np.ndarray, dwell_time_s: float, shift_hz: np.ndarray | float,
                phase_deg: np.ndarray | float = 0.0) -> np.ndarray:
    """FIDs multiplied by exp(i(2 pi f t + phi)): move peaks by `shift_hz`, rotate by `phase_deg`."""
    t = np.arange(fid.shape[-1]) * dwell_time_s
    shift = np.asarray(shift_hz, dtype=float)[..., None]
    phase = np.deg2rad(np.asarray(phase_deg, dtype=float))[..., None]
    return fid * np.exp(1j * (2 * np.pi * shift * t + phase))


def lineshape(fid: np.ndarray, dwell_time_s: float, lorentzian: np.ndarray | float,
              gaussian: np.ndarray | float) -> np.ndarray:
    """FIDs damped by exp(-lorentzian t - gaussian^2 t^2) (lorentzian in 1/s = pi x FWHM Hz)."""
    t = np.arange(fid.shape[-1]) * dwell_time_s
    lorentzian = np.asarray(lorentzian, dtype=float)[..., None]
    gaussian = np.asarray(gaussian, dtype=float)[..., None]
    return fid * np.exp(-lorentzian * t - (gaussian * t) ** 2)


def first_order_phase(fid: np.ndarray, dwell_time_s: float, central_frequency_mhz: float,
                      phase0_deg: np.ndarray | float, phase1_deg_per_ppm: np.ndarray | float) -> np.ndarray:
    """Spectra rotated by phase0 + phase1 (ppm - 4.65) degrees.

    The first-order phase is a time shift of the FID; it is applied to the FID zero-filled to twice its
    length and cut back, so the FID's first, largest points are not wrapped around to its end (which a
    linear phase on the unpadded spectrum does, putting frequency information where no FID has any).
    """
    points = fid.shape[-1]
    padded = np.concatenate([fid, np.zeros_like(fid)], axis=-1)
    ppm = ppm_axis(2 * points, dwell_time_s, central_frequency_mhz)
    phase = np.deg2rad(np.asarray(phase0_deg, float)[..., None]
                       + np.asarray(phase1_deg_per_ppm, float)[..., None] * (ppm - WATER_PPM))
    return to_fid(to_spectrum(padded) * np.exp(1j * phase))[..., :points]


@dataclass(frozen=True, eq=False)
class MRSData:
    """Complex FIDs, one per row (transients, coils or scans), with the acquisition parameters.

    fid: complex (n, points). dwell_time_s: sampling interval. central_frequency_mhz: spectrometer
    frequency (123.2 MHz at 3 T). te_ms: echo time. ids: one per row. scans: the scan each row
    belongs to (transients of one scan share it). dims: NIfTI-MRS dimension tags and sizes of the
    rows (kept so a NIfTI-MRS file is written back with its DIM_DYN / DIM_COIL layout).
    """

    fid: np.ndarray
    dwell_time_s: float
    central_frequency_mhz: float
    te_ms: float | None = None
    ids: list[str] = field(default=None)  # type: ignore[assignment]
    scans: list[str] = field(default=None)  # type: ignore[assignment]
    dims: list[tuple[str, int]] = field(default_factory=list)
    source: str | None = None

    def __post_init__(self) -> None:
        fid = np.asarray(self.fid)
        if fid.ndim == 1:
            fid = fid[None]
        if fid.ndim != 2 or fid.shape[1] < 16:
            raise InputError(f"FIDs must be (n, points) with at least 16 points, got shape {fid.shape}",
                             file=self.source)
        if not np.all(np.isfinite(fid)):
            row = int(np.flatnonzero(~np.isfinite(fid).all(axis=1))[0])
            raise InputError("FID has a non-finite value", file=self.source, row=row + 1)
        for name in ("dwell_time_s", "central_frequency_mhz"):
            value = getattr(self, name)
            if value is None or not np.isfinite(value) or value <= 0:
                raise InputError(f"{name} must be a positive number, got {value}", file=self.source)
        if not 1e-7 < self.dwell_time_s < 5e-3:
            raise InputError(f"dwell time {self.dwell_time_s:g} s is implausible for MRS (a {1 / self.dwell_time_s:.3g} "
                             "Hz band; scanners sample 1-10 kHz): give seconds", file=self.source)
        n = fid.shape[0]
        ids = [f"s{i:0{len(str(max(n - 1, 0)))}d}" for i in range(n)] if self.ids is None else [str(i) for i in self.ids]
        scans = ["scan"] * n if self.scans is None else [str(s) for s in self.scans]
        if len(ids) != n or len(scans) != n:
            raise InputError(f"{len(ids)} ids and {len(scans)} scan labels for {n} FIDs", file=self.source)
        if len(set(ids)) != n:
            raise InputError("duplicate FID ids", file=self.source)
        object.__setattr__(self, "fid", fid.astype(np.complex128))
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "scans", scans)
        object.__setattr__(self, "dwell_time_s", float(self.dwell_time_s))
        object.__setattr__(self, "central_frequency_mhz", float(self.central_frequency_mhz))
        object.__setattr__(self, "te_ms", None if self.te_ms is None else float(self.te_ms))

    @property
    def n(self) -> int:
        return self.fid.shape[0]

    @property
    def points(self) -> int:
        return self.fid.shape[1]

    @property
    def bandwidth_hz(self) -> float:
        return 1.0 / self.dwell_time_s

    def time(self) -> np.ndarray:
        return np.arange(self.points) * self.dwell_time_s

    def ppm(self) -> np.ndarray:
        return ppm_axis(self.points, self.dwell_time_s, self.central_frequency_mhz)

    def spectrum(self) -> np.ndarray:
        return to_spectrum(self.fid)

    def with_fid(self, fid: np.ndarray, **changes: Any) -> "MRSData":
        return replace(self, fid=fid, **changes)

    def select(self, rows: np.ndarray | list[int]) -> "MRSData":
        rows = np.asarray(rows, dtype=int)
        return replace(self, fid=self.fid[rows], ids=[self.ids[i] for i in rows],
                       scans=[self.scans[i] for i in rows], dims=[])

    def blocks(self, size: int) -> list["MRSData"]:
        """Consecutive rows, `size` at a time (tasks for a cluster)."""
        return [self.select(np.arange(k, min(k + size, self.n))) for k in range(0, self.n, size)]

    def scan_names(self) -> list[str]:
        """Scans in order of first appearance."""
        return list(dict.fromkeys(self.scans))

    def average(self, keep: np.ndarray | None = None) -> "MRSData":
        """One FID per scan: the mean of its transients (rows with keep False are left out)."""
        keep = np.ones(self.n, bool) if keep is None else np.asarray(keep, bool)
        scans = np.asarray(self.scans)
        names = self.scan_names()
        fids = []
        for name in names:
            rows = (scans == name) & keep
            if not rows.any():
                rows = scans == name  # every transient rejected: keep them all rather than drop the scan
            fids.append(self.fid[rows].mean(axis=0))
        return replace(self, fid=np.stack(fids), ids=names, scans=names, dims=[])

    def acquisition(self) -> dict[str, Any]:
        """JSON-ready acquisition parameters, stored with models to refuse other data."""
        return {"dwell_time_s": self.dwell_time_s, "points": self.points,
                "central_frequency_mhz": self.central_frequency_mhz, "te_ms": self.te_ms}

    def check_acquisition(self, spec: dict[str, Any], *, what: str = "the model") -> None:
        """InputError unless dwell time, point count and field strength match `spec`."""
        if self.points != spec["points"]:
            raise InputError(f"{self.points} points, but {what} expects {spec['points']}", file=self.source)
        if abs(self.dwell_time_s - spec["dwell_time_s"]) > 1e-6 * spec["dwell_time_s"]:
            raise InputError(f"dwell time {self.dwell_time_s:g} s, but {what} expects {spec['dwell_time_s']:g} s",
                             file=self.source)
        if abs(self.central_frequency_mhz - spec["central_frequency_mhz"]) > 0.01 * spec["central_frequency_mhz"]:
            raise InputError(f"central frequency {self.central_frequency_mhz:g} MHz (another field strength), "
                             f"but {what} expects {spec['central_frequency_mhz']:g} MHz", file=self.source)
