"""Replicate-trained denoiser (Noise2Noise): predicts, from one replicate, the mean of the other
replicates of the same sample.

Replicates (LIBS shots, repeated scans, detector frames) are independent noisy copies of one signal,
so no clean spectrum is needed: the target's noise is independent of the input's and averages out of
the loss (Lehtinen et al. 2018). The model is a Savitzky-Golay smoother (window chosen by this loss)
plus a U-Net correction, on variance-stabilised spectra (Poisson + read noise with an estimated
offset) or, `architecture="gated"`, on the intensities with a per-channel weight on the smoother
(see `stabilised`); "auto" trains both (each with half of `max_seconds`, if set) and keeps the one
with the lower loss on the validation groups. Early stopping watches groups held out of training,
i.e. agreement on samples the network never saw, and the correction is dropped if it never beats
the smoother there. Groups with a single spectrum carry no pair and are left out of training. What
it cannot remove: a component common to every replicate of a sample (a stationary offset, a
multiplicative response), which is signal to it.

`rebin` (default on) also trains on copies of the training replicates with adjacent channels summed
in pairs (still independent replicates, peaks half as many channels wide), so that peaks narrower than
any in training are not smoothed away; the smoothing window is then chosen on both resolutions.
Why: docs/notes/denoise_replicates.md.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from speclearn.core.errors import InputError
from speclearn.denoise.stabilised import StabilisedDenoiser, smooth
from speclearn.models.selection import holdout
from speclearn.models.training import evaluate


def mean_of_other_replicates(X: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(targets, mask): for each spectrum of a group of two or more, the mean of the group's others."""
    counts = np.bincount(codes)
    sums = np.zeros((counts.size, X.shape[1]))
    np.add.at(sums, codes, X)
    usable = counts[codes] >= 2
    targets = np.zeros_like(X)
    targets[usable] = (sums[codes[usable]] - X[usable]) / (counts[codes[usable]] - 1)[:, None]
    return targets, usable


def sum_channel_pairs(X: np.ndarray) -> np.ndarray:
    """Adjacent channels summed in pairs (an odd last channel dropped): the spectra at half the resolution."""
    n = X.shape[1] // 2 * 2
    return X[:, 0:n:2] + X[:, 1:n:2]


def _rms(module, batch) -> torch.Tensor:
    """Mean over spectra of the RMS distance to the target over the channels of weight 1: each
    spectrum counts alike, as in `replicate_disagreement`, however bright it is."""
    inputs, target, weight = batch
    squared = torch.sum(weight * (module(inputs) - target) ** 2, dim=1) / weight.sum(dim=1)
    return torch.mean(torch.sqrt(squared + 1e-12))


class ReplicateDenoiser(StabilisedDenoiser):
    """Savitzky-Golay + U-Net trained on replicates (Noise2Noise): needs groups of replicates, no clean spectra."""

    method = "noise2noise"
    needs_groups = True
    needs_clean = False
    architectures = ("stabilised", "gated")

    def __init__(self, width: int = 16, levels: int = 3, kernel_size: int = 5, noise_model: str = "auto",
                 epochs: int = 200, batch_size: int = 16, learning_rate: float = 1e-3, validation_fraction: float = 0.2,
                 patience: int = 30, max_seconds: float | None = None, seed: int = 0, device: str = "auto",
                 progress: bool = False, rebin: bool = True, architecture: str = "auto"):
        super().__init__(width=width, levels=levels, kernel_size=kernel_size, noise_model=noise_model, epochs=epochs,
                         batch_size=batch_size, learning_rate=learning_rate, validation_fraction=validation_fraction,
                         patience=patience, max_seconds=max_seconds, seed=seed, device=device, progress=progress)
        self.rebin = rebin
        self.architecture = architecture

    def _window_loss(self, X: np.ndarray, window: int) -> float:
        """The training loss of the smoother alone, on the binned copies too when they are trained on."""
        pairs = [(X, self.targets_)]
        if self._rebinned(X):
            pairs.append((sum_channel_pairs(X), sum_channel_pairs(self.targets_)))
        return float(np.mean(np.concatenate([np.sqrt(np.mean((smooth(x, window) - t) ** 2, axis=1))
                                             for x, t in pairs])))

    def _rebinned(self, X: np.ndarray) -> bool:
        return bool(self.rebin) and X.shape[1] >= 16

    def _fit(self, X, *, groups, clean) -> None:
        targets, usable = mean_of_other_replicates(X, groups)
        if usable.sum() < 4:
            raise InputError(f"noise2noise needs groups of at least 2 replicates; {int(usable.sum())} spectra "
                             "have a replicate")
        if self.architecture not in ("auto", *self.architectures):
            raise InputError(f"architecture must be 'auto', 'stabilised' or 'gated', got {self.architecture!r}")
        X, targets, groups = X[usable], targets[usable], groups[usable]
        self.targets_ = targets
        self._prepare(X, groups)
        del self.targets_
        data = self._tensors(X, targets)
        fraction = self.validation_fraction if len(np.unique(groups)) >= 5 else 0.0  # held out: whole groups
        fit, val = holdout(len(X), fraction, self.seed, groups=groups)
        fit_data = [t[torch.as_tensor(fit)] for t in data]
        if self._rebinned(X):  # validation stays on the measured resolution
            fit_data = [torch.cat(pair) for pair in zip(fit_data, self._tensors(X[fit], targets[fit], binned=True))]
        val_data = [t[torch.as_tensor(val)] for t in data] if len(val) else None
        names = self.architectures if self.architecture == "auto" else (self.architecture,)
        if val_data is None:
            names = names[:1]  # nothing to choose by
        fitted = {}
        for name in names:
            self._new_module(gated=name == "gated")
            self._train(_rms, fit_data, val_data, f"noise2noise U-Net ({name})", share=len(names))
            loss = evaluate(self.module_, _rms, val_data, self.batch_size, torch.device("cpu")) if val_data else 0.0
            fitted[name] = (loss, self.module_, self.history_)
        best = min(fitted, key=lambda name: fitted[name][0])
        _, self.module_, self.history_ = fitted[best]
        self.history_["architecture"] = best
        self.history_["architecture_val_loss"] = {name: fitted[name][0] for name in fitted}

    def _tensors(self, X: np.ndarray, targets: np.ndarray, *, binned: bool = False) -> list[torch.Tensor]:
        """[inputs, targets, channel weights]; `binned`: channel pairs summed, padded back to the width
        (edge values, weight 0)."""
        if not binned:
            return [self._inputs(X), torch.as_tensor(targets / self.scale_, dtype=torch.float32),
                    torch.ones(X.shape, dtype=torch.float32)]
        inputs = self._inputs(sum_channel_pairs(X), self.noise_model_.summed(2))
        target = torch.as_tensor(sum_channel_pairs(targets) / self.scale_, dtype=torch.float32)
        pad = X.shape[1] - target.shape[1]
        weight = torch.cat([torch.ones_like(target), torch.zeros(len(X), pad)], dim=1)
        inputs = F.pad(inputs, (0, pad), mode="replicate")
        return [inputs, F.pad(target.unsqueeze(1), (0, pad), mode="replicate")[:, 0], weight]
