"""Blind source separation: PCA chooses the number of sources, NMF unmixes, ridge regression on the scores."""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import NMF, PCA
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from speclearn.core.params import store_params
from speclearn.quantify.base import FitContext
from speclearn.quantify.learned import SklearnQuantifier


class BlindSourceSeparation(SklearnQuantifier):
    """PCA (components explaining `explained` of the variance, at most `max_sources`) sets k; NMF with k
    sources on the non-negative binned spectra, each channel divided by the square root of its mean
    (variance stabilisation for counting noise, so small peaks are not drowned by the large ones); RidgeCV from the standardised NMF scores to the targets."""

    method = "bss"

    def __init__(self, explained: float = 0.9999, max_sources: int = 40, max_features: int = 2500,
                 max_iter: int = 400, log_targets: bool = False, seed: int = 0):
        store_params(self, locals())

    def _features(self, X: np.ndarray) -> np.ndarray:
        return np.maximum(super()._features(X), 0.0) / self.channel_scale_

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        self.bin_ = max(1, int(np.ceil(X.shape[1] / self.max_features)))
        self.channel_scale_ = 1.0
        mean = self._features(X).mean(axis=0)
        self.channel_scale_ = np.sqrt(mean + max(float(np.median(mean)), 1e-12))
        features = self._features(X)
        pca = PCA(svd_solver="full" if min(features.shape) < 500 else "randomized", random_state=self.seed,
                  n_components=min(self.max_sources, *features.shape)).fit(features)
        ratio = np.cumsum(pca.explained_variance_ratio_)
        self.n_sources_ = int(min(np.searchsorted(ratio, self.explained) + 1, len(ratio)))
        super()._fit(X, Y, context)

    def _state(self):
        extra, arrays, estimators = super()._state()
        return extra, {**arrays, "channel_scale": self.channel_scale_}, estimators

    def _restore(self, extra, arrays, estimators) -> None:
        super()._restore(extra, arrays, estimators)
        self.channel_scale_ = np.asarray(arrays["channel_scale"])

    def _estimator(self, n_samples: int, n_features: int):
        nmf = NMF(n_components=self.n_sources_, init="nndsvda", max_iter=self.max_iter, random_state=self.seed)
        return make_pipeline(nmf, StandardScaler(), RidgeCV(alphas=np.logspace(-6, 3, 19)))
