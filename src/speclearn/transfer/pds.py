"""Piecewise direct standardisation (PDS), the classical local calibration-transfer baseline.

The secondary spectra are resampled onto the primary axis where the two ranges overlap; every
primary channel there is a ridge regression on a window of 2w+1 neighbouring resampled secondary
channels (w tuned on validation), which absorbs small wavelength shifts and resolution changes.
Primary channels outside the secondary's range have no local counterpart: they are predicted by
low-rank direct standardisation from the whole secondary spectrum (see `ds`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.preprocessing import Resampler
from speclearn.transfer.base import TransferModel
from speclearn.transfer.ds import RANK_GRID, apply_ds, low_rank_ds, tune_rank

HALF_WIDTH_GRID = (1, 2, 4, 8)
CHANNEL_BLOCK = 128


def _windows(R: np.ndarray, half_width: int) -> np.ndarray:
    """(n, channels, 2w+1) read-only view of the windows around every channel (edges repeated)."""
    return sliding_window_view(np.pad(R, ((0, 0), (half_width, half_width)), mode="edge"), 2 * half_width + 1, axis=1)


def fit_windows(R: np.ndarray, Y: np.ndarray, half_width: int, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ridge coefficients (channels, 2w+1) and intercepts mapping windows of `R` to `Y`."""
    windows, d = _windows(R, half_width), 2 * half_width + 1
    coef, intercept = np.empty((Y.shape[1], d)), np.empty(Y.shape[1])
    for start in range(0, Y.shape[1], CHANNEL_BLOCK):
        block = slice(start, start + CHANNEL_BLOCK)
        W, y = windows[:, block, :], Y[:, block]
        w_mean, y_mean = W.mean(axis=0), y.mean(axis=0)
        Wc = W - w_mean
        gram = np.einsum("nbi,nbj->bij", Wc, Wc)
        gram += ridge * np.trace(gram, axis1=1, axis2=2)[:, None, None] / d * np.eye(d) + 1e-12 * np.eye(d)
        coef[block] = np.linalg.solve(gram, np.einsum("nbi,nb->bi", Wc, y - y_mean)[..., None])[..., 0]
        intercept[block] = y_mean - np.einsum("bi,bi->b", w_mean, coef[block])
    return coef, intercept


def apply_windows(R: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    windows = _windows(R, (coef.shape[1] - 1) // 2)
    out = np.empty((len(R), coef.shape[0]))
    for start in range(0, coef.shape[0], CHANNEL_BLOCK):
        block = slice(start, start + CHANNEL_BLOCK)
        out[:, block] = np.einsum("nbi,bi->nb", windows[:, block, :], coef[block]) + intercept[block]
    return out


def overlap_mask(primary_axis: dict, secondary_axis: dict) -> np.ndarray:
    """Mask of primary channels inside the secondary range."""
    primary, secondary = (np.asarray(axis["values"], float) for axis in (primary_axis, secondary_axis))
    return (primary >= secondary.min()) & (primary <= secondary.max())


def overlap_layout(primary_axis: dict, secondary_axis: dict) -> tuple[np.ndarray, Resampler]:
    """Mask of primary channels inside the secondary range, and the resampler onto them."""
    primary = np.asarray(primary_axis["values"], float)
    secondary = np.asarray(secondary_axis["values"], float)
    inside = overlap_mask(primary_axis, secondary_axis)
    if inside.sum() < 2:
        raise InputError("PDS needs overlapping axes: the secondary range "
                         f"{secondary.min():g}..{secondary.max():g} covers fewer than 2 primary channels")
    return inside, Resampler(target_axis=primary[inside], axis=secondary).fit(np.zeros((1, secondary.size)))


class PDSTransfer(TransferModel):
    """Piecewise direct standardisation on the overlapping range, low-rank DS outside it."""

    method = "pds"
    min_pairs = 10

    def __init__(self, half_width: int | None = None, grid=HALF_WIDTH_GRID, ridge: float = 1e-3, rank_grid=RANK_GRID,
                 baseline_window: int = 100, baseline_sigma: float = 50.0, validation_fraction: float = 0.2,
                 seed: int = 0):
        store_params(self, locals())

    def _layout(self, name: str) -> tuple[np.ndarray, Resampler]:
        return overlap_layout(self.axis_, self.secondary_axes_[name])

    def _fit_scaled(self, Xs, Xp, Xs_val, Xp_val, *, name: str) -> None:
        Xs, Xp, Xs_val, Xp_val = (np.asarray(a, float) for a in (Xs, Xp, Xs_val, Xp_val))
        inside, resampler = self._layout(name)
        R, R_val = resampler.transform(Xs), resampler.transform(Xs_val)

        def errors(widths):
            return [self._validation_error(apply_windows(R_val, *fit_windows(R, Xp[:, inside], w, self.ridge)),
                                           Xp_val[:, inside], inside) for w in widths]

        candidates = [self.half_width] if self.half_width is not None else list(self.grid)
        self.half_width_, self.validation_scores_ = self._tune(candidates, errors)
        self.inside_ = inside
        Xs_all, Xp_all = np.vstack([Xs, Xs_val]), np.vstack([Xp, Xp_val])
        self.coef_, self.intercept_ = fit_windows(resampler.transform(Xs_all), Xp_all[:, inside],
                                                  self.half_width_, self.ridge)
        self.outside_factors_ = {}
        if (~inside).any():
            rank, _ = tune_rank(Xs, Xp[:, ~inside], Xs_val,
                                lambda p: self._validation_error(p, Xp_val[:, ~inside], ~inside), self.rank_grid)
            self.outside_factors_ = low_rank_ds(Xs_all, Xp_all[:, ~inside], rank)

    def _predict_scaled(self, Xs: np.ndarray, *, name: str) -> np.ndarray:
        _, resampler = self._layout(name)
        out = np.empty((len(Xs), self.inside_.size))
        out[:, self.inside_] = apply_windows(resampler.transform(np.asarray(Xs, float)), self.coef_, self.intercept_)
        if self.outside_factors_:
            out[:, ~self.inside_] = apply_ds(self.outside_factors_, Xs)
        return out

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
        arrays = {"pds.coef": self.coef_, "pds.intercept": self.intercept_, "pds.inside": self.inside_.astype(np.uint8),
                  **{f"ds.{k}": v for k, v in self.outside_factors_.items()}}
        return arrays, {}, {"half_width": self.half_width_, "validation_scores": self.validation_scores_}

    def _restore(self, arrays, estimators, extra) -> None:
        self.coef_, self.intercept_ = np.asarray(arrays["pds.coef"]), np.asarray(arrays["pds.intercept"])
        self.inside_ = np.asarray(arrays["pds.inside"]).astype(bool)
        self.outside_factors_ = {k.removeprefix("ds."): np.asarray(v) for k, v in arrays.items() if k.startswith("ds.")}
        self.half_width_ = extra["half_width"]
        self.validation_scores_ = extra["validation_scores"]
