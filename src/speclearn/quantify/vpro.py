"""Variable-projection ICP-MS inversion: instrument peak shape at fit, mass shift and mass bias per spectrum.

Starts from the `WNNLS` model (candidate species, noise model, shift estimates), models every candidate
interference (WNNLS's pruning drops some that are present), and replaces its Gaussian templates by the
quadrupole peak shape of `speclearn.physics.icpms` (pseudo-Voigt core, low-mass EMG tail), whose
parameters (FWHM intercept and slope, Lorentzian fraction, tail fraction and length) are
fitted to the shift-aligned mean training spectrum by nonlinear least squares with the amounts by NNLS.

Mass bias, a per-spectrum transmission factor (m/z / reference)^b, cannot be told apart from the free
amounts of single species. It is identified through a reference group of background ions found in the
training spectra: species whose log amounts all move together up to a term linear in log m/z (the
plasma gas ions in a quadrupole ICP-MS). Per spectrum, the group is one composite template with fixed
relative weights, and the mass shift and bias are fitted by Gauss-Newton steps with all amounts by
weighted NNLS at each step (variable projection). The amounts are then bias-corrected, divided by the
internal standard and calibrated as in `WNNLS`.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from speclearn.core.threads import single_threaded_blas
from speclearn.physics.icpms import ion_pattern
from speclearn.quantify.base import FitContext, calibrate, relative_loss_floor
from speclearn.quantify.physics import (SHAPE_SPECTRA, fit_peak_shape, instrument_from, log_mass, reference_group,
                                        shape_design, weighted_nnls)
from speclearn.quantify.wnnls import PRUNING_SPECTRA, WNNLS

class VarProQuantifier(WNNLS):
    """WNNLS's noise model and calibration with the fitted instrument peak shape, per-spectrum mass shift and bias.

    interferences: as in `WNNLS`; default 'all' candidates, unpruned (with the instrument's own peak
        shape an absent species stays near zero, and a present one that WNNLS's pruning drops, such as
        an analyte's oxide on another analyte, is modelled).
    iterations: Gauss-Newton steps on (mass shift, mass bias) per spectrum.
    shape_spectra: training spectra (evenly spaced) averaged, after shift alignment, for the shape fit.
    """

    method = "vpro"

    def __init__(self, internal_standard: str = "In", interferences: str = "all", baseline: bool = True,
                 weighted: bool = True, iterations: int = 4, shape_spectra: int = SHAPE_SPECTRA):
        super().__init__(internal_standard=internal_standard, interferences=interferences, baseline=baseline,
                         weighted=weighted)
        self.iterations = iterations
        self.shape_spectra = shape_spectra

    # --- design ----------------------------------------------------------------------------------
    def _setup(self, axis: np.ndarray) -> None:
        """Templates and their shift derivatives on the region where any species has signal, mass-bias levers."""
        T, dT, _ = shape_design(self.species_, axis, self.shape_)
        self.region_ = np.flatnonzero((T > 1e-3 * T.max(axis=1, keepdims=True)).any(axis=0))
        x = (axis[self.region_] - axis.min()) / max(np.ptp(axis), 1e-12)
        self.baseline_design_ = np.stack([1 - x, x]) if self.baseline else np.zeros((0, len(self.region_)))
        self.templates_, self.shift_templates_ = T[:, self.region_], dT[:, self.region_]
        self.lever_ = log_mass(self.species_, float(np.exp(np.mean(np.log(axis)))))

    def _design(self, bias: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(columns, channels) design at mass bias `bias`, its shift and bias derivatives (per unit amount)."""
        free = np.setdiff1d(np.arange(len(self.species_)), self.group_)
        columns, shift_columns = [self.templates_[free]], [self.shift_templates_[free]]
        bias_columns = [np.zeros_like(self.templates_[free])]
        if len(self.group_):
            factor = self.group_weights_ * np.exp(bias * self.lever_[self.group_])
            columns.append((factor @ self.templates_[self.group_])[None])
            shift_columns.append((factor @ self.shift_templates_[self.group_])[None])
            bias_columns.append(((factor * self.lever_[self.group_]) @ self.templates_[self.group_])[None])
        zeros = np.zeros_like(self.baseline_design_)
        return (np.concatenate([*columns, self.baseline_design_]), np.concatenate([*shift_columns, zeros]),
                np.concatenate([*bias_columns, zeros]))

    def _amounts(self, x: np.ndarray, bias: float) -> np.ndarray:
        """Per-species amounts (bias-corrected, in `species_` order) from a solution of `_design`."""
        free = np.setdiff1d(np.arange(len(self.species_)), self.group_)
        out = np.zeros(len(self.species_))
        out[free] = x[:len(free)] * np.exp(-bias * self.lever_[free])
        if len(self.group_):
            out[self.group_] = x[len(free)] * self.group_weights_
        return out

    # --- per-spectrum solution ---------------------------------------------------------------------
    @single_threaded_blas
    def solve(self, X: np.ndarray, shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(amounts (n, species), shifts, biases) by variable projection from starting `shifts`; the fitted
        spectra (region channels, on the measured axis) are left in `last_fits_`."""
        axis = np.asarray(self.axis_["values"], float)
        positions = axis[self.region_]
        amounts, out_shift, out_bias = np.zeros((len(X), len(self.species_))), np.array(shifts, float), np.zeros(len(X))
        self.last_fits_ = np.zeros((len(X), len(positions)))
        for i, row in enumerate(np.asarray(X, float)):
            shift, bias = out_shift[i], 0.0
            y = np.interp(positions + shift, axis, row)
            D, S, B = self._design(bias)
            w = np.ones_like(y)
            x = weighted_nnls(D, y, w)
            for _ in range(self.iterations):
                fit = x @ D
                if self.weighted:
                    w = 1.0 / self.variance(fit)
                J = np.stack([x @ S, x @ B]) if len(self.group_) else (x @ S)[None]
                # variable projection: the part of J the active amounts can follow is no step direction
                active, root = D[x > 0].T * np.sqrt(w)[:, None], np.sqrt(w)
                J = J - (active @ np.linalg.lstsq(active, (J * root).T, rcond=None)[0]).T / root
                JW = J * w
                step = np.linalg.lstsq(JW @ J.T + 1e-12 * np.eye(len(J)), JW @ (y - fit), rcond=None)[0]
                shift += step[0]
                bias += step[1] if len(step) > 1 else 0.0
                y = np.interp(positions + shift, axis, row)
                D, S, B = self._design(bias)
                x = weighted_nnls(D, y, w)
            amounts[i], out_shift[i], out_bias[i] = self._amounts(x, bias), shift, bias
            self.last_fits_[i] = x @ D + shift * (x @ S)  # first order in the shift, on the measured channels
        return amounts, out_shift, out_bias

    def variance(self, signal: np.ndarray) -> np.ndarray:
        return self._inversion_.variance(signal)

    # --- fit -------------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        super()._fit(X, Y, context)  # its last solve covered every row of X: its shifts are the starts
        axis = context.spectra.axis
        shifts = self._inversion_.last_shifts.copy()
        self._solved = None
        self.shape_ = fit_peak_shape(axis, X, shifts, self.species_, self.peaks_, self._inversion_.region,
                                     self.shape_spectra)[0]
        self.group_, self.group_weights_ = np.zeros(0, int), np.zeros(0)
        self._setup(axis)
        rows = np.linspace(0, len(X) - 1, min(PRUNING_SPECTRA, len(X))).astype(int)
        n_fixed = len(self.targets_) + (1 if self._standard() else 0)  # the group is found among the others
        self.group_, self.group_weights_ = reference_group(self.solve(X[rows], shifts[rows])[0], self.lever_,
                                                           np.arange(n_fixed, len(self.species_)))
        amounts = self.solve(X, shifts)[0]
        self.reference_ = float(np.median(amounts[:, len(self.targets_)])) if self._standard() else 1.0
        self.slope_, self.intercept_ = calibrate(self._ratios(amounts), Y, relative_loss_floor(Y))

    # --- prediction ------------------------------------------------------------------------------
    def amounts(self, X: np.ndarray) -> np.ndarray:
        """Bias-corrected amount of every species in `species_` (WNNLS shifts as the starting point).

        The solution of the last X is kept: `quantify predict` asks for the concentrations, the
        internal-standard recovery and the fit of the same block, and each solve costs ~200 ms a spectrum."""
        X = np.asarray(X, float)
        key = hashlib.blake2b(np.ascontiguousarray(X).tobytes(), digest_size=16).digest()
        if getattr(self, "_solved", None) is None or self._solved[0] != key:
            self._inversion_.solve(X, weighted=self.weighted)
            amounts, self.last_shifts_, self.last_biases_ = self.solve(X, self._inversion_.last_shifts)
            self._solved = (key, amounts, self.last_fits_)
        self.last_fits_ = self._solved[2]
        return self._solved[1].copy()

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """Fitted (denoised) spectra at each spectrum's estimated mass shift and bias."""
        self.amounts(X)
        out = np.zeros_like(X, dtype=float)
        out[:, self.region_] = self.last_fits_
        return out

    def peak_parameters(self, X: np.ndarray) -> np.ndarray:
        """(n, K, 3) centre, FWHM and height of each analyte's most abundant isotope."""
        K = len(self.targets_)
        amounts = self.amounts(X)[:, :K] * np.exp(self.last_biases_[:, None] * self.lever_[None, :K])
        main = [max(ion_pattern(k), key=lambda p: p[1]) for k in self.targets_]
        mz, fraction = np.array([m for m, _, _ in main]), np.array([f for _, f, _ in main])
        fwhm = instrument_from(self.shape_, np.asarray(self.axis_["values"], float)).fwhm(mz)
        return np.stack([mz[None, :] + self.last_shifts_[:, None], np.broadcast_to(fwhm, amounts.shape),
                         amounts * fraction], axis=-1)

    # --- persistence -----------------------------------------------------------------------------
    def _state(self):
        extra, arrays, estimators = super()._state()
        extra |= {"shape": self.shape_}
        arrays |= {"group": self.group_, "group_weights": self.group_weights_}
        return extra, arrays, estimators

    def _restore(self, extra: dict[str, Any], arrays, estimators) -> None:
        super()._restore(extra, arrays, estimators)
        self.shape_ = dict(extra["shape"])
        self.group_ = np.asarray(arrays["group"], int)
        self.group_weights_ = np.asarray(arrays["group_weights"], float)
        self._setup(np.asarray(self.axis_["values"], float))
