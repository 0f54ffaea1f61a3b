"""Replicate-trained denoiser (Noise2Noise): the U-Net learns to predict, from one replicate, the mean
of the other replicates of the same sample.

Replicates (LIBS shots, repeated scans) are independent noisy copies of one signal, so no clean
spectrum is needed: the target's noise is independent of the input's and averages out of the loss
(Lehtinen et al. 2018). Groups with a single spectrum carry no pair and are left out of training.
"""
from __future__ import annotations

import numpy as np

from speclearn.core.errors import InputError
from speclearn.denoise.supervised import SupervisedDenoiser


def mean_of_other_replicates(X: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(targets, mask): for each spectrum of a group of two or more, the mean of the group's others."""
    counts = np.bincount(codes)
    sums = np.zeros((counts.size, X.shape[1]))
    np.add.at(sums, codes, X)
    usable = counts[codes] >= 2
    targets = np.zeros_like(X)
    targets[usable] = (sums[codes[usable]] - X[usable]) / (counts[codes[usable]] - 1)[:, None]
    return targets, usable


class ReplicateDenoiser(SupervisedDenoiser):
    """U-Net trained on replicate pairs (Noise2Noise): needs groups of replicates, no clean spectra."""

    method = "noise2noise"
    needs_groups = True
    needs_clean = False

    def _fit(self, X, *, groups, clean) -> None:
        targets, usable = mean_of_other_replicates(X, groups)
        if usable.sum() < 4:
            raise InputError(f"noise2noise needs groups of at least 2 replicates; {int(usable.sum())} spectra "
                             "have a replicate")
        super()._fit(X[usable], groups=None, clean=targets[usable])
