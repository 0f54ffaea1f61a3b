"""k-nearest-neighbour classifier (distance-weighted votes on preprocessed spectra)."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from speclearn.classify.base import SklearnClassifier
from speclearn.core.params import store_params


class KNNClassifier(SklearnClassifier):
    """kNN: the `n_neighbors` closest training spectra vote, weighted by inverse distance."""

    method = "knn"

    def __init__(self, n_neighbors: int = 5, preprocessing: list | None = None, seed: int = 0):
        store_params(self, locals())

    def _make_estimator(self, y: np.ndarray) -> Any:
        return KNeighborsClassifier(n_neighbors=min(self.n_neighbors, len(y)), weights="distance")
