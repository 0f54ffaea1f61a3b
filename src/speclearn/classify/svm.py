"""Support-vector classifier (RBF kernel on standard-scaled spectra, Platt probabilities)."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from speclearn.classify.base import SklearnClassifier


class SVMClassifier(SklearnClassifier):
    """SVM with an RBF kernel; channels standard-scaled first."""

    method = "svm"

    def __init__(self, C: float = 10.0, gamma: str | float = "scale", preprocessing: list | None = None,
                 seed: int = 0):
        self.C = C
        self.gamma = gamma
        self.preprocessing = preprocessing
        self.seed = seed

    def _make_estimator(self, y: np.ndarray) -> Any:
        return make_pipeline(StandardScaler(), SVC(C=self.C, gamma=self.gamma, probability=True,
                                                   random_state=self.seed))
