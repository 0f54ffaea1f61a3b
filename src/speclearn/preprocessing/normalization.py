"""Per-spectrum normalisation: SNV, area, maximum, or ratio to an internal-standard region."""
from __future__ import annotations

import numpy as np

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.preprocessing._base import SpectralTransformer

METHODS = ("snv", "area", "max", "internal_standard")


class Normalizer(SpectralTransformer):
    """Normalise every spectrum on its own.

    method: ``snv`` (centre, divide by std), ``area`` (divide by sum |x|), ``max`` (divide by max |x|)
        or ``internal_standard`` (divide by the summed signal in `region` = (low, high) axis units,
        which needs `axis`).
    """

    def __init__(self, method: str = "snv", region: tuple[float, float] | None = None, axis=None):
        store_params(self, locals())

    def _validate_params_for(self, n_channels: int) -> None:
        if self.method not in METHODS:
            raise InputError(f"unknown normalisation {self.method!r}; choose from {', '.join(METHODS)}")
        if self.method == "internal_standard":
            if self.region is None or self.axis is None:
                raise InputError("internal_standard normalisation needs region=(low, high) and the axis")
            axis = np.asarray(self.axis, dtype=float)
            if axis.size != n_channels:
                raise InputError(f"axis of {axis.size} values given for {n_channels} channels")
            low, high = sorted(self.region)
            self.region_mask_ = (axis >= low) & (axis <= high)
            if not self.region_mask_.any():
                raise InputError(f"internal-standard region {low:g}..{high:g} holds no channel")

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        if self.method == "snv":
            centred = X - X.mean(axis=1, keepdims=True)
            scale = centred.std(axis=1, keepdims=True)
            return centred / np.where(scale > 0, scale, 1.0)
        if self.method == "area":
            scale = np.abs(X).sum(axis=1, keepdims=True)
        elif self.method == "max":
            scale = np.abs(X).max(axis=1, keepdims=True)
        else:
            scale = X[:, self.region_mask_].sum(axis=1, keepdims=True)
        return X / np.where(scale != 0, scale, 1.0)
