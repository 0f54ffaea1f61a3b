"""Random-forest classifier on preprocessed spectra."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from speclearn.classify.base import SklearnClassifier
from speclearn.core.params import store_params


class ForestClassifier(SklearnClassifier):
    """Random forest of `n_estimators` trees, probabilities from the tree votes."""

    method = "rf"

    def __init__(self, n_estimators: int = 300, preprocessing: list | None = None, seed: int = 0):
        store_params(self, locals())

    def _make_estimator(self, y: np.ndarray) -> Any:
        return RandomForestClassifier(n_estimators=self.n_estimators, random_state=self.seed, n_jobs=1)
