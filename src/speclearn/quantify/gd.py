"""Gaussian deconvolution: least-squares fits of overlapping Gaussian peaks, then a calibration.

For each analyte the strongest isotopes (and the internal standard's main isotope) get a window of
+-1.5 Da holding three Gaussians at the isotope's nominal mass and its two neighbours (free
amplitudes, free centres within +-0.15 Da, one shared free width, a constant baseline), fitted with
`scipy.optimize.least_squares`. The peak areas of an analyte's isotopes, divided by the internal
standard's area, are calibrated against the training concentrations by a weighted linear regression
(several isotopes let the calibration subtract part of an interference, like correction equations).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import least_squares

from speclearn.quantify.base import FitContext, Quantifier, check_counts, relative_loss_floor
from speclearn.physics.icpms import ion_pattern
from speclearn.quantify.physics import check_analytes, estimate_peak_model

HALF_WINDOW = 1.5
CENTRE_FREEDOM = 0.15
SQRT_2PI = np.sqrt(2 * np.pi)


def _windows(elements: list[str], axis: np.ndarray, isotopes_per_element: int) -> list[tuple[str, float]]:
    """(element, isotope m/z) of the strongest isotopes inside the axis."""
    chosen = []
    for element in elements:
        pattern = sorted(ion_pattern(element), key=lambda p: -p[1])
        inside = [p for p in pattern if axis.min() + HALF_WINDOW < p[0] < axis.max() - HALF_WINDOW]
        strongest = inside[0][1] if inside else 0
        chosen += [(element, mz) for mz, fraction, _ in inside[:isotopes_per_element] if fraction >= 0.1 * strongest]
    return chosen


def fit_window(axis: np.ndarray, y: np.ndarray, mz: float, sigma0: float) -> np.ndarray:
    """Fit three Gaussians (mz-1, mz, mz+1) + constant; returns [areas(3), centres(3), sigma, baseline]."""
    lo, hi = np.searchsorted(axis, [mz - HALF_WINDOW, mz + HALF_WINDOW])
    x, v = axis[lo:hi], y[lo:hi]
    nominal = mz + np.array([-1.0, 0.0, 1.0])
    base0 = float(np.percentile(v, 5))
    heights = np.array([max(v[np.argmin(np.abs(x - c))] - base0, 0.0) for c in nominal])

    def gaussians(p):
        u = (x[:, None] - p[None, 3:6]) / p[6]
        return u, np.exp(-0.5 * u * u)

    def residual(p):
        return gaussians(p)[1] @ p[:3] + p[7] - v

    def jacobian(p):
        u, g = gaussians(p)
        hg = g * p[:3]
        return np.concatenate([g, hg * u / p[6], (hg * u * u).sum(axis=1, keepdims=True) / p[6],
                               np.ones((len(x), 1))], axis=1)

    start = np.concatenate([heights, nominal, [sigma0, base0]])
    scale = max(float(np.abs(v).max()), 1e-12)
    lower = np.concatenate([[0, 0, 0], nominal - CENTRE_FREEDOM, [0.5 * sigma0, -scale]])
    upper = np.concatenate([[np.inf] * 3, nominal + CENTRE_FREEDOM, [2.0 * sigma0, scale]])
    fit = least_squares(residual, np.clip(start, lower + 1e-12, upper - 1e-12), jac=jacobian, bounds=(lower, upper),
                        x_scale=np.concatenate([[scale] * 3, [sigma0] * 4, [scale]]), max_nfev=100)
    p = fit.x
    return np.concatenate([p[:3] * p[6] * SQRT_2PI, p[3:6], [p[6], p[7]]])


class GaussianDeconvolution(Quantifier):
    """Windowed Gaussian peak fitting + internal-standard-normalised multi-isotope calibration."""

    method = "gd"
    models_counts = True

    def __init__(self, internal_standard: str = "In", isotopes_per_element: int = 2):
        self.internal_standard = internal_standard
        self.isotopes_per_element = isotopes_per_element

    def _standard(self) -> str:
        return self.internal_standard if self.internal_standard and self.internal_standard not in self.targets_ else ""

    def fit_peaks(self, X: np.ndarray) -> np.ndarray:
        """(n, n_windows, 8): areas, centres, sigma and baseline of every window of every spectrum."""
        axis = np.asarray(self.axis_["values"], float)
        sigma0 = [float(self.peaks_.sigma(mz)) for _, mz in self.windows_]
        return np.array([[fit_window(axis, y, self.peaks_.centre(mz), s) for (_, mz), s in zip(self.windows_, sigma0)]
                         for y in X])

    def _features(self, X: np.ndarray) -> np.ndarray:
        areas = self.fit_peaks(X)[:, :, 1]  # the centre Gaussian of each window
        if not self._standard():
            return areas
        standard = np.maximum(areas[:, -1:], 1e-6 * self.reference_)
        return areas[:, :-1] / standard * self.reference_

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        axis = context.spectra.axis
        check_analytes(self.targets_, axis)
        check_counts(context.spectra)
        elements = [*self.targets_, *([self._standard()] if self._standard() else [])]
        self.peaks_ = estimate_peak_model(axis, X.mean(axis=0), elements)
        self.windows_ = _windows(self.targets_, axis, self.isotopes_per_element)
        if self._standard():
            self.windows_ += _windows([self._standard()], axis, 1)
            self.reference_ = 1.0
            self.reference_ = float(np.median(self.fit_peaks(X[:: max(1, len(X) // 50)])[:, -1, 1]))
        features = self._features(X)
        floors = relative_loss_floor(Y)
        self.coef_ = np.zeros((Y.shape[1], features.shape[1] + 1))
        for k, element in enumerate(self.targets_):
            columns = [j for j, (name, _) in enumerate(self.windows_[:features.shape[1]]) if name == element]
            w = 1.0 / (Y[:, k] + floors[k])
            A = np.concatenate([features[:, columns], np.ones((len(Y), 1))], axis=1)
            solution = np.linalg.lstsq(A * w[:, None], Y[:, k] * w, rcond=None)[0]
            self.coef_[k, columns], self.coef_[k, -1] = solution[:-1], solution[-1]

    def _predict(self, X: np.ndarray) -> np.ndarray:
        features = self._features(X)
        return features @ self.coef_[:, :-1].T + self.coef_[:, -1]

    def peak_parameters(self, X: np.ndarray) -> np.ndarray:
        """(n, K, 3) fitted centre, FWHM and height of each analyte's strongest isotope peak."""
        first = [next(j for j, (name, _) in enumerate(self.windows_) if name == k) for k in self.targets_]
        fits = self.fit_peaks(X)[:, first]
        sigma = fits[..., 6]
        return np.stack([fits[..., 4], sigma * 2 * np.sqrt(2 * np.log(2)), fits[..., 1] / (sigma * SQRT_2PI)], axis=-1)

    def internal_standard_recovery(self, X: np.ndarray) -> np.ndarray | None:
        if not self._standard():
            return None
        return self.fit_peaks(X)[:, -1, 1] / self.reference_

    def _state(self):
        extra = {"peaks": self.peaks_.as_dict(), "windows": [[e, float(m)] for e, m in self.windows_],
                 "reference": getattr(self, "reference_", 1.0)}
        return extra, {"coef": self.coef_}, {}

    def _restore(self, extra: dict[str, Any], arrays, estimators) -> None:
        from speclearn.quantify.physics import PeakModel

        self.peaks_ = PeakModel(**extra["peaks"])
        self.windows_ = [(e, float(m)) for e, m in extra["windows"]]
        self.reference_, self.coef_ = float(extra["reference"]), np.asarray(arrays["coef"])
