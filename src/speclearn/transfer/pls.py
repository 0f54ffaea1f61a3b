"""PLS regression baseline (Vrábel et al., JAAS 2023 §4.3.2): components tuned on validation, refitted on train + validation."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cross_decomposition import PLSRegression

from speclearn.core.params import store_params
from speclearn.transfer.base import TransferModel

COMPONENT_GRID = (2, 3, 4, 8, 16, 32, 64)


class PLSTransfer(TransferModel):
    """Partial least squares from secondary to primary spectra (scaled spaces).

    `max_iter` caps the NIPALS iterations per component (scikit-learn's default is 500; with
    thousands of output channels 100 gives the same validation error much sooner).
    """

    method = "pls"
    min_pairs = 10

    def __init__(self, n_components: int | None = None, grid=COMPONENT_GRID, max_iter: int = 100,
                 baseline_window: int = 100, baseline_sigma: float = 50.0, validation_fraction: float = 0.2,
                 seed: int = 0):
        store_params(self, locals())

    def _fit_scaled(self, Xs, Xp, Xs_val, Xp_val, *, name: str) -> None:
        Xs, Xp = np.asarray(Xs, float), np.asarray(Xp, float)
        limit = min(len(Xs) - 1, Xs.shape[1])
        candidates = [c for c in ((self.n_components,) if self.n_components else self.grid) if c <= limit] or [limit]
        # PLS components are extracted one after another, so one fit with the most components
        # gives every smaller model: predict with the leading k rotations and loadings.
        full = PLSRegression(n_components=max(candidates), scale=False, max_iter=self.max_iter).fit(Xs, Xp)

        def errors(ks):
            centred = np.asarray(Xs_val, float) - full._x_mean
            return [self._validation_error(centred @ full.x_rotations_[:, :k] @ full.y_loadings_[:, :k].T
                                           + full.intercept_, Xp_val) for k in ks]

        self.n_components_, self.validation_scores_ = self._tune(candidates, errors)
        self.regressor_ = PLSRegression(n_components=self.n_components_, scale=False, max_iter=self.max_iter).fit(
            np.vstack([Xs, Xs_val]), np.vstack([Xp, Xp_val]))

    def _predict_scaled(self, Xs: np.ndarray, *, name: str) -> np.ndarray:
        return self.regressor_.predict(Xs)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
        return {}, {"regressor": self.regressor_}, {"n_components": self.n_components_,
                                                     "validation_scores": self.validation_scores_}

    def _restore(self, arrays, estimators, extra) -> None:
        self.regressor_ = estimators["regressor"]
        self.n_components_ = extra["n_components"]
        self.validation_scores_ = extra["validation_scores"]
