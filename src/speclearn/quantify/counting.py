"""Classical uncertainty of the WNNLS physics inversion: counting statistics propagated to concentrations.

Per spectrum, the channel variances of the inversion's noise model (a + b s + c s^2: Poisson counting
plus proportional noise, fitted on the training residuals) weight the least-squares design D; the
amounts' covariance is (D^T W D)^-1 (every species and baseline term free, so it does not shrink when
the non-negativity constraint is active). The delta method carries it through the internal-standard
ratio r_k = a_k / a_IS * reference and the calibration line c_k = slope_k r_k + intercept_k. Not
included: the calibration line's own uncertainty, sensitivity drift and mass-calibration error, so
coverage is expected to fall below nominal wherever those dominate (see benchmarks/uncertainty.md).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm

from speclearn.core.errors import InputError
from speclearn.models.conformal import check_level


def channel_variance(inversion, signal: np.ndarray) -> np.ndarray:
    """The inversion's noise model a + b s (+ c s^2) at fitted signal s."""
    s = np.maximum(signal, 0)
    a, b, *c = inversion.noise
    return a + s * (b + (c[0] if c else 0.0) * s)


def concentration_sd(model, X: np.ndarray) -> np.ndarray:
    """(n, targets) standard deviation of each predicted concentration from counting statistics."""
    inversion = model._inversion_
    _, fits = inversion.solve(X, weighted=model.weighted, return_fit=True)
    design = inversion.design / inversion.scale
    K = len(model.targets_)
    standard = bool(model._standard())
    out = np.empty((len(X), K))
    amounts = inversion.solve(X, weighted=model.weighted)
    for i in range(len(X)):
        w = 1.0 / channel_variance(inversion, fits[i])
        cov = np.linalg.pinv((design * w[:, None]).T @ design) / np.outer(inversion.scale, inversion.scale)
        a = amounts[i]
        if standard:
            s = max(a[K], 1e-6 * model.reference_)
            grad = np.zeros((K, len(a)))
            grad[np.arange(K), np.arange(K)] = model.reference_ / s
            grad[:, K] = -a[:K] * model.reference_ / s ** 2
        else:
            grad = np.eye(K, len(a))
        var_ratio = np.einsum("kj,jl,kl->k", grad, cov, grad)
        out[i] = np.abs(model.slope_) * np.sqrt(np.maximum(var_ratio, 0))
    return out


class CountingStatistics:
    """Gaussian intervals p -/+ z sigma from `concentration_sd` (WNNLS models only)."""

    name = "counting"

    @staticmethod
    def check(model) -> None:
        if getattr(model, "method", "") != "wnnls":
            raise InputError(f"counting-statistics intervals need the wnnls physics inversion, "
                             f"not {getattr(model, 'method', type(model).__name__)!r}")

    def sigma(self, model, X: np.ndarray) -> np.ndarray:
        self.check(model)
        return concentration_sd(model, X)

    def interval(self, p: np.ndarray, level: float, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = norm.ppf(0.5 + check_level(level) / 2)
        return p - z * sigma, p + z * sigma

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {}

    @classmethod
    def restore(cls, extra, arrays) -> "CountingStatistics":
        return cls()
