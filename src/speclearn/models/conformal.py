"""Split-conformal prediction intervals around any fitted quantifier.

Nonconformity scores are computed on calibration spectra the quantifier never saw; the interval at
level L is every concentration whose score is at most the ceil((n + 1) L)-th smallest calibration score
(finite-sample guarantee: coverage >= L for exchangeable data). Scores per target:

- absolute: |y - p|                          -> p -/+ q
- relative: |y - p| / (|p| + floor)          -> p -/+ q (|p| + floor)
- log:      |ln(y + floor) - ln(p+ + floor)| -> (p+ + floor) e^(-/+q) - floor   (p+ = max(p, 0))
- scaled:   |y - p| / sigma                  -> p -/+ q sigma  (sigma from another estimator)

floor = 1 % of the median positive calibration concentration (log-normal concentrations make absolute
scores give too-wide intervals at low and too-narrow ones at high levels; `relative` and `log` adapt).

`bins` > 1 (scaled score only) makes it Mondrian: calibration rows are split per target into equal
shares by the relative spread sigma / (|p| + floor), and each prediction takes the quantile of its own
share, so that coverage holds for precise and imprecise predictions alike (with one pool, spreads
that overstate the error at low SNR widen every interval there and narrow the others).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from speclearn.core.errors import InputError

SCORES = ("absolute", "relative", "log", "scaled")


def check_level(level: float) -> float:
    """A nominal coverage strictly between 0 and 1."""
    if not 0 < level < 1:
        raise InputError(f"interval level must be between 0 and 1 (e.g. 0.9), got {level:g}")
    return float(level)


def conformal_quantile(sorted_scores: np.ndarray, level: float) -> np.ndarray:
    """Per column, the ceil((n + 1) level)-th smallest score (inf when n is too small for the level)."""
    n = sorted_scores.shape[0]
    rank = math.ceil((n + 1) * level)
    if rank > n:
        return np.full(sorted_scores.shape[1], np.inf)
    return sorted_scores[rank - 1]


class SplitConformal:
    """Calibrated intervals from held-out residuals; `calibrate` then `interval`."""

    name = "conformal"

    def __init__(self, score: str = "log", bins: int = 1):
        self.score = score
        self.bins = bins

    def _scores(self, y: np.ndarray, p: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
        if self.score == "absolute":
            return np.abs(y - p)
        if self.score == "relative":
            return np.abs(y - p) / (np.abs(p) + self.floor_)
        if self.score == "log":
            return np.abs(np.log(np.maximum(y, 0) + self.floor_) - np.log(np.maximum(p, 0) + self.floor_))
        return np.abs(y - p) / np.maximum(sigma, 1e-12 * self.floor_)

    def calibrate(self, y: np.ndarray, p: np.ndarray, sigma: np.ndarray | None = None) -> "SplitConformal":
        """y, p (and sigma for score='scaled'): (n_calibration, targets) truths, predictions, spreads."""
        y, p = np.asarray(y, float), np.asarray(p, float)
        if self.score not in SCORES:
            raise InputError(f"unknown conformal score {self.score!r}; choose one of {', '.join(SCORES)}")
        if self.score == "scaled" and sigma is None:
            raise InputError("the 'scaled' conformal score needs a spread estimate (sigma)")
        if len(y) < 2:
            raise InputError(f"{len(y)} calibration spectra; at least 2 are needed")
        if self.bins > 1 and self.score != "scaled":
            raise InputError("Mondrian bins need the 'scaled' score (they split by the relative spread)")
        floors = [0.01 * np.median(c[c > 0]) if (c > 0).any() else 1.0 for c in y.T]
        self.floor_ = np.asarray(floors)
        scores = self._scores(y, p, sigma)
        if self.bins > 1:
            spread = self._spread(p, sigma)
            self.edges_ = np.quantile(spread, np.linspace(0, 1, self.bins + 1)[1:-1], axis=0)
            bin_of = self._bin(spread)
            order = np.column_stack([np.lexsort((scores[:, k], bin_of[:, k])) for k in range(scores.shape[1])])
            self.bin_of_ = np.take_along_axis(bin_of, order, axis=0)  # sorted by share, then score
            self.scores_ = np.take_along_axis(scores, order, axis=0)
        else:
            self.scores_ = np.sort(scores, axis=0)
        return self

    def _spread(self, p: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        return np.asarray(sigma, float) / (np.abs(np.asarray(p, float)) + self.floor_)

    def _bin(self, spread: np.ndarray) -> np.ndarray:
        """Share index of each relative spread, per target column."""
        return np.sum(spread[None] > self.edges_[:, None, :], axis=0)

    def _quantiles(self, level: float, p: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
        """The score quantile for each prediction (one per column, or per Mondrian share)."""
        if self.bins <= 1:
            return conformal_quantile(self.scores_, level)[None, :]
        # scores_ are sorted by share, then score: each share's scores are one run per column
        counts = np.stack([np.sum(self.bin_of_ == share, axis=0) for share in range(self.bins)])
        starts = np.cumsum(counts, axis=0) - counts
        rank = np.ceil((counts + 1) * level).astype(int)
        rows = np.clip(starts + rank - 1, 0, len(self.scores_) - 1)
        table = np.where(rank <= counts, np.take_along_axis(self.scores_, rows, axis=0), np.inf)
        wanted = self._bin(self._spread(p, sigma))
        return np.take_along_axis(table, wanted, axis=0)

    def interval(self, p: np.ndarray, level: float, sigma: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) arrays shaped like the predictions p."""
        p = np.asarray(p, float)
        q = self._quantiles(check_level(level), p, sigma)
        if self.score == "absolute":
            half = q
        elif self.score == "relative":
            half = q * (np.abs(p) + self.floor_)
        elif self.score == "scaled":
            half = q * np.maximum(sigma, 1e-12 * self.floor_)
        else:
            base = np.maximum(p, 0) + self.floor_
            with np.errstate(over="ignore", invalid="ignore"):  # a negative prediction stays inside
                return np.minimum(base * np.exp(-q) - self.floor_, p), base * np.exp(q) - self.floor_
        with np.errstate(invalid="ignore"):
            return p - half, p + half

    # --- persistence ----------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays = {"scores": self.scores_, "floor": self.floor_}
        if self.bins > 1:
            arrays |= {"bin_of": self.bin_of_, "edges": self.edges_}
        return {"score": self.score, "bins": self.bins, "n_calibration": int(self.scores_.shape[0])}, arrays

    @classmethod
    def restore(cls, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> "SplitConformal":
        out = cls(extra["score"], extra.get("bins", 1))
        out.scores_, out.floor_ = np.asarray(arrays["scores"]), np.asarray(arrays["floor"])
        if out.bins > 1:
            out.bin_of_, out.edges_ = np.asarray(arrays["bin_of"]), np.asarray(arrays["edges"])
        return out
