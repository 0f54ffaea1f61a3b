"""Physics linear inversion: weighted NNLS on isotope-pattern templates, internal-standard corrected.

What ICP-MS software does. The design matrix holds one template per species (the analytes, the
internal standard and known interferences: argides, chlorides, oxides, doubly charged ions; see
`physics.COMMON_INTERFERENCES`) plus a non-negative linear baseline, restricted to the channels
where any template has signal. Peak width and mass calibration are estimated from the training
spectra. Each spectrum is solved twice: an unweighted NNLS gives the fitted signal, whose variance
(a + b * signal, fitted on the training residuals) weights the second NNLS. Amounts are divided by
the internal standard's amount (its recovery is reported per spectrum), and a weighted calibration
line per analyte, fitted on the training spectra and targets, turns them into concentrations.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import nnls

from speclearn.core.errors import InputError
from speclearn.quantify.base import FitContext, Quantifier, relative_loss_floor
from speclearn.quantify.physics import (PeakModel, candidate_interferences, check_analytes, estimate_peak_model,
                                        refine_peak_model, template_matrix)


class LinearInversion:
    """Templates + baseline on a channel region; `solve` returns non-negative amounts per species."""

    def __init__(self, species: list[str], axis: np.ndarray, peaks: PeakModel, *, baseline: bool = True,
                 noise: tuple[float, float] = (1.0, 0.0)):
        self.species, self.peaks, self.noise = list(species), peaks, noise
        templates = template_matrix(self.species, axis, peaks)
        signal = templates.max(axis=1, keepdims=True)
        self.region = np.flatnonzero((templates > 1e-3 * np.maximum(signal, 1e-300)).any(axis=0))
        columns = [templates[:, self.region]]
        if baseline:
            x = (axis[self.region] - axis.min()) / max(np.ptp(axis), 1e-12)
            columns.append(np.stack([1 - x, x]))
        self.design = np.concatenate(columns).T  # (region channels, species + baseline)
        self.scale = np.maximum(np.linalg.norm(self.design, axis=0), 1e-300)
        self._gram_factor = cho_factor(self._gram(np.ones(len(self.region))))

    def _gram(self, weights: np.ndarray) -> np.ndarray:
        D = self.design / self.scale
        return (D * weights[:, None]).T @ D + 1e-10 * np.eye(D.shape[1])

    def _nnls_normal(self, factor, rhs: np.ndarray) -> np.ndarray:
        """min ||W^1/2 (D x - y)|| with x >= 0, via the Cholesky factor of the (weighted) Gram matrix."""
        upper = np.triu(factor[0]) if not factor[1] else np.triu(factor[0].T)
        # R^T R = G;  ||D x - y||_W^2 = ||R x - R^-T D^T W y||^2 + const
        target = solve_triangular(upper, rhs, trans="T")
        return nnls(upper, target, maxiter=50 * upper.shape[1])[0]

    def solve(self, X: np.ndarray, *, weighted: bool = True, return_fit: bool = False):
        """Amounts (n, n_species + baseline terms) for each row of X (full-axis spectra)."""
        Y = np.asarray(X, float)[:, self.region]
        D = self.design / self.scale
        out = np.empty((len(Y), D.shape[1]))
        fits = np.empty_like(Y) if return_fit else None
        for i, y in enumerate(Y):
            x = self._nnls_normal(self._gram_factor, D.T @ y)
            if weighted:
                fit = D @ x
                w = 1.0 / (self.noise[0] + self.noise[1] * np.maximum(fit, 0))
                factor = cho_factor(self._gram(w))
                x = self._nnls_normal(factor, D.T @ (w * y))
            out[i] = x
            if return_fit:
                fits[i] = D @ x
        amounts = out / self.scale
        return (amounts, fits) if return_fit else amounts

    def standard_errors(self, typical: np.ndarray) -> np.ndarray:
        """Standard error of each amount for a spectrum like `typical` (weighted least squares)."""
        amounts, fits = self.solve(typical[None, :], weighted=False, return_fit=True)
        w = 1.0 / (self.noise[0] + self.noise[1] * np.maximum(fits[0], 0))
        return np.sqrt(np.diag(np.linalg.inv(self._gram(w)))) / self.scale

    def estimate_noise(self, X: np.ndarray) -> tuple[float, float]:
        """Fit residual variance = a + b * signal on unweighted solutions of the rows of X."""
        _, fits = self.solve(X, weighted=False, return_fit=True)
        residual2 = (np.asarray(X, float)[:, self.region] - fits) ** 2
        signal = np.maximum(fits, 0).ravel()
        A = np.stack([np.ones_like(signal), signal], axis=1)
        coef = np.linalg.lstsq(A, residual2.ravel(), rcond=None)[0]
        floor = max(float(np.median(residual2)), 1e-12)
        return max(float(coef[0]), 0.1 * floor), max(float(coef[1]), 0.0)

    def render(self, amounts: np.ndarray, n_channels: int) -> np.ndarray:
        """Spectra (n, n_channels) from amounts (zero outside the fitted region)."""
        out = np.zeros((len(amounts), n_channels))
        out[:, self.region] = amounts @ self.design.T
        return out


class WNNLS(Quantifier):
    """Weighted NNLS physics inversion with internal-standard correction and per-analyte calibration.

    internal_standard: element added at constant concentration to every sample ('' for none).
    interferences: 'auto' (common ICP-MS interferences and the analytes' oxides / doubly charged
        ions that land on the axis, pruned to those whose median amount over the training spectra
        exceeds twice its standard error) or a comma list.
    """

    method = "wnnls"

    def __init__(self, internal_standard: str = "In", interferences: str = "auto", baseline: bool = True,
                 weighted: bool = True):
        self.internal_standard = internal_standard
        self.interferences = interferences
        self.baseline = baseline
        self.weighted = weighted

    # --- physics setup ---------------------------------------------------------------------------
    def _species(self, axis: np.ndarray) -> list[str]:
        standard = self.internal_standard if self.internal_standard not in self.targets_ else ""
        if self.interferences == "auto":
            others = candidate_interferences(self.targets_, standard or None, axis)
        else:
            others = [s.strip() for s in self.interferences.split(",") if s.strip()]
        return [*self.targets_, *([standard] if standard else []), *others]

    def _inversion(self, axis: np.ndarray, species: list[str], peaks: PeakModel, noise=(1.0, 0.0)):
        return LinearInversion(species, axis, peaks, baseline=self.baseline, noise=noise)

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        axis = context.spectra.axis
        check_analytes(self.targets_, axis)
        if self.internal_standard:
            check_analytes([self.internal_standard], axis)
        species = self._species(axis)
        peaks = estimate_peak_model(axis, X.mean(axis=0), species[:len(self.targets_) + 1])
        peaks = refine_peak_model(axis, X.mean(axis=0), species, peaks)
        inversion = self._inversion(axis, species, peaks)
        noise = inversion.estimate_noise(X[:: max(1, len(X) // 200)])
        inversion = self._inversion(axis, species, peaks, noise)
        amounts = inversion.solve(X, weighted=self.weighted)
        if self.interferences == "auto":  # keep only interferences the training spectra actually show
            n_fixed = len(self.targets_) + (1 if self._standard() else 0)
            error = inversion.standard_errors(X.mean(axis=0))
            significance = np.median(amounts / error, axis=0)[n_fixed:len(species)]
            used = significance > 2.0
            species = species[:n_fixed] + [s for s, u in zip(species[n_fixed:], used) if u]
            inversion = self._inversion(axis, species, peaks, noise)
            amounts = inversion.solve(X, weighted=self.weighted)
        self.species_, self.peaks_, self.noise_ = species, peaks, noise
        self._inversion_ = inversion
        self.reference_ = float(np.median(amounts[:, len(self.targets_)])) if self._standard() else 1.0
        if self._standard() and self.reference_ <= 0:
            raise InputError(f"the internal standard {self.internal_standard} is not visible in the training "
                             "spectra; pass internal_standard='' (CLI: it must be added to every sample)")
        ratios = self._ratios(amounts)
        floors = relative_loss_floor(Y)
        self.slope_, self.intercept_ = np.empty(Y.shape[1]), np.empty(Y.shape[1])
        for k in range(Y.shape[1]):
            w = 1.0 / (Y[:, k] + floors[k])
            A = np.stack([ratios[:, k], np.ones(len(Y))], axis=1) * w[:, None]
            self.slope_[k], self.intercept_[k] = np.linalg.lstsq(A, Y[:, k] * w, rcond=None)[0]

    def _standard(self) -> str:
        return self.internal_standard if self.internal_standard and self.internal_standard not in self.targets_ else ""

    def _ratios(self, amounts: np.ndarray) -> np.ndarray:
        analytes = amounts[:, :len(self.targets_)]
        if not self._standard():
            return analytes
        standard = np.maximum(amounts[:, len(self.targets_)], 1e-6 * self.reference_)
        return analytes / standard[:, None] * self.reference_

    # --- prediction ------------------------------------------------------------------------------
    def amounts(self, X: np.ndarray) -> np.ndarray:
        """Fitted amount of every species in `species_` (then the baseline terms)."""
        return self._inversion_.solve(X, weighted=self.weighted)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self._ratios(self.amounts(X)) * self.slope_ + self.intercept_

    def internal_standard_recovery(self, X: np.ndarray) -> np.ndarray | None:
        """Internal-standard signal relative to the training median (1.0 = 100 %), or None."""
        if not self._standard():
            return None
        return self.amounts(X)[:, len(self.targets_)] / self.reference_

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """Fitted (denoised) spectra."""
        return self._inversion_.render(self.amounts(X), X.shape[1])

    # --- persistence -----------------------------------------------------------------------------
    def _state(self):
        extra = {"species": self.species_, "peaks": self.peaks_.as_dict(), "noise": list(self.noise_),
                 "reference": self.reference_}
        return extra, {"slope": self.slope_, "intercept": self.intercept_}, {}

    def _restore(self, extra: dict[str, Any], arrays, estimators) -> None:
        self.species_, self.peaks_ = list(extra["species"]), PeakModel(**extra["peaks"])
        self.noise_, self.reference_ = tuple(extra["noise"]), float(extra["reference"])
        self.slope_, self.intercept_ = np.asarray(arrays["slope"]), np.asarray(arrays["intercept"])
        axis = np.asarray(self.axis_["values"], float)
        self._inversion_ = self._inversion(axis, self.species_, self.peaks_, self.noise_)
