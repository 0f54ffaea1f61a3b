"""Classical matrix-effect correction: internal standard + regression of the residual sensitivity on the
instrument parameters.

The `WNNLS` result is already internal-standard corrected. What the internal standard cannot follow
(an analyte ionised or transmitted differently from it) remains as a recovery = predicted / true
concentration that drifts with the plasma and sample conditions. Per analyte, log(recovery) on the
training spectra is regressed linearly on the standardised parameters (weighted least squares, weights
c / (c + 10 * floor) so that near-blank samples, whose recovery is noise, count little); predictions are
divided by exp(fitted log recovery). Without parameters it is the plain WNNLS.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from speclearn.quantify.base import FitContext, relative_loss_floor
from speclearn.quantify.wnnls import WNNLS


def fit_log_recovery(predicted: np.ndarray, Y: np.ndarray, standardised: np.ndarray, ridge: float) -> np.ndarray:
    """(K, 1 + P) per-analyte intercept and slopes of log(predicted / true) on standardised parameters.

    Weighted (c / (c + 10 * floor)) ridge least squares over the samples where both are positive; an
    analyte with too few of them gets zeros (no correction).
    """
    design = np.column_stack([np.ones(len(standardised)), standardised])
    floor = relative_loss_floor(Y)
    penalty = ridge * len(design) * np.diag([0.0, *np.ones(standardised.shape[1])])
    coef = np.zeros((Y.shape[1], design.shape[1]))
    for k in range(Y.shape[1]):
        usable = (predicted[:, k] > 0) & (Y[:, k] > 0)
        if usable.sum() <= design.shape[1]:
            continue
        w = Y[usable, k] / (Y[usable, k] + 10 * floor[k])
        A = design[usable] * w[:, None]
        coef[k] = np.linalg.solve(A.T @ A + penalty, A.T @ (np.log(predicted[usable, k] / Y[usable, k]) * w))
    return coef


class ParameterCorrectedWNNLS(WNNLS):
    """WNNLS + per-analyte linear model of log(recovery) on the instrument parameters (`ridge` shrinks it).

    warm_start: keep an already fitted WNNLS (same training spectra) and fit only the correction.
    """

    method = "wnnls_params"
    uses_params = True

    def __init__(self, internal_standard: str = "In", interferences: str = "auto", baseline: bool = True,
                 weighted: bool = True, ridge: float = 1e-3, warm_start: bool = False):
        super().__init__(internal_standard=internal_standard, interferences=interferences, baseline=baseline,
                         weighted=weighted)
        self.ridge = ridge
        self.warm_start = warm_start

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        if not (self.warm_start and hasattr(self, "slope_")):
            super()._fit(X, Y, context)
        for name in self._ARRAYS:  # a refit without parameters drops an earlier correction
            self.__dict__.pop(name, None)
        P = context.params
        if P is None:
            return
        self.param_mean_, self.param_std_ = P.mean(axis=0), np.maximum(P.std(axis=0), 1e-12)
        self.correction_ = fit_log_recovery(super()._predict(X), Y, (P - self.param_mean_) / self.param_std_,
                                            self.ridge)

    def _predict(self, X: np.ndarray, P: np.ndarray | None = None) -> np.ndarray:
        predicted = super()._predict(X)
        if P is None:
            return predicted
        design = np.column_stack([np.ones(len(P)), (P - self.param_mean_) / self.param_std_])
        return predicted / np.exp(design @ self.correction_.T)

    _ARRAYS = ("param_mean_", "param_std_", "correction_")

    def _state(self):
        extra, arrays, estimators = super()._state()
        arrays |= {name: np.asarray(getattr(self, name)) for name in self._ARRAYS if hasattr(self, name)}
        return extra, arrays, estimators

    def _restore(self, extra: dict[str, Any], arrays, estimators) -> None:
        super()._restore(extra, arrays, estimators)
        for name in self._ARRAYS:
            if name in arrays:
                setattr(self, name, np.asarray(arrays[name]))
