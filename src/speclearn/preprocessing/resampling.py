"""Resampling onto another axis (linear interpolation), e.g. to align two instruments."""
from __future__ import annotations

import numpy as np
from scipy.interpolate import interp1d

from speclearn.core.errors import InputError
from speclearn.preprocessing._base import SpectralTransformer


class Resampler(SpectralTransformer):
    """Interpolate spectra from `axis` onto `target_axis`; the target must lie inside `axis`."""

    def __init__(self, target_axis=None, axis=None):
        self.target_axis = target_axis
        self.axis = axis

    def _validate_params_for(self, n_channels: int) -> None:
        if self.axis is None or self.target_axis is None:
            raise InputError("Resampler needs both axis and target_axis")
        axis, target = np.asarray(self.axis, float), np.asarray(self.target_axis, float)
        if axis.size != n_channels:
            raise InputError(f"axis of {axis.size} values given for {n_channels} channels")
        low, high = min(axis[0], axis[-1]), max(axis[0], axis[-1])
        if target.min() < low - 1e-9 * abs(low) or target.max() > high + 1e-9 * abs(high):
            raise InputError(f"target axis {target.min():g}..{target.max():g} reaches outside the data's "
                             f"{low:g}..{high:g}; crop it first")

    def _n_features_out(self, n_in: int) -> int:
        return int(np.asarray(self.target_axis).size)

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        target = np.clip(np.asarray(self.target_axis, float), *sorted((self.axis[0], self.axis[-1])))
        return interp1d(np.asarray(self.axis, float), X, axis=1, assume_sorted=False)(target)

    def output_axis(self, axis: np.ndarray) -> np.ndarray:
        return np.asarray(self.target_axis, dtype=float)


def bin_channels(X: np.ndarray, factor: int) -> np.ndarray:
    """Sum adjacent channels in groups of `factor` (the last partial group is summed too)."""
    if factor <= 1:
        return X
    n, c = X.shape
    full = (c // factor) * factor
    binned = X[:, :full].reshape(n, -1, factor).sum(axis=2)
    return np.concatenate([binned, X[:, full:].sum(axis=1, keepdims=True)], axis=1) if full < c else binned
