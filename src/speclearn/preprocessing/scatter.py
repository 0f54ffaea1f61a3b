"""Multiplicative scatter correction (MSC) against the mean training spectrum."""
from __future__ import annotations

import numpy as np

from speclearn.core.spectra import is_dask
from speclearn.preprocessing._base import SpectralTransformer


class ScatterCorrection(SpectralTransformer):
    """Each spectrum x is regressed on the mean training spectrum r, x ~ a + b r, and replaced by
    (x - a) / b: additive and multiplicative light-scattering effects removed (Geladi et al. 1985)."""

    learns_from_data = True

    def _fit_rows(self, X) -> None:
        mean = X.mean(axis=0)
        self.reference_ = np.asarray(mean.compute() if is_dask(mean) else mean)

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        ref = self.reference_ - self.reference_.mean()
        slope = ((X - X.mean(axis=1, keepdims=True)) @ ref) / max(float(ref @ ref), 1e-300)
        offset = X.mean(axis=1) - slope * self.reference_.mean()
        return (X - offset[:, None]) / np.where(np.abs(slope) > 1e-12, slope, 1.0)[:, None]
