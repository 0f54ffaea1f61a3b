"""Random forest regression on the raw spectrum, binned to at most `max_features` channels."""
from __future__ import annotations

from sklearn.ensemble import RandomForestRegressor

from speclearn.core.params import store_params
from speclearn.quantify.learned import SklearnQuantifier


class RandomForest(SklearnQuantifier):
    """Multi-output random forest on log-transformed concentrations (relative errors matter)."""

    method = "rf"

    def __init__(self, n_estimators: int = 200, max_features: int = 1000, split_features: float = 0.3,
                 log_targets: bool = True, seed: int = 0, n_jobs: int = 1):
        store_params(self, locals())

    def _estimator(self, n_samples: int, n_features: int):
        return RandomForestRegressor(n_estimators=self.n_estimators, max_features=self.split_features,
                                     random_state=self.seed, n_jobs=self.n_jobs)
