"""Replicate-trained denoiser (Noise2Noise): predicts, from one replicate, the mean of the other
replicates of the same sample.

Replicates (LIBS shots, repeated scans, detector frames) are independent noisy copies of one signal,
so no clean spectrum is needed: the target's noise is independent of the input's and averages out of
the loss (Lehtinen et al. 2018). The model is a Savitzky-Golay smoother (window chosen by this loss)
plus a U-Net correction on variance-stabilised spectra (Poisson + read noise with an estimated
offset); early stopping watches groups held out of training, i.e. agreement on samples the network
never saw, and the correction is dropped if it never beats the smoother there. Groups with a single
spectrum carry no pair and are left out of training. What it cannot remove: a component common to
every replicate of a sample (a stationary offset, a multiplicative response), which is signal to it.
"""
from __future__ import annotations

import numpy as np
import torch

from speclearn.core.errors import InputError
from speclearn.denoise.stabilised import StabilisedDenoiser, smooth
from speclearn.models.selection import holdout


def mean_of_other_replicates(X: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(targets, mask): for each spectrum of a group of two or more, the mean of the group's others."""
    counts = np.bincount(codes)
    sums = np.zeros((counts.size, X.shape[1]))
    np.add.at(sums, codes, X)
    usable = counts[codes] >= 2
    targets = np.zeros_like(X)
    targets[usable] = (sums[codes[usable]] - X[usable]) / (counts[codes[usable]] - 1)[:, None]
    return targets, usable


def _rms(module, batch) -> torch.Tensor:
    """Mean over spectra of the RMS distance to the target: each spectrum counts alike, as in
    `replicate_disagreement`, however bright it is."""
    return torch.mean(torch.sqrt(torch.mean((module(batch[0]) - batch[1]) ** 2, dim=1) + 1e-12))


class ReplicateDenoiser(StabilisedDenoiser):
    """Savitzky-Golay + U-Net trained on replicates (Noise2Noise): needs groups of replicates, no clean spectra."""

    method = "noise2noise"
    needs_groups = True
    needs_clean = False

    def _window_loss(self, X: np.ndarray, window: int) -> float:
        return float(np.mean(np.sqrt(np.mean((smooth(X, window) - self.targets_) ** 2, axis=1))))

    def _fit(self, X, *, groups, clean) -> None:
        targets, usable = mean_of_other_replicates(X, groups)
        if usable.sum() < 4:
            raise InputError(f"noise2noise needs groups of at least 2 replicates; {int(usable.sum())} spectra "
                             "have a replicate")
        X, targets, groups = X[usable], targets[usable], groups[usable]
        self.targets_ = targets
        self._prepare(X, groups)
        del self.targets_
        inputs, target = self._inputs(X), torch.as_tensor(targets / self.scale_, dtype=torch.float32)
        fraction = self.validation_fraction if len(np.unique(groups)) >= 5 else 0.0  # held out: whole groups
        fit, val = (torch.as_tensor(rows) for rows in holdout(len(X), fraction, self.seed, groups=groups))
        self._train(_rms, [inputs[fit], target[fit]], [inputs[val], target[val]] if len(val) else None,
                    "noise2noise U-Net")
