"""Spectral registration (Near et al., MRM 2015): frequency and phase alignment of transients in the time domain.

Each transient s is fitted to a reference r by minimising || r(t) - s(t) exp(i(2 pi f t + phi)) || over
the first `window_s` seconds (batched Gauss-Newton); the reference is the mean of the transients of the
scan, re-formed from the aligned transients `iterations` times. A local optimiser: it recovers offsets
within about a line width of the reference and fails for large ones (then use the CNN, `mrs.align_cnn`).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from speclearn.core.params import store_params
from speclearn.core.threads import single_threaded_blas
from speclearn.mrs.data import MRSData, shift_phase


#: correlation search (Hz) of the registration after the CNN's estimate (`auto` alignment): it catches the
#: CNN's rare misses (640 transients, offsets sd 15 Hz / 90 deg: residual spread 2.1 Hz without it, 0.11 with
#: +-10 to +-50 Hz; unchanged at moderate offsets)
AUTO_SEARCH_HZ = 20.0


def _wrap_deg(phase: np.ndarray) -> np.ndarray:
    return (phase + 180.0) % 360.0 - 180.0


def _window_points(fid: np.ndarray, dwell_time_s: float, window_s: float) -> int:
    return min(fid.shape[1], max(16, int(round(window_s / dwell_time_s))))


def offset_information(reference: np.ndarray, dwell_time_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of `reference`, the normal matrix of its frequency (Hz, as 2 pi f) and zero-order phase
    offsets: (sum (2 pi t)^2 |r|^2, sum 2 pi t |r|^2, sum |r|^2); over the noise variance it is their
    Fisher information."""
    x = 2 * np.pi * np.arange(reference.shape[-1]) * dwell_time_s
    power = np.abs(reference) ** 2
    return power @ x ** 2, power @ x, power.sum(axis=-1)


def register(fid: np.ndarray, reference: np.ndarray, dwell_time_s: float, *, window_s: float = 0.1,
             search_hz: float = 0.0, steps: int = 12, tolerance_hz: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (Hz, deg) of each FID relative to `reference`: `shift_phase(fid, -f, -phi)` aligns it.

    The model is the reference shifted and phased (it is less noisy than one transient: a Jacobian built
    from a noisy transient shrinks the steps). search_hz > 0: start from the best frequency within
    +-search_hz of a zero-padded cross-correlation (a global coarse step); 0: start from zero frequency,
    as Near et al. Each transient's Gauss-Newton steps stop once its frequency moves by less than tolerance_hz.
    """
    points = _window_points(fid, dwell_time_s, window_s)
    t = np.arange(points) * dwell_time_s
    s, r = fid[:, :points], np.broadcast_to(reference[..., :points], (fid.shape[0], points))
    f = np.zeros(fid.shape[0])
    if search_hz > 0:
        size = 8 * int(2 ** np.ceil(np.log2(points)))
        correlation = np.abs(np.fft.fft(r.conj() * s, n=size, axis=1))  # sum conj(r) s exp(-i 2 pi f t)
        grid = np.fft.fftfreq(size, dwell_time_s)
        inside = np.abs(grid) <= search_hz
        f = grid[inside][np.argmax(correlation[:, inside], axis=1)]
    # best zero-order phase (closed form) at the starting frequency
    phi = np.angle(np.sum(s * (r * np.exp(2j * np.pi * f[:, None] * t)).conj(), axis=1))
    # Gauss-Newton for (f, phi) with model m = r exp(i(2 pi f t + phi)): |m| = |r|, so the normal matrix is
    # fixed, and the gradient is sum (2 pi t, 1) Im(conj(m) s)
    x = 2 * np.pi * t
    a11, a12, a22 = offset_information(r, dwell_time_s)
    det = a11 * a22 - a12 ** 2
    det = np.where(np.abs(det) > 0, det, 1.0)
    cross = r.conj() * s
    active = np.arange(len(f))
    for _ in range(steps):  # each transient until its frequency step falls below tolerance_hz
        z = (cross[active] * np.exp(-1j * (x * f[active, None] + phi[active, None]))).imag
        b1, b2 = z @ x, z.sum(axis=1)
        step = (a22[active] * b1 - a12[active] * b2) / det[active]
        f[active] += step
        phi[active] += (a11[active] * b2 - a12[active] * b1) / det[active]
        active = active[np.abs(step) >= tolerance_hz]
        if not active.size:
            break
    return f, _wrap_deg(np.rad2deg(phi))


class SpectralRegistration(BaseEstimator):
    """Align the transients of each scan (see the module docstring)."""

    def __init__(self, window_s: float = 0.1, iterations: int = 3, search_hz: float = 0.0):
        store_params(self, locals())

    @single_threaded_blas
    def estimate(self, data: MRSData, *, initial_hz: np.ndarray | None = None,
                 initial_deg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-row offsets (Hz, deg), relative to the scan's mean after alignment (mean offset 0).

        initial_hz/initial_deg: coarse offsets (e.g. from the CNN) removed before registering.
        """
        shift = np.zeros(data.n) if initial_hz is None else np.asarray(initial_hz, float).copy()
        phase = np.zeros(data.n) if initial_deg is None else np.asarray(initial_deg, float).copy()
        scans = np.asarray(data.scans)
        points = _window_points(data.fid, data.dwell_time_s, self.window_s)
        for name in data.scan_names():
            rows = np.flatnonzero(scans == name)
            fid = data.fid[rows, :points]  # all that the registration reads
            for _ in range(max(1, self.iterations)):
                aligned = shift_phase(fid, data.dwell_time_s, -shift[rows], -phase[rows])
                reference = np.median(aligned.real, axis=0) + 1j * np.median(aligned.imag, axis=0)
                df, dphi = register(aligned, reference, data.dwell_time_s, window_s=self.window_s,
                                    search_hz=self.search_hz)
                shift[rows] += df
                phase[rows] = _wrap_deg(phase[rows] + dphi)
            shift[rows] -= shift[rows].mean()
            phase[rows] = _wrap_deg(phase[rows] - np.rad2deg(np.angle(np.exp(1j * np.deg2rad(phase[rows])).mean())))
        return shift, phase

    def transform(self, data: MRSData) -> tuple[MRSData, np.ndarray, np.ndarray]:
        """(aligned data, shifts Hz, phases deg)."""
        shift, phase = self.estimate(data)
        return data.with_fid(shift_phase(data.fid, data.dwell_time_s, -shift, -phase)), shift, phase
