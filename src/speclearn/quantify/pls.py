"""PLS regression on the (binned) spectra, number of components chosen by 5-fold cross-validation."""
from __future__ import annotations

from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GridSearchCV, KFold

from speclearn.quantify.learned import SklearnQuantifier

COMPONENT_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40)


class PLS(SklearnQuantifier):
    """PLS2 on all targets (scaled), components from `COMPONENT_GRID` up to max_components by CV."""

    method = "pls"

    def __init__(self, max_components: int = 40, max_features: int = 2500, log_targets: bool = False, seed: int = 0):
        self.max_components = max_components
        self.max_features = max_features
        self.log_targets = log_targets
        self.seed = seed

    def _estimator(self, n_samples: int, n_features: int):
        folds = min(5, n_samples)
        limit = min(self.max_components, n_features, n_samples - n_samples // folds - 1)
        grid = [k for k in COMPONENT_GRID if k <= limit] or [1]
        return GridSearchCV(PLSRegression(scale=True), {"n_components": grid},
                            cv=KFold(folds, shuffle=True, random_state=self.seed),
                            scoring="neg_root_mean_squared_error", refit=True)
