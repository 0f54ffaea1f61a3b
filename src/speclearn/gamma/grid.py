"""Energy grids, count-preserving rebinning, resolution estimate and background auto-calibration."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks, peak_widths

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.gamma.response import bin_edges


def sqrt_grid(e_min: float = 30.0, e_max: float = 3000.0, n: int = 1024) -> np.ndarray:
    """Bin centres uniform in sqrt(E): a scintillator's FWHM spans about the same number of bins everywhere."""
    edges = np.linspace(np.sqrt(e_min), np.sqrt(e_max), n + 1) ** 2
    return 0.5 * (edges[1:] + edges[:-1])


def energy_axis(grid: np.ndarray) -> dict:
    """The axis record a gamma model keeps: energies (keV) of its input grid."""
    return {"kind": "energy", "unit": "keV", "values": np.asarray(grid, dtype=float).tolist()}


def counts_below(counts: np.ndarray, axis: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """(spectra, energies) counts of the `axis` channels below each energy (linear inside a channel,
    clipped to the axis' range)."""
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    edges = bin_edges(axis)
    cum = np.concatenate([np.zeros((counts.shape[0], 1)), np.cumsum(counts, axis=1)], axis=1)
    e = np.clip(energies, edges[0], edges[-1])
    idx = np.clip(np.searchsorted(edges, e, side="right"), 1, len(edges) - 1)
    frac = (e - edges[idx - 1]) / (edges[idx] - edges[idx - 1])
    return cum[:, idx - 1] * (1 - frac) + cum[:, idx] * frac


def rebin(counts: np.ndarray, axis_in: np.ndarray, axis_out: np.ndarray) -> np.ndarray:
    """Counts on `axis_in` channels redistributed onto `axis_out` channels (total preserved inside the range)."""
    return np.diff(counts_below(counts, axis_in, bin_edges(axis_out)), axis=1)


def energy_spectra(spectra: Spectra) -> Spectra:
    """Refuse spectra without an energy axis (a channel-only file needs a calibration first)."""
    if spectra.axis_kind != "energy":
        raise InputError("the spectra have no energy calibration (channel axis); give one with "
                         "--calibration OFFSET,GAIN or let `identify` auto-calibrate on background lines",
                         file=spectra.source)
    if spectra.axis_unit.lower() == "ev":
        return replace(spectra, axis=spectra.axis / 1000.0, axis_unit="keV")
    return spectra


def estimate_fwhm_662(energy: np.ndarray, counts: np.ndarray) -> float:
    """FWHM at 662 keV (keV, sqrt(E) scaling) from the widths of the clearest peaks above 100 keV."""
    counts = np.asarray(counts, dtype=float)
    smooth = gaussian_filter1d(counts, 1.0)
    peaks, props = find_peaks(smooth, prominence=5 * np.sqrt(np.maximum(smooth, 1.0)))
    keep = peaks[(energy[peaks] > 100.0)]
    if keep.size == 0:
        return float("nan")
    order = np.argsort(props["prominences"][energy[peaks] > 100.0])[::-1][:5]
    widths, _, left, right = peak_widths(smooth, keep[order], rel_height=0.5)
    de = np.gradient(energy)[keep[order]]
    fwhm = widths * de
    return float(np.median(fwhm * np.sqrt(661.657 / energy[keep[order]])))


#: lines a background spectrum shows, strongest first (K-40, Bi-214, Tl-208, Pb-214, Ac-228, Pb-212)
BACKGROUND_LINES = (1460.820, 609.312, 2614.511, 351.932, 583.187, 911.204, 238.632, 1764.494, 1120.287)


def auto_calibrate(counts: np.ndarray, *, lines: tuple[float, ...] = BACKGROUND_LINES,
                   tolerance: float = 0.03) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Linear gain (zero offset) that maps the spectrum's peaks onto natural-background lines.

    Each clear peak is tried as each reference line; the gain that places the most
    (intensity-weighted) other peaks within `tolerance` of a reference line wins, then is refined
    by least squares through the origin. Returns ((offset, gain), [(channel, line keV), ...]).
    """
    counts = np.asarray(counts, dtype=float).ravel()
    channels = np.arange(counts.size, dtype=float)
    smooth = gaussian_filter1d(counts, 2.0)
    base = gaussian_filter1d(np.minimum.accumulate(smooth[::-1])[::-1], 10.0)
    peaks, props = find_peaks(smooth - base, prominence=np.sqrt(np.maximum(smooth, 1.0)), width=2)
    significance = props["prominences"] * np.sqrt(props["widths"] / np.maximum(smooth[peaks], 1.0))
    keep = (peaks > 0.03 * counts.size) & (props["widths"] < 0.2 * peaks) & (significance > 5)
    peaks, strength = peaks[keep], significance[keep]
    if peaks.size == 0:
        raise InputError("auto-calibration found no clear peak; give --calibration OFFSET,GAIN")
    weights = np.linspace(1.0, 0.5, len(lines))
    ref = np.asarray(lines)
    best = (-1.0, 0.0, [])
    for p in peaks[np.argsort(strength)[::-1][:8]]:
        for line, w in zip(ref, weights):
            gain = line / p
            energy = channels[peaks] * gain
            rel = np.abs(energy[:, None] - ref[None, :]) / ref[None, :]
            hit = rel.min(axis=1) < tolerance
            score = float(np.sum(weights[rel.argmin(axis=1)][hit] * np.sqrt(strength[hit]))) + 0.01 * w
            if score > best[0]:
                pairs = [(float(c), float(ref[j])) for c, j, h in zip(peaks, rel.argmin(axis=1), hit) if h]
                best = (score, gain, pairs)
    _, gain, pairs = best
    c, e = np.array(pairs).T
    gain = float(c @ e / (c @ c))
    return np.array([0.0, gain]), pairs


#: feature value of a grid bin outside the spectrum's energy range (not measured, unlike zero counts)
UNMEASURED = -0.1


def model_input(spectra: Spectra, grid: np.ndarray) -> np.ndarray:
    """(n, len(grid) + 1) features: sqrt of count shares on `grid` (`UNMEASURED` beyond the spectrum's
    calibrated range, e.g. a NaI whose range ends at 2 MeV), then log10(total counts) / 6."""
    spectra = energy_spectra(spectra)
    counts = np.clip(rebin(spectra.values(), spectra.axis, grid), 0.0, None)
    total = counts.sum(axis=1, keepdims=True)
    shares = np.sqrt(counts / np.maximum(total, 1.0))
    edges = bin_edges(spectra.axis)
    shares[:, (grid < edges[0]) | (grid > edges[-1])] = UNMEASURED
    return np.hstack([shares, np.log10(np.maximum(total, 1.0)) / 6.0]).astype(np.float32)
