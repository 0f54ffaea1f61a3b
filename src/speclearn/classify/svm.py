"""Support-vector classifier (RBF kernel on standard-scaled spectra, sigmoid-calibrated probabilities)."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from speclearn.classify.base import SklearnClassifier
from speclearn.core.params import store_params


class SVMClassifier(SklearnClassifier):
    """SVM with an RBF kernel; channels standard-scaled first."""

    method = "svm"

    def __init__(self, C: float = 10.0, gamma: str | float = "scale", preprocessing: list | None = None,
                 seed: int = 0):
        store_params(self, locals())

    def _make_estimator(self, y: np.ndarray) -> Any:
        folds = StratifiedKFold(min(3, int(np.bincount(y).min())), shuffle=True, random_state=self.seed)
        svc = SVC(C=self.C, gamma=self.gamma, random_state=self.seed)
        return make_pipeline(StandardScaler(), CalibratedClassifierCV(svc, cv=folds, ensemble=False))
