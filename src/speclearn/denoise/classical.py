"""Classical denoising: baseline removal + Savitzky-Golay (the foundation's transformers), and
optionally PCA reconstruction (keep the leading components of the baseline-corrected spectra)."""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.denoise.base import Denoiser
from speclearn.preprocessing import BaselineCorrector, SavitzkyGolay


class ClassicalDenoiser(Denoiser):
    """Baseline (`baseline`: a BaselineCorrector method, None to skip) -> Savitzky-Golay smoothing
    (`window_length`, `polyorder`; window 0 to skip) -> PCA reconstruction with `n_components`
    (None to skip). Needs neither groups nor clean data."""

    method = "classical"

    def __init__(self, baseline: str | None = "arpls", baseline_params: dict | None = None,
                 window_length: int = 7, polyorder: int = 2, n_components: int | None = None, seed: int = 0):
        store_params(self, locals())

    def _steps(self) -> Pipeline:
        steps = []
        if self.baseline:
            steps.append(("baseline", BaselineCorrector(method=self.baseline, params=self.baseline_params)))
        if self.window_length:
            steps.append(("savgol", SavitzkyGolay(window_length=self.window_length, polyorder=self.polyorder)))
        return Pipeline(steps or [("identity", "passthrough")])

    def _fit(self, X, *, groups, clean) -> None:
        self.pipeline_ = self._steps().fit(X)
        self.pca_ = None
        if self.n_components:
            if self.n_components >= min(X.shape):
                raise InputError(f"n_components={self.n_components} must be below min(spectra, channels) "
                                 f"= {min(X.shape)}")
            self.pca_ = PCA(n_components=self.n_components, random_state=self.seed).fit(self.pipeline_.transform(X))

    def _clean(self, X: np.ndarray) -> np.ndarray:
        out = self.pipeline_.transform(X)
        return self.pca_.inverse_transform(self.pca_.transform(out)) if self.pca_ is not None else out

    def _state(self):
        return {}, ({"pca": self.pca_} if self.pca_ is not None else {}), {}

    def _restore(self, arrays, estimators, extra) -> None:
        self.pipeline_ = self._steps().fit(np.zeros((1, len(self.axis_["values"]))))
        self.pca_ = estimators.get("pca")
