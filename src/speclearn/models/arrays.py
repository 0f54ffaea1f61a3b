"""Every speclearn estimator as a plain scikit-learn estimator on (n_spectra, n_channels) arrays.

speclearn's estimators take `Spectra` (spectra with their axis and ids) and return labelled tables.
These adapters give each one the array interface scikit-learn tools expect (GridSearchCV,
`cross_val_score`, chemotools pipelines, MAPIE/crepes conformal wrappers, HyperSpy's
`decomposition(algorithm=...)`):

    >>> from speclearn.quantify.pls import PLS
    >>> model = ArrayRegressor(PLS(), axis=wavenumbers).fit(X, y)      # doctest: +SKIP
    >>> GridSearchCV(model, {"estimator__n_components": [2, 4, 8]})     # doctest: +SKIP

`axis` (the channel positions, with `axis_kind` and `axis_unit`) defaults to channel numbers; the
wrapped estimator still checks it, so methods that need a physical axis (m/z for the ICP-MS
physics) need it given.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra


class _SpectraAdapter(BaseEstimator):
    """Arrays in, `Spectra` for the wrapped estimator."""

    def __init__(self, estimator: Any = None, *, axis: Any = None, axis_kind: str = "channel", axis_unit: str = ""):
        store_params(self, locals())

    def _spectra(self, X: np.ndarray, *, fitting: bool = False) -> Spectra:
        if fitting and X.shape[0] < 2:
            raise ValueError(f"{X.shape[0]} sample; at least 2 spectra are needed to fit")
        if fitting and X.shape[1] < 3:
            raise ValueError(f"{X.shape[1]} feature(s); a spectrum needs at least 3 channels")
        axis = np.arange(X.shape[1], dtype=float) if self.axis is None else np.asarray(self.axis, dtype=float)
        ids = pd.Index([f"s{i}" for i in range(len(X))], name="id")
        return Spectra(np.asarray(X, dtype=float), axis, axis_kind=self.axis_kind, axis_unit=self.axis_unit,
                       meta=pd.DataFrame(index=ids))


class ArrayRegressor(RegressorMixin, _SpectraAdapter):
    """A quantifier as a regressor: `fit(X, y)` / `predict(X)`, y (n,) or (n, targets). A transfer model
    too: X the secondary instrument's spectra, y the paired primary spectra (n, primary channels)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y (n, targets): one column per target
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        self.single_target_ = np.ndim(y) == 1
        Y = np.asarray(y, dtype=float).reshape(len(y), -1)
        spectra = self._spectra(X, fitting=True)
        if getattr(self.estimator, "system", "") == "transfer":
            primary = Spectra(Y, np.arange(Y.shape[1], dtype=float), meta=spectra.meta)
            self.estimator_ = clone(self.estimator).fit(primary, spectra)
        else:
            targets = pd.DataFrame(Y, index=spectra.meta.index, columns=[f"y{k}" for k in range(Y.shape[1])])
            self.estimator_ = clone(self.estimator).fit(spectra, targets)
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        predicted = self.estimator_.predict(self._spectra(X))
        predicted = predicted.values() if isinstance(predicted, Spectra) else np.asarray(predicted, dtype=float)
        return predicted[:, 0] if self.single_target_ else predicted


class ArrayClassifier(ClassifierMixin, _SpectraAdapter):
    """A classifier on arrays: `fit(X, y)`, `predict(X)` -> labels, `predict_proba(X)`."""

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        spectra = self._spectra(X, fitting=True)
        labels = pd.Series([f"{c:06d}" for c in codes], index=spectra.meta.index)
        self.estimator_ = clone(self.estimator).fit(spectra, labels)
        self.order_ = np.array([int(c) for c in self.estimator_.classes_])
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        proba = np.zeros((len(X), len(self.classes_)))
        proba[:, self.order_] = self.estimator_.predict_proba(self._spectra(X))
        return proba

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class ArrayTransformer(TransformerMixin, _SpectraAdapter):
    """A denoiser as a transformer: `fit(X, y=None)` (y: replicate/sample groups for the methods that
    need them), `transform(X)` -> cleaned spectra."""

    def fit(self, X, y=None):
        X = validate_data(self, X)
        self.estimator_ = clone(self.estimator).fit(self._spectra(X, fitting=True), groups=y)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.estimator_.transform(self._spectra(X)).values()
