"""Scoring an unmixing against the truth: Hungarian matching on spectral angle, then map and composition errors."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from speclearn.metrics import rmse, spectral_angle


def match_components(true_spectra: np.ndarray, found_spectra: np.ndarray) -> np.ndarray:
    """order[i] = index of the found component matched to true component i (minimum total angle)."""
    angles = spectral_angle(true_spectra[:, None, :], found_spectra[None, :, :])
    _, order = linear_sum_assignment(angles)
    return order


def composition_error(true: dict[str, float], found: dict[str, float]) -> float:
    """Mean absolute error of the weight fractions over the union of elements (fraction, not %)."""
    elements = sorted(set(true) | set(found))
    return float(np.mean([abs(true.get(e, 0.0) - found.get(e, 0.0)) for e in elements]))


def score_unmixing(true_spectra: np.ndarray, true_abundances: np.ndarray, found_spectra: np.ndarray,
                   found_abundances: np.ndarray) -> dict:
    """Matched spectral angle (degrees), abundance RMSE and Pearson correlation (maps summing to one).

    true/found abundances: (K, y, x); both are renormalised to sum to one per pixel before comparing.
    """
    order = match_components(true_spectra, found_spectra)
    found_spectra, found_abundances = found_spectra[order], found_abundances[order]
    def to_fractions(maps: np.ndarray) -> np.ndarray:
        total = maps.sum(axis=0, keepdims=True)
        return np.where(total > 0, maps / np.where(total > 0, total, 1), 1 / maps.shape[0])
    truth, found = to_fractions(true_abundances), to_fractions(found_abundances)
    angles = np.degrees(spectral_angle(true_spectra, found_spectra))
    k = truth.shape[0]
    correlation = [np.corrcoef(truth[i].ravel(), found[i].ravel())[0, 1] for i in range(k)]
    return {"order": order.tolist(), "spectral_angle_deg": float(angles.mean()),
            "spectral_angle_deg_each": angles.tolist(), "abundance_rmse": float(rmse(found, truth)),
            "abundance_correlation": float(np.nanmean(correlation)),
            "abundance_correlation_each": [float(c) for c in correlation]}
