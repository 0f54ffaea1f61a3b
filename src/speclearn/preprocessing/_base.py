"""Shared machinery for every preprocessing transformer: validation in one place, numpy or dask.

A transformer works spectrum by spectrum on a (n_spectra, n_channels) array. Subclasses implement
`_transform_rows(X)` (a numpy block -> numpy block) and, when they learn statistics, `_fit_rows(X)`.
Transformers that change the channels (crop, mask, resample) also implement `output_axis(axis)`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from speclearn.core.errors import InputError
from speclearn.core.spectra import is_dask


class SpectralTransformer(TransformerMixin, BaseEstimator):
    """Base class: fit/transform over numpy or dask (n_spectra, n_channels) arrays."""

    #: whether `_fit_rows` needs the data (a stateless transformer only records the width)
    learns_from_data = False

    def _check(self, X: Any, *, reset: bool) -> Any:
        if is_dask(X):
            if X.ndim != 2:
                raise InputError(f"expected a 2-D (spectra, channels) array, got shape {X.shape}")
            if reset:
                self.n_features_in_ = X.shape[1]
            elif X.shape[1] != self.n_features_in_:
                raise InputError(f"{X.shape[1]} channels, but {type(self).__name__} was fitted on "
                                 f"{self.n_features_in_}")
            return X.rechunk({1: -1}).astype(float)
        try:
            return validate_data(self, X, reset=reset, dtype=np.float64, copy=False)
        except ValueError as err:
            raise InputError(" ".join(str(err).split())) from None

    def fit(self, X: Any, y: Any = None) -> "SpectralTransformer":
        X = self._check(X, reset=True)
        self._validate_params_for(X.shape[1])
        if self.learns_from_data:
            self._fit_rows(X)
        self.fitted_ = True
        return self

    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "fitted_")
        X = self._check(X, reset=False)
        if is_dask(X):
            width = self._n_features_out(X.shape[1])
            return X.map_blocks(lambda block: self._checked_rows(np.asarray(block, dtype=float)),
                                dtype=float, chunks=(X.chunks[0], (width,)))
        return self._checked_rows(np.array(X, dtype=float, copy=True))

    def _checked_rows(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = self._transform_rows(X)
        if not np.isfinite(out).all():
            row = int(np.argmin(np.isfinite(out).all(axis=1)))
            raise InputError(f"preprocessing step {type(self).__name__} produced NaN or infinite values "
                             f"(spectrum {row + 1} of its block: values too large, or a constant spectrum?)")
        return out

    def _validate_params_for(self, n_channels: int) -> None:
        """Check hyperparameters against the data width (override where it matters)."""

    def _fit_rows(self, X: Any) -> None:  # pragma: no cover - overridden where learns_from_data
        raise NotImplementedError

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _n_features_out(self, n_in: int) -> int:
        return n_in

    def output_axis(self, axis: np.ndarray) -> np.ndarray:
        """The axis of the transformed spectra (unchanged unless the transformer selects channels)."""
        return axis

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "fitted_")
        return np.asarray([f"x{i}" for i in range(self._n_features_out(self.n_features_in_))], dtype=object)


class AxisTransformer(SpectralTransformer):
    """A transformer that knows the channel positions (`axis`), e.g. to crop in nm or keV."""

    def _axis(self, n_channels: int) -> np.ndarray:
        if self.axis is None:
            raise InputError(f"{type(self).__name__} needs the spectra's axis (axis=...)")
        axis = np.asarray(self.axis, dtype=float)
        if axis.size != n_channels:
            raise InputError(f"{type(self).__name__} was given an axis of {axis.size} values for "
                             f"{n_channels} channels")
        return axis

    def _validate_params_for(self, n_channels: int) -> None:
        self.keep_ = self._keep_mask(self._axis(n_channels))
        if not self.keep_.any():
            raise InputError(f"{type(self).__name__} would remove every channel")

    def _keep_mask(self, axis: np.ndarray) -> np.ndarray:
        return np.ones(axis.size, dtype=bool)

    def _n_features_out(self, n_in: int) -> int:
        return int(self.keep_.sum())

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        return X[:, self.keep_]

    def output_axis(self, axis: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "fitted_")
        return np.asarray(axis)[self.keep_]
