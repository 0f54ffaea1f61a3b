"""k-nearest-neighbours regression baseline (Vrábel et al., JAAS 2023 §4.3.1): k tuned on validation, refitted on train + validation."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

from speclearn.core.params import store_params
from speclearn.transfer.base import TransferModel

K_GRID = (2, 3, 4, 5, 10, 15, 20)


class KNNTransfer(TransferModel):
    """Mean primary spectrum of the k training pairs whose secondary spectra are nearest (Euclidean)."""

    method = "knn"
    min_pairs = 10

    def __init__(self, n_neighbors: int | None = None, grid=K_GRID, baseline_window: int = 100,
                 baseline_sigma: float = 50.0, validation_fraction: float = 0.2, seed: int = 0):
        store_params(self, locals())

    def _fit_scaled(self, Xs, Xp, Xs_val, Xp_val, *, name: str) -> None:
        Xs, Xp = np.asarray(Xs, np.float32), np.asarray(Xp, np.float32)
        candidates = [k for k in ((self.n_neighbors,) if self.n_neighbors else self.grid) if k <= len(Xs)] or [len(Xs)]
        # one neighbour search with the largest k serves every candidate (neighbours come sorted)
        _, neighbours = KNeighborsRegressor(n_neighbors=max(candidates)).fit(Xs, Xp).kneighbors(np.asarray(Xs_val))

        def errors(ks):
            return [self._validation_error(Xp[neighbours[:, :k]].mean(axis=1), Xp_val) for k in ks]

        self.n_neighbors_, self.validation_scores_ = self._tune(candidates, errors)
        self.regressor_ = KNeighborsRegressor(n_neighbors=self.n_neighbors_).fit(
            np.vstack([Xs, Xs_val]), np.vstack([Xp, Xp_val]))

    def _predict_scaled(self, Xs: np.ndarray, *, name: str) -> np.ndarray:
        return self.regressor_.predict(np.asarray(Xs, np.float32))

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
        return {}, {"regressor": self.regressor_}, {"n_neighbors": self.n_neighbors_,
                                                     "validation_scores": self.validation_scores_}

    def _restore(self, arrays, estimators, extra) -> None:
        self.regressor_ = estimators["regressor"]
        self.n_neighbors_ = extra["n_neighbors"]
        self.validation_scores_ = extra["validation_scores"]
