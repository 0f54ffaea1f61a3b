"""Reversible standard scaling per channel, fitted on training data only (numpy or dask)."""
from __future__ import annotations

import numpy as np

from speclearn.core.spectra import is_dask
from speclearn.preprocessing._base import SpectralTransformer


class StandardScaler(SpectralTransformer):
    """(x - mean) / std per channel, with `inverse_transform` back to the measured scale.

    Unlike sklearn's, it fits on dask arrays without loading them (one pass of reductions).
    """

    learns_from_data = True

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std

    def _fit_rows(self, X) -> None:
        mean, std = X.mean(axis=0), X.std(axis=0)
        if is_dask(X):
            import dask
            mean, std = dask.compute(mean, std)
        self.mean_ = np.asarray(mean) if self.with_mean else np.zeros(X.shape[1])
        std = np.asarray(std)
        self.scale_ = np.where(std > 0, std, 1.0) if self.with_std else np.ones(X.shape[1])

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def inverse_transform(self, X):
        X = self._check(X, reset=False)
        return X * self.scale_ + self.mean_
