"""Simulated spectra for pretraining the CNN: random smooth band mixtures on the target's channels.

Choice (documented in the benchmark output): the real classes are unknown to the simulator, so it
does not imitate them. It generates a pretext task with the same number of channels as the target
data: `n_classes` synthetic "materials", each a mixture of Lorentzian-Gaussian bands. Materials
come in families that share most bands (like products of one kind) and differ by a few band
intensities, shifts and extra bands, so the network has to learn band-level features, not just
the overall shape. Within a class, spectra vary by band intensity and position jitter, a smooth
baseline, an overall scale and noise. Band widths span 0.2 % to 3 % of the channel range.
"""
from __future__ import annotations

import numpy as np


def _bands(x: np.ndarray, centres: np.ndarray, widths: np.ndarray, heights: np.ndarray,
           lorentz_fraction: float = 0.5) -> np.ndarray:
    """(n, channels) sum of pseudo-Voigt bands; centres/widths/heights are (n, bands)."""
    d = (x[None, None, :] - centres[:, :, None]) / widths[:, :, None]
    shape = lorentz_fraction / (1 + d ** 2) + (1 - lorentz_fraction) * np.exp(-0.5 * d ** 2)
    return np.einsum("nb,nbc->nc", heights, shape)


def simulate_band_classes(n_channels: int, *, n_classes: int = 24, n_per_class: int = 40, n_families: int = 4,
                          bands_per_family: int = 12, noise: float = 0.01,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(spectra (n_classes * n_per_class, n_channels), class codes) of the pretext task."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n_channels)
    family_centres = rng.uniform(0.02, 0.98, (n_families, bands_per_family))
    family_widths = np.exp(rng.uniform(np.log(0.002), np.log(0.03), (n_families, bands_per_family)))
    family_heights = rng.lognormal(0.0, 0.7, (n_families, bands_per_family))
    spectra, codes = [], []
    for k in range(n_classes):
        family = k % n_families
        centres = family_centres[family] + rng.normal(0, 0.003, bands_per_family)
        widths = family_widths[family] * rng.lognormal(0, 0.1, bands_per_family)
        heights = family_heights[family] * rng.lognormal(0, 0.4, bands_per_family)
        extra = rng.integers(1, 4)
        centres = np.concatenate([centres, rng.uniform(0.02, 0.98, extra)])
        widths = np.concatenate([widths, np.exp(rng.uniform(np.log(0.002), np.log(0.03), extra))])
        heights = np.concatenate([heights, rng.lognormal(-0.5, 0.5, extra)])
        n = n_per_class
        jitter_c = centres[None] + rng.normal(0, 0.15, (n, centres.size)) * widths[None]
        jitter_h = heights[None] * rng.lognormal(0, 0.15, (n, centres.size))
        signal = _bands(x, jitter_c, np.broadcast_to(widths, (n, widths.size)), jitter_h)
        baseline = np.polynomial.legendre.legvander(2 * x - 1, 3) @ rng.normal(0, 0.3, (4, n))
        scale = rng.lognormal(0, 0.3, (n, 1))
        spectrum = scale * (signal + baseline.T)
        spectrum += rng.normal(0, noise, spectrum.shape) * np.abs(spectrum).max(axis=1, keepdims=True)
        spectra.append(spectrum)
        codes.append(np.full(n, k))
    return np.concatenate(spectra), np.concatenate(codes)
