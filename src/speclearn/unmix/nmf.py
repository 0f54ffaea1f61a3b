"""Plain NMF of the full-resolution cube (scikit-learn, multiplicative updates): the baseline PSNMF must beat."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.decomposition import NMF as SklearnNMF
from sklearn.exceptions import ConvergenceWarning

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.core.memory import read_rows
from speclearn.core.params import store_params
from speclearn.unmix._base import CubeUnmixer, as_cube, normalise_components

LOSSES = ("frobenius", "kullback-leibler")


def sklearn_nmf(matrix: np.ndarray, n_components: int, loss: str, max_iter: int,
                random_state: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(abundances (n, K) in counts, spectra (K, channels) of unit area) of `matrix` (n, channels)."""
    if loss not in LOSSES:
        raise InputError(f"unknown NMF loss {loss!r}; choose {' or '.join(LOSSES)}")
    nmf = SklearnNMF(n_components, solver="mu", beta_loss=loss, init="nndsvda", max_iter=max_iter,
                     tol=1e-5, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        maps = nmf.fit_transform(matrix)
    spectra, maps = normalise_components(nmf.components_, maps)
    return maps, spectra


class NMF(CubeUnmixer):
    """NMF of every pixel at full resolution; loss 'frobenius' (Gaussian) or 'kullback-leibler' (Poisson).

    Holds the whole cube in memory (it is the baseline, not the scalable path).
    """

    def __init__(self, n_components: int = 3, *, loss: str = "kullback-leibler", sum_to_one: bool = True,
                 max_iter: int = 1000, random_state: int | None = 0):
        store_params(self, locals())

    def fit(self, data: Spectra | Any, y: None = None) -> "NMF":
        cube = as_cube(data, self.n_components)
        ny, nx, n_channels = cube.shape
        matrix = read_rows(cube.data, 0, ny).reshape(-1, n_channels)
        maps, spectra = sklearn_nmf(matrix, self.n_components, self.loss, self.max_iter, self.random_state)
        return self._set_result(spectra, maps.reshape(ny, nx, -1), cube)
