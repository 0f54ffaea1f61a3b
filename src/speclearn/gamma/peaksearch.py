"""Classical nuclide identification: peak search plus energy-window match to the decay-line library.

The spectrum is moved to a grid uniform in sqrt(E) (a scintillator's FWHM spans the same number of
bins everywhere), the continuum is removed with SNIP (Morhac et al. 1997), the net spectrum is
smoothed and `scipy.signal.find_peaks` keeps peaks no wider than twice the resolution whose area is `min_significance` standard
deviations above the continuum. A nuclide's score is the efficiency-weighted share of its lines
(in range, >= `min_line_share` of its strongest) that have a peak within `window` FWHM (plus
`calibration_tolerance` x E for calibration error); it is
reported when its strongest line is found and its score reaches `threshold`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks, peak_widths
from sklearn.base import BaseEstimator

from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra
from speclearn.gamma.grid import energy_spectra, estimate_fwhm_662, rebin, sqrt_grid
from speclearn.gamma.lines import DECAY_LINES, decay_lines
from speclearn.gamma.response import backscatter_energy


def snip(y: np.ndarray, iterations: int) -> np.ndarray:
    """SNIP continuum of `y` on a log-log-sqrt scale with a window growing to `iterations` bins."""
    v = np.log(np.log(np.sqrt(np.maximum(y, 0.0) + 1.0) + 1.0) + 1.0)
    for p in range(1, iterations + 1):
        mean = 0.5 * (np.roll(v, p) + np.roll(v, -p))
        mean[:p], mean[-p:] = v[:p], v[-p:]
        v = np.minimum(v, mean)
    return (np.exp(np.exp(v) - 1.0) - 1.0) ** 2 - 1.0


def find_gamma_peaks(energy: np.ndarray, counts: np.ndarray, fwhm_662: float, *,
                     min_significance: float = 4.0) -> pd.DataFrame:
    """Peaks of one spectrum: energy (keV), net area, significance; on a sqrt(E) grid sized to the resolution."""
    n = int(np.clip(4 * (np.sqrt(energy[-1]) - np.sqrt(max(energy[0], 20.0))) /
                    (fwhm_662 / (2 * np.sqrt(661.657))), 128, 4096))
    grid = sqrt_grid(max(energy[0], 20.0), energy[-1], n)
    y = rebin(counts, energy, grid)[0]
    fwhm_bins = (fwhm_662 / (2 * np.sqrt(661.657))) / (np.sqrt(grid[1]) - np.sqrt(grid[0]))
    base = snip(gaussian_filter1d(y, fwhm_bins / 4), int(np.ceil(2 * fwhm_bins)))
    net = gaussian_filter1d(y - base, fwhm_bins / 2.355)
    peaks, _ = find_peaks(net, distance=max(1, int(fwhm_bins / 2)))
    if peaks.size:  # a peak much wider than the resolution is continuum structure, not a line
        widths = peak_widths(net, peaks, rel_height=0.5)[0]
        peaks = peaks[widths <= 2.0 * fwhm_bins]
    half = max(1, int(round(fwhm_bins / 2)))
    lo, hi = np.clip(peaks - half, 0, len(y)), np.clip(peaks + half + 1, 0, len(y))
    cum_y = np.concatenate([[0.0], np.cumsum(y)])
    cum_b = np.concatenate([[0.0], np.cumsum(np.maximum(base, 0.0))])
    gross, back = cum_y[hi] - cum_y[lo], cum_b[hi] - cum_b[lo]
    area = gross - back
    significance = area / np.sqrt(np.maximum(gross, 1.0) + back)
    keep = significance >= min_significance
    return pd.DataFrame({"energy_keV": grid[peaks][keep], "net_area": area[keep] / 0.76,
                         "significance": significance[keep]})


def explained_peaks(peaks: pd.DataFrame, fwhm_662: float) -> np.ndarray:
    """Energies of the peaks not explained as backscatter or escape peaks of a stronger peak."""
    energy, area = peaks["energy_keV"].to_numpy(), peaks["net_area"].to_numpy()
    keep = np.ones(energy.size, bool)
    for e, a in zip(energy, area):
        for echo in (backscatter_energy(e), e - 511.0, e - 1022.0):
            tolerance = 0.5 * fwhm_662 * np.sqrt(max(echo, 1.0) / 661.657) + 1.0
            keep &= ~((np.abs(energy - echo) <= tolerance) & (area < 0.5 * a)) if echo > 0 else True
    return energy[keep]


class PeakSearchIdentifier(BaseEstimator):
    """Peak search + line-library match. `fwhm_662`: keV at 662 keV (None: measured from the peaks)."""

    def __init__(self, fwhm_662: float | None = None, min_significance: float = 4.0, window: float = 0.5,
                 threshold: float = 0.5, min_line_share: float = 0.1, calibration_tolerance: float = 0.006,
                 nuclides: tuple[str, ...] | None = None):
        store_params(self, locals())

    def fit(self, spectra: Spectra | None = None, labels=None) -> "PeakSearchIdentifier":
        """Nothing to learn: the line library is the model (kept for the estimator interface)."""
        self.nuclides_ = tuple(self.nuclides or sorted(DECAY_LINES))
        return self

    def _fwhm(self, energy: np.ndarray, counts: np.ndarray) -> float:
        if self.fwhm_662:
            return float(self.fwhm_662)
        estimate = estimate_fwhm_662(energy, counts)
        return float(np.clip(estimate, 1.0, 80.0)) if np.isfinite(estimate) else 40.0

    def score_spectrum(self, energy: np.ndarray, counts: np.ndarray) -> tuple[dict[str, float], pd.DataFrame]:
        """Per-nuclide scores in [0, 1] (strongest line missing: 0) and the peaks found."""
        fwhm = self._fwhm(energy, counts)
        peaks = find_gamma_peaks(energy, counts, fwhm, min_significance=self.min_significance)
        found = explained_peaks(peaks, fwhm)
        scores = {}
        for name in getattr(self, "nuclides_", None) or tuple(self.nuclides or sorted(DECAY_LINES)):
            lines = decay_lines(name)
            lines = lines[(lines[:, 0] > max(energy[0], 40.0)) & (lines[:, 0] < energy[-1] - fwhm)]
            if lines.size == 0:
                scores[name] = 0.0
                continue
            weight = lines[:, 1] * (lines[:, 0] / 661.657) ** -0.8
            use = weight >= self.min_line_share * weight.max()
            lines, weight = lines[use], weight[use]
            tolerance = (self.window * fwhm * np.sqrt(lines[:, 0] / 661.657) + 1.0
                         + self.calibration_tolerance * lines[:, 0])
            hit = np.array([found.size > 0 and np.min(np.abs(found - e)) <= t for e, t in zip(lines[:, 0], tolerance)])
            scores[name] = float(weight[hit].sum() / weight.sum()) if hit[np.argmax(weight)] else 0.0
        return scores, peaks

    def decision_function(self, spectra: Spectra) -> pd.DataFrame:
        """(spectra x nuclides) scores."""
        spectra = energy_spectra(spectra)
        rows = [self.score_spectrum(spectra.axis, row)[0] for row in spectra.values()]
        return pd.DataFrame(rows, index=spectra.meta.index)

    def predict(self, spectra: Spectra) -> pd.DataFrame:
        """Long table (id, nuclide, score): one row per nuclide found, best first."""
        return long_table(self.decision_function(spectra), self.threshold)


def long_table(scores: pd.DataFrame, threshold: float | dict) -> pd.DataFrame:
    """Wide scores -> rows (id, nuclide, score) of the nuclides at or above `threshold` (one value, or one per nuclide)."""
    frame = scores.stack().rename("score").reset_index()
    frame.columns = ["id", "nuclide", "score"]
    limit = frame["nuclide"].map(threshold).to_numpy(dtype=float) if isinstance(threshold, dict) else threshold
    frame = frame[frame["score"] >= limit]
    return frame.sort_values(["id", "score"], ascending=[True, False], kind="stable").reset_index(drop=True)
