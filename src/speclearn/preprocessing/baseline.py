"""Baseline removal: pybaselines' algorithms behind one estimator, plus the rolling minimum of Vrábel et al. (JAAS 2023)."""
from __future__ import annotations

import numpy as np
from pybaselines import Baseline
from scipy.ndimage import gaussian_filter1d, minimum_filter1d

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.preprocessing._base import SpectralTransformer

#: methods served by pybaselines (any `pybaselines.Baseline` method name works; these are documented)
PYBASELINES_METHODS = ("snip", "arpls", "asls", "airpls", "imodpoly", "rolling_ball")
ROLLING_MIN = "rolling_min"


class BaselineCorrector(SpectralTransformer):
    """Subtract an estimated baseline from every spectrum.

    method: a pybaselines method name (``snip``, ``arpls``, ``asls``, ...) or ``rolling_min``:
        rolling minimum over `window` channels then Gaussian smoothing with `sigma` (Vrábel et al., JAAS 2023).
    params: keyword arguments for the pybaselines method (e.g. ``{"lam": 1e5}``).
    """

    def __init__(self, method: str = "snip", params: dict | None = None, window: int = 50, sigma: float = 25.0):
        store_params(self, locals())

    def _validate_params_for(self, n_channels: int) -> None:
        if self.method != ROLLING_MIN and not hasattr(Baseline, self.method):
            raise InputError(f"unknown baseline method {self.method!r}; try one of "
                             f"{', '.join((*PYBASELINES_METHODS, ROLLING_MIN))}")

    def baseline(self, X: np.ndarray) -> np.ndarray:
        """The estimated baselines of the rows of `X`."""
        X = np.asarray(X, dtype=float)
        if self.method == ROLLING_MIN:
            floor = minimum_filter1d(X, size=max(int(self.window), 1), axis=1, mode="nearest")
            return gaussian_filter1d(floor, self.sigma, axis=1, mode="nearest") if self.sigma > 0 else floor
        fitter = Baseline(x_data=np.arange(X.shape[1], dtype=float))
        method = getattr(fitter, self.method)
        params = dict(self.params or {})
        if self.method == "snip":
            params.setdefault("max_half_window", max(2, min(40, X.shape[1] // 4)))
        return np.stack([method(row, **params)[0] for row in X]) if len(X) else X.copy()

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        return X - self.baseline(X)
