"""Savitzky-Golay smoothing and derivatives (scipy.signal.savgol_filter along channels)."""
from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.preprocessing._base import SpectralTransformer


class SavitzkyGolay(SpectralTransformer):
    """Savitzky-Golay filter: `window_length` channels (odd), polynomial `polyorder`, derivative `deriv`."""

    def __init__(self, window_length: int = 11, polyorder: int = 2, deriv: int = 0):
        store_params(self, locals())

    def _validate_params_for(self, n_channels: int) -> None:
        if self.window_length % 2 == 0 or self.window_length < 3:
            raise InputError(f"Savitzky-Golay window_length must be odd and >= 3, got {self.window_length}")
        if self.polyorder >= self.window_length:
            raise InputError("Savitzky-Golay polyorder must be smaller than window_length")
        if self.window_length > n_channels:
            raise InputError(f"Savitzky-Golay window_length {self.window_length} exceeds {n_channels} channels")

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        return savgol_filter(X, self.window_length, self.polyorder, deriv=self.deriv, axis=1, mode="interp")
