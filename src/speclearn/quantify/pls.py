"""PLS regression on the (binned, optionally preprocessed) spectra, components chosen by 5-fold CV."""
from __future__ import annotations

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline, make_pipeline

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.quantify.learned import SklearnQuantifier

COMPONENT_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40)
PREPROCESSING = ("none", "snv", "msc", "sg1", "sg2", "snv+sg1")


class PLS(SklearnQuantifier):
    """PLS2 on all targets (scaled), components from `COMPONENT_GRID` up to max_components by CV.

    preprocess: none, snv, msc (reference: mean training spectrum), sg1 / sg2 (Savitzky-Golay first /
    second derivative, polyorder 2, `window` channels) or snv+sg1, built from `speclearn.preprocessing`;
    start / stop: keep only channels of this axis range (None: all).
    """

    method = "pls"

    def __init__(self, max_components: int = 40, max_features: int = 2500, log_targets: bool = False, seed: int = 0,
                 preprocess: str = "none", window: int = 15, start: float | None = None, stop: float | None = None):
        store_params(self, locals())

    def _estimator(self, n_samples: int, n_features: int):
        folds = min(5, n_samples)
        limit = min(self.max_components, n_features, n_samples - n_samples // folds - 1)
        grid = [k for k in COMPONENT_GRID if k <= limit] or [1]
        return GridSearchCV(PLSRegression(scale=True), {"n_components": grid},
                            cv=KFold(folds, shuffle=True, random_state=self.seed),
                            scoring="neg_root_mean_squared_error", refit=True)

    def _pipeline(self) -> Pipeline:
        """The preprocessing steps (speclearn transformers) in front of the regression."""
        from speclearn.preprocessing import Crop, Normalizer, SavitzkyGolay, ScatterCorrection

        if self.preprocess not in PREPROCESSING:
            raise InputError(f"unknown PLS preprocessing {self.preprocess!r}; choose from {', '.join(PREPROCESSING)}")
        axis = np.asarray(self.axis_["values"], float)
        crop = Crop(self.start, self.stop, axis=axis)
        steps, kept = [crop], crop.fit(axis[None]).output_axis(axis).size
        if self.preprocess == "msc":
            steps.append(ScatterCorrection())
        if self.preprocess.startswith("snv"):
            steps.append(Normalizer("snv"))
        if "sg" in self.preprocess:
            window = min(self.window | 1, kept - (1 - kept % 2))
            if window < 5:
                raise InputError(f"{kept} channels are too few for a Savitzky-Golay derivative")
            steps.append(SavitzkyGolay(window, 2, deriv=2 if self.preprocess == "sg2" else 1))
        return make_pipeline(*steps)

    def _features(self, X: np.ndarray) -> np.ndarray:
        return super()._features(self.pipeline_.transform(X))

    def _fit(self, X, Y, context) -> None:
        self.pipeline_ = self._pipeline().fit(X)
        super()._fit(X, Y, context)

    def _state(self):
        extra, arrays, estimators = super()._state()
        return extra, arrays, {**estimators, "preprocessing": self.pipeline_}

    def _restore(self, extra, arrays, estimators) -> None:
        super()._restore(extra, arrays, estimators)
        self.pipeline_ = estimators["preprocessing"]
