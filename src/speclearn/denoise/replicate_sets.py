"""Real replicate sets the project can install: independent noisy copies of real signals, no clean data.

- `eds_replicates`: the two X-ray EDS spectra shipped with exspy (SEM, test material TM002; TEM,
  FePt nanoparticles), measured photon counts. A Poisson count split channel by channel into R parts
  (a multinomial with equal probabilities) gives R independent Poisson spectra of the same signal at
  1/R of the dose: exact replicates of the real measurement, with its real counting noise.
  Samples are energy windows of `width` channels (each a different part of a real spectrum).
- `gamma_replicates`: the same split of a real HPGe gamma spectrum (becquerel's kelp sample in
  tests/data/gamma, 8,192 channels), windows of `width` channels as samples.
- `fermentation_replicates`: chemotools' ATR-FTIR fermentation run (1,629 spectra, 1047 channels,
  one every ~1.2 min); `group_size` consecutive spectra form a pseudo-replicate group. The broth
  changes between them, so part of their disagreement is real chemistry, not noise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

GAMMA_FILE = Path(__file__).resolve().parents[3] / "tests" / "data" / "gamma" / "Mendocino_07-10-13_Acq-10-10-13.Spe"


def split_counts(counts: np.ndarray, n_replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(n_replicates, channels): counts split at random into independent Poisson parts of equal dose."""
    counts = np.asarray(np.round(counts), dtype=np.int64)
    if counts.min() < 0:
        raise ValueError("counts must be non-negative")
    return rng.multinomial(counts, np.full(n_replicates, 1.0 / n_replicates)).T.astype(float)


def windowed_replicates(spectra: list[np.ndarray], n_replicates: int, width: int, seed: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(X, group codes): every spectrum split into replicates, cut into windows of `width` channels."""
    rng = np.random.default_rng(seed)
    blocks, codes = [], []
    for counts in spectra:
        parts = split_counts(counts, n_replicates, rng)
        for start in range(0, parts.shape[1] - width + 1, width):
            codes += [len(blocks)] * n_replicates
            blocks.append(parts[:, start:start + width])
    return np.concatenate(blocks), np.asarray(codes)


def eds_replicates(n_replicates: int = 8, width: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from exspy.data import EDS_SEM_TM002, EDS_TEM_FePt_nanoparticles

    spectra = [np.asarray(load().data, dtype=float) for load in (EDS_SEM_TM002, EDS_TEM_FePt_nanoparticles)]
    return windowed_replicates(spectra, n_replicates, width, seed)


def gamma_replicates(n_replicates: int = 8, width: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from speclearn.io.gamma_formats import read_spe

    return windowed_replicates([read_spe(GAMMA_FILE).values()[0]], n_replicates, width, seed)


def fermentation_replicates(group_size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    from chemotools.datasets import load_fermentation_test

    X = load_fermentation_test()[0].to_numpy(dtype=float)
    n = len(X) // group_size * group_size
    return X[:n], np.arange(n) // group_size
