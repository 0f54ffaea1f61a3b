"""Shared plumbing of the scikit-learn quantifiers (PLS, random forest, PCA+NMF): channel binning,
optional log target transform, persistence of the fitted estimator through skops."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from speclearn.preprocessing.resampling import bin_channels
from speclearn.quantify.base import FitContext, Quantifier, relative_loss_floor


class SklearnQuantifier(Quantifier):
    """A scikit-learn regressor on binned spectra. Subclasses define `_estimator(n, n_features)`.

    max_features: spectra are binned (adjacent channels summed) down to at most this many features.
    log_targets: fit log1p(c / floor) (floor = 1 % of the median positive target) and invert, so the
        fit weighs relative rather than absolute errors.
    """

    def _estimator(self, n_samples: int, n_features: int) -> Any:
        raise NotImplementedError

    def _features(self, X: np.ndarray) -> np.ndarray:
        return bin_channels(X, self.bin_)

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        self.bin_ = max(1, int(np.ceil(X.shape[1] / self.max_features)))
        self.floor_ = relative_loss_floor(Y)
        features, target = self._features(X), self._forward(Y)
        with warnings.catch_warnings():
            # PLS components beyond what a few spectra support (the search drops them); the BSS's NMF at its
            # iteration cap (`max_iter`, chosen for speed)
            warnings.filterwarnings("ignore", message="y residual is constant")
            warnings.filterwarnings("ignore", message="Maximum number of iterations")
            self.estimator_ = self._estimator(*features.shape).fit(features, target[:, 0] if target.shape[1] == 1
                                                                   else target)

    def _forward(self, Y: np.ndarray) -> np.ndarray:
        return np.log1p(Y / self.floor_) if self.log_targets else Y

    def _predict(self, X: np.ndarray) -> np.ndarray:
        out = np.asarray(self.estimator_.predict(self._features(X)), float).reshape(len(X), -1)
        return np.expm1(out) * self.floor_ if self.log_targets else out

    def _state(self):
        return {"bin": self.bin_}, {"floor": self.floor_}, {"estimator": self.estimator_}

    def _restore(self, extra: dict[str, Any], arrays, estimators) -> None:
        self.bin_, self.floor_, self.estimator_ = int(extra["bin"]), np.asarray(arrays["floor"]), estimators["estimator"]
