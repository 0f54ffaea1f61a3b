"""No transfer: the secondary spectra, baseline-removed and resampled onto the primary axis, as they are.

The "do nothing" candidate of `transfer train --method auto`: a fitted transfer is only worth using
when it predicts the primary spectra better than this on held-out pairs. Primary channels outside
the secondary's range take the nearest secondary value.
"""
from __future__ import annotations

import numpy as np

from speclearn.core.params import store_params
from speclearn.transfer.base import TransferModel


class NoTransfer(TransferModel):
    """Identity after resampling (linear interpolation); nothing is learned beyond the axes."""

    method = "none"
    min_pairs = 3

    def __init__(self, baseline_window: int = 100, baseline_sigma: float = 50.0, validation_fraction: float = 0.2,
                 seed: int = 0):
        store_params(self, locals())

    def _fit_scaled(self, Xs, Xp, Xs_val, Xp_val, *, name: str) -> None:
        pass

    def _predict_scaled(self, Xs: np.ndarray, *, name: str) -> np.ndarray:
        secondary = np.asarray(self.secondary_axes_[name]["values"], float)
        primary = np.asarray(self.axis_["values"], float)
        raw = self.secondary_pipes_[name].named_steps["scale"].inverse_transform(np.asarray(Xs, float))
        order = np.argsort(secondary)
        resampled = np.stack([np.interp(primary, secondary[order], row[order]) for row in raw])
        return self.primary_pipe_.named_steps["scale"].transform(resampled)

    def _state(self):
        return {}, {}, {}

    def _restore(self, arrays, estimators, extra) -> None:
        pass
