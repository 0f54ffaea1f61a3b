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
from scipy.linalg import cho_factor, solve_triangular
from scipy.optimize import nnls

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.threads import single_threaded_blas
from speclearn.quantify.base import FitContext, Quantifier, calibrate, check_counts, relative_loss_floor
from speclearn.physics.icpms import ion_pattern
from speclearn.quantify.physics import (PeakModel, WeightedGrams, candidate_interferences, check_analytes,
                                        estimate_peak_model, refine_peak_model, template_matrix)

FWHM_PER_SIGMA = 2 * np.sqrt(2 * np.log(2))
#: spectra (an evenly spaced subset) on which the noise model and the interference pruning are fitted
PRUNING_SPECTRA = 200


class LinearInversion:
    """Templates + baseline on a channel region; `solve` returns non-negative amounts per species.

    Each spectrum's mass calibration is corrected too: the residual of a first solution is regressed
    on the fit's derivative with respect to a mass shift, the spectrum is resampled by that shift and
    solved again (`shift_iterations` times).
    """

    def __init__(self, species: list[str], axis: np.ndarray, peaks: PeakModel, *, baseline: bool = True,
                 noise: tuple[float, ...] = (1.0, 0.0, 0.0), shift_iterations: int = 2):
        self.species, self.peaks, self.noise = list(species), peaks, noise
        self.axis, self.shift_iterations = np.asarray(axis, float), shift_iterations
        templates = template_matrix(self.species, axis, peaks)
        signal = templates.max(axis=1, keepdims=True)
        self.region = np.flatnonzero((templates > 1e-3 * np.maximum(signal, 1e-300)).any(axis=0))
        columns = [templates[:, self.region]]
        shifts = [template_matrix(self.species, axis, peaks, derivative="shift")[:, self.region]]
        if baseline:
            x = (axis[self.region] - axis.min()) / max(np.ptp(axis), 1e-12)
            columns.append(np.stack([1 - x, x]))
            shifts.append(np.zeros((2, len(self.region))))
        self.design = np.concatenate(columns).T  # (region channels, species + baseline)
        self.shift_design = np.concatenate(shifts).T  # d design / d mass shift
        self.scale = np.maximum(np.linalg.norm(self.design, axis=0), 1e-300)
        D = self.design / self.scale
        self._gram_factor = cho_factor(D.T @ D + 1e-10 * np.eye(D.shape[1]))
        self._weighted_grams = WeightedGrams(D)

    def _grams(self, weights: np.ndarray) -> np.ndarray:
        """(n, k, k) weighted Gram matrices D^T diag(w) D for the rows of `weights` (n, region channels)."""
        return self._weighted_grams(weights) + 1e-10 * np.eye(self.design.shape[1])

    def _solve_block(self, Y: np.ndarray, weighted: bool) -> tuple[np.ndarray, np.ndarray]:
        """Non-negative amounts (scaled) and weights for the rows of Y (region channels).

        min ||W^1/2 (D x - y)|| with x >= 0 through the Cholesky factor R of the (weighted) Gram matrix:
        ||D x - y||_W^2 = ||R x - R^-T D^T W y||^2 + const, a small k x k NNLS per spectrum."""
        D = self.design / self.scale
        upper = np.triu(self._gram_factor[0]) if not self._gram_factor[1] else np.triu(self._gram_factor[0].T)
        targets = solve_triangular(upper, (Y @ D).T, trans="T").T
        x = np.stack([nnls(upper, t, maxiter=50 * upper.shape[1])[0] for t in targets])
        w = np.ones_like(Y)
        if weighted:
            w = 1.0 / self.variance(x @ D.T)
            lower = np.linalg.cholesky(self._grams(w))
            targets = np.linalg.solve(lower, ((w * Y) @ D)[..., None])[..., 0]
            x = np.stack([nnls(L.T, t, maxiter=50 * L.shape[0])[0] for L, t in zip(lower, targets)])
        return x, w

    @single_threaded_blas
    def solve(self, X: np.ndarray, *, weighted: bool = True, return_fit: bool = False,
              shifts: np.ndarray | None = None, block: int = 256):
        """Amounts (n, n_species + baseline terms) for each row of X (full-axis spectra).

        shifts: known mass shifts per spectrum (m/z); None estimates them. The estimated shifts are
        left in `self.last_shifts`. Spectra are solved `block` rows at a time.
        """
        X = np.asarray(X, float)
        D = self.design / self.scale
        S = self.shift_design / self.scale
        out = np.empty((len(X), D.shape[1]))
        fits = np.empty((len(X), len(self.region))) if return_fit else None
        self.last_shifts = np.zeros(len(X))
        positions = self.axis[self.region]

        def resampled(rows: np.ndarray, delta: np.ndarray) -> np.ndarray:
            return np.stack([np.interp(positions + d, self.axis, row) if d else row[self.region]
                             for row, d in zip(rows, delta)])

        for start in range(0, len(X), block):
            rows = X[start:start + block]
            delta = np.zeros(len(rows)) if shifts is None else np.asarray(shifts[start:start + block], float)
            Y = resampled(rows, delta)
            x, w = self._solve_block(Y, weighted)
            for _ in range(self.shift_iterations if shifts is None else 0):
                slope = x @ S.T
                step = np.sum(w * slope * (Y - x @ D.T), axis=1) / np.maximum(np.sum(w * slope * slope, axis=1),
                                                                              1e-300)
                delta = delta + step
                Y = resampled(rows, delta)
                x, w = self._solve_block(Y, weighted)
            self.last_shifts[start:start + len(rows)] = delta
            out[start:start + len(rows)] = x
            if return_fit:
                fits[start:start + len(rows)] = x @ D.T
        amounts = out / self.scale
        return (amounts, fits) if return_fit else amounts

    def variance(self, signal: np.ndarray) -> np.ndarray:
        """Noise model: a + b * signal + c * signal^2 (counting + proportional noise)."""
        signal = np.maximum(signal, 0)
        return self.noise[0] + signal * (self.noise[1] + self.noise[2] * signal)

    def estimate_noise(self, X: np.ndarray) -> tuple[float, float, float]:
        """Fit the variance model to the squared residuals of unweighted solutions of the rows of X."""
        _, fits = self.solve(X, weighted=False, return_fit=True)
        residual2 = (np.stack([np.interp(self.axis[self.region] + d, self.axis, row)
                               for row, d in zip(np.asarray(X, float), self.last_shifts)]) - fits) ** 2
        signal = np.maximum(fits, 0).ravel()
        A = np.stack([np.ones_like(signal), signal, signal ** 2], axis=1)
        scale = np.maximum(np.abs(A).max(axis=0), 1e-300)
        coef = np.maximum(nnls(A / scale, residual2.ravel())[0] / scale, 0.0)
        floor = max(float(np.median(residual2)), 1e-12)
        return max(float(coef[0]), 0.1 * floor), float(coef[1]), float(coef[2])

    def render(self, amounts: np.ndarray, n_channels: int) -> np.ndarray:
        """Spectra (n, n_channels) from amounts (zero outside the fitted region)."""
        out = np.zeros((len(amounts), n_channels))
        out[:, self.region] = amounts @ self.design.T
        return out


class WNNLS(Quantifier):
    """Weighted NNLS physics inversion with internal-standard correction and per-analyte calibration.

    internal_standard: element added at constant concentration to every sample ('' for none).
    interferences: 'auto' (common ICP-MS interferences and the analytes' oxides / doubly charged
        ions that land on the axis, pruned to those found (amount > 0) in at least 75 % of the
        training spectra), 'all' (the same candidates, unpruned) or a comma list.
    """

    method = "wnnls"
    models_counts = True

    def __init__(self, internal_standard: str = "In", interferences: str = "auto", baseline: bool = True,
                 weighted: bool = True):
        store_params(self, locals())

    # --- physics setup ---------------------------------------------------------------------------
    def _species(self, axis: np.ndarray) -> list[str]:
        standard = self.internal_standard if self.internal_standard not in self.targets_ else ""
        if self.interferences in ("auto", "all"):
            others = candidate_interferences(self.targets_, standard or None, axis)
        else:
            others = [s.strip() for s in self.interferences.split(",") if s.strip()]
        return [*self.targets_, *([standard] if standard else []), *others]

    def _inversion(self, axis: np.ndarray, species: list[str], peaks: PeakModel, noise=(1.0, 0.0)):
        return LinearInversion(species, axis, peaks, baseline=self.baseline, noise=noise)

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        axis = context.spectra.axis
        check_analytes(self.targets_, axis)
        check_counts(context.spectra)
        if self.internal_standard:
            check_analytes([self.internal_standard], axis)
        species = self._species(axis)
        peaks = estimate_peak_model(axis, X.mean(axis=0), species[:len(self.targets_) + 1])
        peaks = refine_peak_model(axis, X.mean(axis=0), species, peaks)
        inversion = self._inversion(axis, species, peaks)
        noise = inversion.estimate_noise(X[:: max(1, len(X) // PRUNING_SPECTRA)])
        inversion = self._inversion(axis, species, peaks, noise)
        if self.interferences == "auto":  # keep only interferences the training spectra actually show
            subset = X[:: max(1, len(X) // PRUNING_SPECTRA)]
            amounts = inversion.solve(subset, weighted=self.weighted)
            n_fixed = len(self.targets_) + (1 if self._standard() else 0)
            used = (amounts[:, n_fixed:len(species)] > 0).mean(axis=0) >= 0.75
            species = species[:n_fixed] + [s for s, u in zip(species[n_fixed:], used) if u]
            inversion = self._inversion(axis, species, peaks, noise)
        amounts = inversion.solve(X, weighted=self.weighted)
        self.species_, self.peaks_, self.noise_ = species, peaks, noise
        self._inversion_ = inversion
        self.reference_ = float(np.median(amounts[:, len(self.targets_)])) if self._standard() else 1.0
        if self._standard() and self.reference_ <= 0:
            raise InputError(f"the internal standard {self.internal_standard} is not visible in the training "
                             "spectra; pass internal_standard='' (CLI: it must be added to every sample)")
        self.slope_, self.intercept_ = calibrate(self._ratios(amounts), Y, relative_loss_floor(Y))

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
        """Fitted (denoised) spectra, at each spectrum's estimated mass shift."""
        amounts = self.amounts(X)
        shifts, design = self._inversion_.last_shifts, self._inversion_.design
        fitted = amounts @ design.T + shifts[:, None] * (amounts @ self._inversion_.shift_design.T)
        out = np.zeros_like(X, dtype=float)
        out[:, self._inversion_.region] = fitted
        return out

    def peak_parameters(self, X: np.ndarray) -> np.ndarray:
        """(n, K, 3) centre, FWHM and height of each analyte's most abundant isotope."""
        amounts = self.amounts(X)[:, :len(self.targets_)]
        shifts = self._inversion_.last_shifts
        main = [max(ion_pattern(k), key=lambda p: p[1]) for k in self.targets_]
        mz, fraction = np.array([m for m, _, _ in main]), np.array([f for _, f, _ in main])
        sigma = self.peaks_.sigma(mz)
        return np.stack([np.broadcast_to(self.peaks_.centre(mz), amounts.shape) + shifts[:, None],
                         np.broadcast_to(sigma * FWHM_PER_SIGMA, amounts.shape),
                         amounts * fraction / (sigma * np.sqrt(2 * np.pi))], axis=-1)

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
