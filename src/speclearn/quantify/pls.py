"""PLS regression on the (binned, optionally preprocessed) spectra, components chosen by 5-fold CV."""
from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GridSearchCV, KFold

from speclearn.core.errors import InputError
from speclearn.quantify.learned import SklearnQuantifier

COMPONENT_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40)
PREPROCESSING = ("none", "snv", "msc", "sg1", "sg2", "snv+sg1")


def snv(X: np.ndarray) -> np.ndarray:
    """Standard normal variate: each spectrum centred and scaled by its own mean and sd."""
    sd = X.std(axis=1, keepdims=True)
    return (X - X.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def msc(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Multiplicative scatter correction against `reference`: (x - a) / b with x ~ a + b reference."""
    ref = reference - reference.mean()
    b = ((X - X.mean(axis=1, keepdims=True)) @ ref) / max(float(ref @ ref), 1e-300)
    a = X.mean(axis=1) - b * reference.mean()
    return (X - a[:, None]) / np.where(np.abs(b) > 1e-12, b, 1.0)[:, None]


class PLS(SklearnQuantifier):
    """PLS2 on all targets (scaled), components from `COMPONENT_GRID` up to max_components by CV.

    preprocess: none, snv, msc (reference: mean training spectrum), sg1 / sg2 (Savitzky-Golay first /
    second derivative, polyorder 2, `window` channels) or snv+sg1; start / stop: keep only channels of
    this axis range (None: all).
    """

    method = "pls"

    def __init__(self, max_components: int = 40, max_features: int = 2500, log_targets: bool = False, seed: int = 0,
                 preprocess: str = "none", window: int = 15, start: float | None = None, stop: float | None = None):
        self.max_components = max_components
        self.max_features = max_features
        self.log_targets = log_targets
        self.seed = seed
        self.preprocess = preprocess
        self.window = window
        self.start = start
        self.stop = stop

    def _estimator(self, n_samples: int, n_features: int):
        folds = min(5, n_samples)
        limit = min(self.max_components, n_features, n_samples - n_samples // folds - 1)
        grid = [k for k in COMPONENT_GRID if k <= limit] or [1]
        return GridSearchCV(PLSRegression(scale=True), {"n_components": grid},
                            cv=KFold(folds, shuffle=True, random_state=self.seed),
                            scoring="neg_root_mean_squared_error", refit=True)

    def _channels(self) -> np.ndarray:
        axis = np.asarray(self.axis_["values"], float)
        keep = np.ones(axis.size, bool)
        if self.start is not None:
            keep &= axis >= self.start
        if self.stop is not None:
            keep &= axis <= self.stop
        if keep.sum() < 3:
            raise InputError(f"the range {self.start}..{self.stop} keeps fewer than 3 channels")
        return np.flatnonzero(keep)

    def _prepared(self, X: np.ndarray) -> np.ndarray:
        if self.preprocess not in PREPROCESSING:
            raise InputError(f"unknown PLS preprocessing {self.preprocess!r}; choose from {', '.join(PREPROCESSING)}")
        X = X[:, self._channels()]
        if self.preprocess == "msc":
            return msc(X, self.reference_)
        if self.preprocess.startswith("snv"):
            X = snv(X)
        if "sg" in self.preprocess:
            window = min(self.window | 1, X.shape[1] - (1 - X.shape[1] % 2))
            if window < 5:
                raise InputError(f"{X.shape[1]} channels are too few for a Savitzky-Golay derivative")
            X = savgol_filter(X, window, 2, deriv=2 if self.preprocess == "sg2" else 1, axis=1)
        return X

    def _features(self, X: np.ndarray) -> np.ndarray:
        return super()._features(self._prepared(X))

    def _fit(self, X, Y, context) -> None:
        self.reference_ = X[:, self._channels()].mean(axis=0) if self.preprocess == "msc" else None
        super()._fit(X, Y, context)

    def _state(self):
        extra, arrays, estimators = super()._state()
        if self.reference_ is not None:
            arrays = {**arrays, "msc_reference": self.reference_}
        return extra, arrays, estimators

    def _restore(self, extra, arrays, estimators) -> None:
        super()._restore(extra, arrays, estimators)
        self.reference_ = np.asarray(arrays["msc_reference"]) if "msc_reference" in arrays else None
