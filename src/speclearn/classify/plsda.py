"""PLS-DA: PLS regression onto one-hot class indicators, class = argmax of the predicted indicators.

The number of latent variables is chosen by stratified cross-validation on the training spectra.
Probabilities are the predicted indicators clipped at zero and normalised to sum to one.
"""
from __future__ import annotations

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import StratifiedKFold

from speclearn.classify.base import SklearnClassifier
from speclearn.core.params import store_params


def _indicator_proba(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, 0.0, None)
    total = clipped.sum(axis=1, keepdims=True)
    uniform = np.full_like(clipped, 1.0 / clipped.shape[1])
    return np.where(total > 0, clipped / np.where(total > 0, total, 1.0), uniform)


class PLSDAClassifier(SklearnClassifier):
    """PLS-DA with `n_components` picked by cross-validation up to `max_components`."""

    method = "plsda"

    def __init__(self, max_components: int = 15, preprocessing: list | None = None, seed: int = 0):
        store_params(self, locals())

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray) -> None:
        n_classes = int(y.max()) + 1
        onehot = np.eye(n_classes)[y]
        folds = min(5, int(np.bincount(y).min()))
        limit = max(1, min(self.max_components, X.shape[1], len(y) - len(y) // folds - 1))
        correct = np.zeros(limit)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
        for train, test in splitter.split(X, y):
            for k in range(1, limit + 1):
                pls = PLSRegression(n_components=k).fit(X[train], onehot[train])
                correct[k - 1] += np.sum(pls.predict(X[test]).argmax(axis=1) == y[test])
        self.n_components_ = int(np.argmax(correct)) + 1
        self.estimator_ = PLSRegression(n_components=self.n_components_).fit(X, onehot)

    def _proba_arrays(self, X: np.ndarray) -> np.ndarray:
        return _indicator_proba(self.estimator_.predict(X))
