"""What every unmixing estimator shares: cube checks, row-block streaming and the fixed-spectra KL solver.

A cube is (y, x, channels) of counts, numpy or dask (Zarr/HDF5 opened lazily). Big cubes are never
loaded whole: they are read in bands of rows (`core.memory.iter_blocks`). With the component spectra W
(K, channels) fixed, the Poisson (KL) fit of the abundances is independent per pixel, so it
streams over bands and memory stays flat. Only non-zero counts enter the multiplicative update
(a sparse matrix), which makes low-dose maps cheap. Bands are sized so that the solver's
working arrays stay within `block_bytes` (64 MB by default) whatever the map size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator

from speclearn.core.errors import InputError
from speclearn.core.memory import iter_blocks as iter_row_blocks
from speclearn.core.spectra import Spectra, is_dask

EPS = 1e-12
BLOCK_BYTES = 64 * 2**20


@dataclass
class Cube:
    """A validated (y, x, channels) cube plus what we learnt in the validating pass."""

    data: Any
    source: str | None
    axis: dict | None
    total_counts: float

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def n_pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def mean_counts(self) -> float:
        return self.total_counts / max(self.n_pixels, 1)


def rows_per_block(nx: int, n_channels: int, block_bytes: int = BLOCK_BYTES, multiple: int = 1,
                   copies: int = 1) -> int:
    """Rows per band so that `copies` float64 arrays of the band's size fit in `block_bytes`."""
    rows = max(1, block_bytes // max(nx * n_channels * 8 * copies, 1))
    return max(multiple, rows // multiple * multiple)


def solver_copies(n_components: int) -> int:
    """Worst-case band-sized float64 arrays the KL solver holds (all counts non-zero): the band, its
    sparse copy and index arrays, and the gathered spectra and abundances (K each)."""
    return 4 + 3 * n_components


def progress_bar(enabled: bool):
    from speclearn.progress import bar
    return bar(enabled=enabled)


def as_cube(data: Spectra | Any, n_components: int | None = None, *, block_bytes: int = BLOCK_BYTES) -> Cube:
    """Validate a spectrum image in one streamed pass: 3-D, finite, non-negative, K feasible."""
    if isinstance(data, Spectra):
        array, source, axis = data.intensity, data.source, data.axis_spec()
    else:
        array, source, axis = (data if is_dask(data) else np.asarray(data)), None, None
    if array.ndim != 3:
        raise InputError(f"the cube must be 3-D (y, x, channels), got {array.ndim}-D shape {tuple(array.shape)}",
                         file=source)
    ny, nx, n_channels = (int(n) for n in array.shape)
    if min(ny, nx, n_channels) < 1:
        raise InputError(f"the cube is empty, shape {tuple(array.shape)}", file=source)
    if n_components is not None:
        if n_components < 1:
            raise InputError(f"the number of components must be >= 1, got {n_components}", file=source)
        if n_components > n_channels:
            raise InputError(f"{n_components} components but only {n_channels} channels", file=source)
        if n_components > ny * nx:
            raise InputError(f"{n_components} components but only {ny * nx} pixels", file=source)
    total = 0.0
    for start, _, _, band in iter_row_blocks(array, rows_per_block(nx, n_channels, block_bytes)):
        bad = ~np.isfinite(band)
        for mask, what in ((bad, "NaN or infinite value"), (~bad & (band < 0), "negative counts")):
            if mask.any():
                y, x, c = np.argwhere(mask)[0]
                raise InputError(f"{what} ({band[y, x, c]:g}) at pixel y={start + y}, x={x}",
                                 file=source, column=f"channel {c}")
        total += float(band.sum())
    if total <= 0:
        raise InputError("the cube holds no counts", file=source)
    return Cube(array, source, axis, total)


def normalise_components(components: np.ndarray, counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Spectra scaled to unit area; the matching abundances (last axis K) take the scale."""
    scale = np.maximum(components.sum(axis=1), EPS)
    return components / scale[:, None], None if counts is None else counts * scale


def fractions(counts: np.ndarray) -> np.ndarray:
    """(..., K) counts per component -> fractions summing to one (uniform where a pixel has no counts)."""
    total = counts.sum(axis=-1, keepdims=True)
    k = counts.shape[-1]
    return np.where(total > 0, counts / np.where(total > 0, total, 1), 1.0 / k)


def _laplacian_terms(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of 4-neighbours, neighbour count) for (rows, nx, K) abundances."""
    total = np.zeros_like(a)
    degree = np.zeros(a.shape[:2] + (1,))
    for axis in (0, 1):
        for shift in (1, -1):
            rolled = np.roll(a, shift, axis=axis)
            valid = np.ones(a.shape[:2] + (1,))
            edge = [slice(None)] * 2
            edge[axis] = 0 if shift == 1 else -1
            valid[tuple(edge)] = 0
            total += rolled * valid
            degree += valid
    return total, degree


def kl_abundances(counts: np.ndarray, components: np.ndarray, *, initial: np.ndarray | None = None,
                  max_iter: int = 1000, tol: float = 1e-3, smoothness: float = 0.0,
                  scale: float | None = None) -> np.ndarray:
    """Poisson/KL fit of abundances (rows, nx, K) of a band (rows, nx, C) with the spectra fixed.

    Multiplicative updates A <- A (R W^T) / (1 W^T), R = X / (A W) evaluated at non-zero counts only,
    until every pixel's abundances move by less than `tol` x its counts over 10 iterations.
    `smoothness` adds a quadratic penalty between 4-neighbours (dimensionless: it is divided by
    `scale`, the mean counts per pixel), via the usual split of its gradient into the update.
    """
    rows, nx, n_channels = counts.shape
    k = components.shape[0]
    flat = sparse.csr_matrix(counts.reshape(-1, n_channels))
    flat.sum_duplicates()
    pixel_of = np.repeat(np.arange(flat.shape[0]), np.diff(flat.indptr))
    wt = np.ascontiguousarray(components.T)
    w_rows, w_sum = wt[flat.indices], components.sum(axis=1)
    totals = np.asarray(flat.sum(axis=1)).ravel()
    a = (np.maximum(initial.reshape(-1, k), EPS) if initial is not None
         else np.repeat(totals[:, None] / k, k, axis=1) + EPS)
    strength = smoothness / max(scale or max(totals.mean(), EPS), EPS)
    ratio = flat.copy()
    for iteration in range(max_iter):
        model = np.einsum("ij,ij->i", np.take(a, pixel_of, axis=0), w_rows)
        np.divide(flat.data, np.maximum(model, EPS), out=ratio.data)
        numerator, denominator = ratio @ wt, np.broadcast_to(w_sum, a.shape)
        if strength > 0:
            neighbours, degree = _laplacian_terms(a.reshape(rows, nx, k))
            numerator = numerator + strength * neighbours.reshape(-1, k)
            denominator = denominator + strength * (degree * a.reshape(rows, nx, k)).reshape(-1, k)
        updated = a * numerator / denominator
        if iteration % 10 == 0:
            checkpoint = a
        if iteration % 10 == 9 and (np.abs(updated - checkpoint).sum(axis=1) <= tol * np.maximum(totals, 1)).all():
            a = updated
            break
        a = updated
    a[totals == 0] = 0.0
    return a.reshape(rows, nx, k)


def kl_spectra_step(counts: np.ndarray, abundances: np.ndarray, components: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A band's share of the KL update of the spectra: (A^T R)^T numerator (K, C) and A^T 1 (K,)."""
    n_channels = counts.shape[-1]
    k = components.shape[0]
    flat = sparse.csr_matrix(counts.reshape(-1, n_channels))
    a = abundances.reshape(-1, k)
    pixel_of = np.repeat(np.arange(flat.shape[0]), np.diff(flat.indptr))
    model = np.einsum("ij,ij->i", a[pixel_of], components.T[flat.indices])
    ratio = sparse.csr_matrix((flat.data / np.maximum(model, EPS), flat.indices, flat.indptr), shape=flat.shape)
    return np.asarray((ratio.T @ a).T), a.sum(axis=0)


def stream_abundances(cube: Cube, components: np.ndarray, *, initial: np.ndarray | None = None,
                      max_iter: int = 1000, smoothness: float = 0.0, block_bytes: int = BLOCK_BYTES,
                      progress: bool = False, description: str = "abundances") -> np.ndarray:
    """Counts per component (y, x, K) of the whole cube with fixed spectra, one band of rows at a time."""
    ny, nx, n_channels = cube.shape
    k = components.shape[0]
    rows = rows_per_block(nx, n_channels, block_bytes, copies=solver_copies(k))
    halo = 4 if smoothness > 0 else 0
    out = np.zeros((ny, nx, k))
    with progress_bar(progress) as bar:
        task = bar.add_task(description, total=-(-ny // rows))
        for start, stop, offset, band in iter_row_blocks(cube.data, rows, halo):
            low = start - offset
            init = None if initial is None else initial[low:low + band.shape[0]]
            solved = kl_abundances(band, components, initial=init, max_iter=max_iter, smoothness=smoothness,
                                   scale=cube.mean_counts)
            out[start:stop] = solved[offset:offset + stop - start]
            bar.advance(task)
    return out


class CubeUnmixer(BaseEstimator):
    """Base of the unmixing estimators: fit(cube) sets `components_` (K, channels, unit area),
    `counts_` (K, y, x: counts attributed to each component) and `abundances_` (K, y, x: fractions
    summing to one per pixel when `sum_to_one`, else counts). `transform` fits new maps with the
    learnt spectra fixed (Poisson/KL, streamed)."""

    n_components: int
    sum_to_one: bool = True

    def _set_result(self, components: np.ndarray, counts_yxk: np.ndarray, cube: Cube) -> "CubeUnmixer":
        self.components_ = components
        self.counts_ = np.moveaxis(counts_yxk, -1, 0)
        self.abundances_ = np.moveaxis(fractions(counts_yxk), -1, 0) if self.sum_to_one else self.counts_
        self.axis_ = cube.axis
        return self

    def transform(self, data: Spectra | Any, *, max_iter: int = 1000, progress: bool = False) -> np.ndarray:
        """Abundances (K, y, x) of a new cube on the same axis, with the fitted spectra fixed."""
        cube = as_cube(data, self.components_.shape[0])
        if cube.shape[-1] != self.components_.shape[1]:
            raise InputError(f"the cube has {cube.shape[-1]} channels, the components {self.components_.shape[1]}",
                             file=cube.source)
        counts = stream_abundances(cube, self.components_, max_iter=max_iter, progress=progress)
        return np.moveaxis(fractions(counts) if self.sum_to_one else counts, -1, 0)
