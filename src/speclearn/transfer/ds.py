"""Direct standardisation (DS), the classical calibration-transfer baseline, regularised by truncated SVD.

DS fits one linear map F with X_primary ~ X_secondary F (+ intercept) over all channels. With more
channels than pairs F is not determined, so it is taken as the truncated-SVD pseudo-inverse
solution of rank r (tuned on validation) and stored factored, A (m_s x r) and B (r x m_p).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import linalg

from speclearn.core.params import store_params
from speclearn.transfer.base import TransferModel

RANK_GRID = (2, 4, 8, 16, 32, 64, 128, 256, 512)


def low_rank_ds(Xs: np.ndarray, Xp: np.ndarray, rank: int) -> dict[str, np.ndarray]:
    """The rank-`rank` least-squares map from `Xs` to `Xp`, as centring vectors and two factors."""
    xs_mean, xp_mean = Xs.mean(axis=0), Xp.mean(axis=0)
    U, s, Vt = linalg.svd(Xs - xs_mean, full_matrices=False, lapack_driver="gesdd")
    rank = min(rank, int(np.sum(s > s[0] * 1e-10)))
    return {"xs_mean": xs_mean, "xp_mean": xp_mean, "A": (Vt[:rank].T / s[:rank]).astype(np.float32),
            "B": (U[:, :rank].T @ (Xp - xp_mean)).astype(np.float32)}


def apply_ds(factors: dict[str, np.ndarray], Xs: np.ndarray) -> np.ndarray:
    return ((np.asarray(Xs, float) - factors["xs_mean"]) @ factors["A"]) @ factors["B"] + factors["xp_mean"]


def tune_rank(Xs: np.ndarray, Xp: np.ndarray, Xs_val: np.ndarray, error: Callable[[np.ndarray], float],
              grid=RANK_GRID) -> tuple[int, dict[str, float]]:
    """The rank in `grid` with the lowest validation `error`; one SVD serves every rank."""
    full = low_rank_ds(Xs, Xp, max(grid))
    projected = (np.asarray(Xs_val, float) - full["xs_mean"]) @ full["A"]
    ranks = [r for r in grid if r <= full["A"].shape[1]] or [full["A"].shape[1]]
    scores = {r: error(projected[:, :r] @ full["B"][:r] + full["xp_mean"]) for r in ranks}
    best = min(scores, key=scores.get)
    return best, {str(r): float(v) for r, v in scores.items()}


class DSTransfer(TransferModel):
    """Direct standardisation over the full secondary spectrum (ranks tuned, refitted on train + validation)."""

    method = "ds"
    min_pairs = 10

    def __init__(self, rank: int | None = None, grid=RANK_GRID, baseline_window: int = 100,
                 baseline_sigma: float = 50.0, validation_fraction: float = 0.2, seed: int = 0):
        store_params(self, locals())

    def _fit_scaled(self, Xs, Xp, Xs_val, Xp_val, *, name: str) -> None:
        Xs, Xp = np.asarray(Xs, float), np.asarray(Xp, float)
        grid = (self.rank,) if self.rank else self.grid
        self.rank_, self.validation_scores_ = tune_rank(Xs, Xp, Xs_val, lambda p: self._validation_error(p, Xp_val),
                                                        grid)
        self.factors_ = low_rank_ds(np.vstack([Xs, Xs_val]), np.vstack([Xp, Xp_val]), self.rank_)

    def _predict_scaled(self, Xs: np.ndarray, *, name: str) -> np.ndarray:
        return apply_ds(self.factors_, Xs)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
        return ({f"ds.{k}": v for k, v in self.factors_.items()}, {},
                {"rank": self.rank_, "validation_scores": self.validation_scores_})

    def _restore(self, arrays, estimators, extra) -> None:
        self.factors_ = {k.removeprefix("ds."): np.asarray(v) for k, v in arrays.items() if k.startswith("ds.")}
        self.rank_ = extra["rank"]
        self.validation_scores_ = extra["validation_scores"]
