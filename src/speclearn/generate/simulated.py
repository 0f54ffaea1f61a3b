"""Simulator-based augmentation: spectra simulated at the requested compositions, mapped onto the real
instrument by a per-channel affine correction learned from the few real spectra and their twins.

The simulator knows the physics (lines, their intensities for a composition, the plasma); it does
not know the real instrument's state exactly (resolution, response, continuum, dark level). Each
real training spectrum gets a simulated twin at its composition; per channel, real = a * twin + b
is fitted by ridge regression shrunk towards (a, b) = (1, 0) (the simulator taken as it is), and
generated spectra are the corrected twins of new compositions. Whether the generated spectra help
is for the caller to check on held-out real spectra (`speclearn.generate.benchmark`).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from speclearn.core.errors import InputError


class SimulatorCorrection(BaseEstimator):
    """Per-channel affine map from simulated twins to real spectra; `shrinkage` pulls the slope to 1."""

    def __init__(self, shrinkage: float = 1.0):
        self.shrinkage = shrinkage

    def fit(self, twins: np.ndarray, real: np.ndarray) -> "SimulatorCorrection":
        twins, real = np.asarray(twins, float), np.asarray(real, float)
        if twins.shape != real.shape or len(twins) < 2:
            raise InputError(f"need matching twins and real spectra (at least 2), got {twins.shape} and {real.shape}")
        t_mean, r_mean = twins.mean(axis=0), real.mean(axis=0)
        t, r = twins - t_mean, real - r_mean
        # ridge towards slope 1: minimise |r - a t|^2 + lambda (a - 1)^2 * var(t) * n, per channel
        penalty = self.shrinkage * np.mean(t ** 2, axis=0) * len(t)
        self.slope_ = (np.sum(t * r, axis=0) + penalty) / (np.sum(t ** 2, axis=0) + penalty + 1e-300)
        self.intercept_ = r_mean - self.slope_ * t_mean
        return self

    def transform(self, twins: np.ndarray) -> np.ndarray:
        return np.asarray(twins, float) * self.slope_ + self.intercept_
