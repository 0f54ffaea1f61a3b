"""PSNMF: NMF pan-sharpening of a noisy spectrum image (Chen, Alexander, Hebert, Nano Lett. 2024).

1. Bin b x b pixels (sums of counts: still Poisson, b^2 times the signal) and factorise the binned
   cube with KL (Poisson) NMF: clean spectra, blurry maps.
2. Factorise the full-resolution cube starting from step 1's spectra and the upsampled binned maps.
   With `refine_spectra=False` (default) the spectra stay fixed and each pixel is an independent
   Poisson fit, streamed over bands of rows; with `refine_spectra=True` the spectra are also updated
   (KL multiplicative updates whose sums accumulate band by band, so memory stays flat too).
3. Combine: spectra from step 1 (high fidelity), maps from step 2 (full resolution).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.decomposition import NMF as SklearnNMF
from sklearn.exceptions import ConvergenceWarning

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra
from speclearn.unmix._base import (BLOCK_BYTES, Cube, CubeUnmixer, as_cube, iter_row_blocks, kl_abundances,
                                   kl_spectra_step, normalise_components, progress_bar, rows_per_block,
                                   solver_copies, stream_abundances)


def bin_cube(cube: Cube, factor: int, *, block_bytes: int = BLOCK_BYTES) -> np.ndarray:
    """Sum counts over factor x factor pixels (a trailing partial bin is dropped), streamed by rows."""
    ny, nx, n_channels = cube.shape
    nyb, nxb = ny // factor, nx // factor
    binned = np.zeros((nyb, nxb, n_channels))
    rows = rows_per_block(nx, n_channels, block_bytes, multiple=factor)
    for start, _, _, band in iter_row_blocks(cube.data[: nyb * factor], rows):
        band = band[:, : nxb * factor]
        binned[start // factor: start // factor + band.shape[0] // factor] = \
            band.reshape(band.shape[0] // factor, factor, nxb, factor, n_channels).sum(axis=(1, 3))
    return binned


def auto_bin_factor(mean_counts: float, ny: int, nx: int, n_components: int, target_counts: float = 640.0) -> int:
    """Smallest b giving >= `target_counts` mean counts per binned pixel, keeping >= max(16, 4K) binned pixels."""
    b = max(1, int(np.ceil(np.sqrt(target_counts / max(mean_counts, 1e-12)))))
    while b > 1 and (ny // b) * (nx // b) < max(16, 4 * n_components):
        b -= 1
    return b


def upsample(maps: np.ndarray, factor: int, ny: int, nx: int) -> np.ndarray:
    """(nyb, nxb, K) binned maps -> (ny, nx, K) by repetition (edges continue the last bin), per pixel."""
    iy = np.minimum(np.arange(ny) // factor, maps.shape[0] - 1)
    ix = np.minimum(np.arange(nx) // factor, maps.shape[1] - 1)
    return maps[iy][:, ix] / factor**2


class PSNMF(CubeUnmixer):
    """NMF pan-sharpening with Poisson (KL) NMF.

    n_components: K phases. bin_factor: b (step 1 bins b x b pixels), or "auto": the smallest b giving
    ~640 mean counts per binned pixel (see `auto_bin_factor`; `bin_factor_` is the one used). refine_spectra: update the
    spectra in step 2 (maps only are kept from it; spectra come from step 1). sum_to_one:
    `abundances_` as fractions of counts per pixel. smoothness: dimensionless spatial penalty on the
    full-resolution maps (0 = off). max_iter_binned / max_iter: iterations of steps 1 and 2; tol:
    scikit-learn's stopping tolerance for step 1.
    """

    def __init__(self, n_components: int = 3, *, bin_factor: int | str = 4, refine_spectra: bool = False,
                 sum_to_one: bool = True, smoothness: float = 0.0, max_iter_binned: int = 1000,
                 max_iter: int = 1000, refine_passes: int = 20, tol: float = 1e-7, block_bytes: int = BLOCK_BYTES,
                 random_state: int | None = 0, progress: bool = False):
        store_params(self, locals())

    def fit(self, data: Spectra | Any, y: None = None) -> "PSNMF":
        cube = as_cube(data, self.n_components, block_bytes=self.block_bytes)
        ny, nx, _ = cube.shape
        if self.bin_factor == "auto":
            b = auto_bin_factor(cube.mean_counts, ny, nx, self.n_components)
        elif isinstance(self.bin_factor, (int, np.integer)):
            b = int(self.bin_factor)
        else:
            raise InputError(f"bin factor must be a positive integer or 'auto', got {self.bin_factor!r}")
        self.bin_factor_ = b
        if b < 1 or ny // b < 1 or nx // b < 1:
            raise InputError(f"bin factor {b} does not fit a {ny} x {nx} map", file=cube.source)
        if (ny // b) * (nx // b) < self.n_components:
            raise InputError(f"{self.n_components} components but only {(ny // b) * (nx // b)} binned pixels; "
                             "use a smaller --bin", file=cube.source)
        binned = bin_cube(cube, b, block_bytes=self.block_bytes)
        nmf = SklearnNMF(self.n_components, solver="mu", beta_loss="kullback-leibler", init="nndsvda",
                         max_iter=self.max_iter_binned, tol=self.tol, random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            binned_maps = nmf.fit_transform(binned.reshape(-1, binned.shape[-1]))
        spectra, binned_maps = normalise_components(nmf.components_, binned_maps)
        self.binned_spectra_ = spectra
        self.binned_abundances_ = np.moveaxis(binned_maps.reshape(ny // b, nx // b, -1), -1, 0)
        initial = upsample(binned_maps.reshape(ny // b, nx // b, -1), b, ny, nx)
        if self.refine_spectra:
            counts, self.refined_spectra_ = self._refine(cube, spectra, initial)
        else:
            counts = stream_abundances(cube, spectra, initial=initial, max_iter=self.max_iter,
                                       smoothness=self.smoothness, block_bytes=self.block_bytes,
                                       progress=self.progress, description="PSNMF step 2")
        return self._set_result(spectra, counts, cube)

    def _refine(self, cube: Cube, spectra: np.ndarray, initial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alternate a few abundance updates per band with one spectra update per pass over the cube."""
        ny, nx, n_channels = cube.shape
        rows = rows_per_block(nx, n_channels, self.block_bytes, copies=solver_copies(self.n_components))
        counts, components = initial.copy(), spectra.copy()
        with progress_bar(self.progress) as bar:
            task = bar.add_task("PSNMF step 2 (refining spectra)", total=self.refine_passes)
            for _ in range(self.refine_passes):
                numerator, weight = np.zeros_like(components), np.zeros(components.shape[0])
                for start, stop, _, band in iter_row_blocks(cube.data, rows):
                    counts[start:stop] = kl_abundances(band, components, initial=counts[start:stop], max_iter=10,
                                                       smoothness=self.smoothness, scale=cube.mean_counts)
                    part_numerator, part_weight = kl_spectra_step(band, counts[start:stop], components)
                    numerator += part_numerator
                    weight += part_weight
                components = components * numerator / np.maximum(weight[:, None], 1e-12)
                components, counts = normalise_components(components, counts)
                bar.advance(task)
        counts = stream_abundances(cube, components, initial=counts, max_iter=self.max_iter,
                                   smoothness=self.smoothness, block_bytes=self.block_bytes)
        return counts, components
