"""How many components a spectrum image holds, when the user does not say (`unmix` without --components).

Counts are weighted as in Keenan & Kotula's Poisson-weighted PCA (each pixel and channel divided by the
square root of its expected level, so noise is about even everywhere), centred, and the eigenvalues of
their covariance computed. Components above the noise stand out as a step down in that spectrum: the
number of components is 1 (the mean) plus the position of the last step larger than `GAP` among the
first `max_components` eigenvalues. A heuristic, measured on the EDX simulator (tests/test_unmix.py).
"""
from __future__ import annotations

import numpy as np

from speclearn.core.spectra import Spectra

GAP = 1.5


def estimate_components(spectra: Spectra, *, max_components: int = 12, max_pixels: int = 20_000,
                        seed: int = 0) -> tuple[int, np.ndarray]:
    """(number of components, the leading eigenvalues of the weighted covariance)."""
    flat = spectra.flat()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(flat.shape[0], max_pixels, replace=False)) if flat.shape[0] > max_pixels else None
    X = np.asarray(flat[rows] if rows is not None else flat, dtype=float)
    if spectra.is_lazy:
        X = np.asarray(X.compute() if hasattr(X, "compute") else X)
    X = X[:, X.mean(axis=0) > 0]
    pixel = X.sum(axis=1, keepdims=True)
    pixel = np.maximum(pixel / max(pixel.mean(), 1e-12), 1e-12)
    weighted = X / np.sqrt(pixel * X.mean(axis=0, keepdims=True))
    weighted -= weighted.mean(axis=0)
    eigenvalues = np.linalg.svd(weighted, compute_uv=False)[: max_components + 1] ** 2 / len(weighted)
    ratios = eigenvalues[:-1] / np.maximum(eigenvalues[1:], 1e-300)
    steps = np.flatnonzero(ratios > GAP)
    return max(2, int(steps[-1]) + 2 if steps.size else 2), eigenvalues
