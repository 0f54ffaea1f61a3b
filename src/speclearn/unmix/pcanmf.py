"""PCA denoising followed by NMF: the classical route for noisy spectrum images.

PCA runs on the Poisson-normalised cube (Keenan & Kotula: counts divided by sqrt(pixel total x
channel total), as HyperSpy's `normalize_poissonian_noise`), keeps `n_pca` components, and the
de-normalised reconstruction, clipped at zero, is factorised by NMF.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from speclearn.core.spectra import Spectra
from speclearn.core.memory import read_rows
from speclearn.core.params import store_params
from speclearn.unmix._base import EPS, CubeUnmixer, as_cube
from speclearn.unmix.nmf import sklearn_nmf


def poisson_pca_denoise(matrix: np.ndarray, n_pca: int, random_state: int | None = 0) -> np.ndarray:
    """Rank-`n_pca` reconstruction of (pixels, channels) counts after Poisson normalisation, >= 0."""
    pixel_weight = np.sqrt(np.maximum(matrix.sum(axis=1, keepdims=True), EPS))
    channel_weight = np.sqrt(np.maximum(matrix.sum(axis=0, keepdims=True), EPS))
    scale = pixel_weight * channel_weight / np.sqrt(max(matrix.sum(), EPS))
    pca = PCA(n_components=min(n_pca, *matrix.shape), svd_solver="randomized", random_state=random_state)
    scores = pca.fit_transform(matrix / scale)
    return np.clip(pca.inverse_transform(scores) * scale, 0, None)


class PCANMF(CubeUnmixer):
    """Poisson-normalised PCA (n_pca components, default K) then NMF (loss as in `NMF`)."""

    def __init__(self, n_components: int = 3, *, n_pca: int | None = None, loss: str = "frobenius",
                 sum_to_one: bool = True, max_iter: int = 1000, random_state: int | None = 0):
        store_params(self, locals())

    def fit(self, data: Spectra | Any, y: None = None) -> "PCANMF":
        cube = as_cube(data, self.n_components)
        ny, nx, n_channels = cube.shape
        matrix = read_rows(cube.data, 0, ny).reshape(-1, n_channels)
        denoised = poisson_pca_denoise(matrix, self.n_pca or self.n_components, self.random_state)
        maps, spectra = sklearn_nmf(denoised, self.n_components, self.loss, self.max_iter, self.random_state)
        return self._set_result(spectra, maps.reshape(ny, nx, -1), cube)
