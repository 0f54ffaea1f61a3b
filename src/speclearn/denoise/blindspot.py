"""Blind-spot denoiser (Noise2Self, Batson & Royer 2019) for single spectra: no replicates, no clean data.

During training a random eighth of the channels is hidden (replaced by the mean of their two
neighbours) and the model is scored only there, against the measured value it could not see. Noise
independent between channels cannot be predicted from the neighbours, so the model learns the
signal (J-invariance). The model is a Savitzky-Golay smoother (window chosen by the same hidden-
channel loss) plus a U-Net correction on variance-stabilised spectra (Poisson + read noise,
estimated from second differences), dropped if it never beats the smoother on validation spectra.
Noise correlated between neighbouring channels (smoothed or interpolated spectra) is partly learned
as signal, and then kept.
"""
from __future__ import annotations

import numpy as np
import torch

from speclearn.core.errors import InputError
from speclearn.models.selection import holdout
from speclearn.denoise.stabilised import StabilisedDenoiser, smooth

HIDDEN_FRACTION = 8


def _hide(x, mask):
    """x with the masked channels (last axis) replaced by the mean of their two neighbours."""
    if isinstance(x, np.ndarray):
        left, right = np.concatenate([x[..., 1:2], x[..., :-1]], -1), np.concatenate([x[..., 1:], x[..., -2:-1]], -1)
        return np.where(mask, 0.5 * (left + right), x)
    left, right = torch.cat([x[..., 1:2], x[..., :-1]], -1), torch.cat([x[..., 1:], x[..., -2:-1]], -1)
    return torch.where(mask, 0.5 * (left + right), x)


def _blind_spot_loss(module, batch) -> torch.Tensor:
    inputs, x = batch
    if module.training:
        mask = torch.rand(x.shape, device=x.device) < 1.0 / HIDDEN_FRACTION
    else:  # a fixed pattern, so validation losses are comparable between epochs
        mask = (torch.arange(x.shape[1], device=x.device) % HIDDEN_FRACTION == 0).expand_as(x)
    error = (module(_hide(inputs, mask.unsqueeze(1))) - x) ** 2
    return (error * mask).sum() / mask.sum().clamp(min=1)


class BlindSpotDenoiser(StabilisedDenoiser):
    """Savitzky-Golay + U-Net trained with hidden channels (Noise2Self): single spectra, groups ignored."""

    method = "blindspot"

    def _window_loss(self, X: np.ndarray, window: int) -> float:
        errors = []
        for offset in range(HIDDEN_FRACTION):
            mask = np.arange(X.shape[1]) % HIDDEN_FRACTION == offset
            errors.append(((smooth(_hide(X, mask), window) - X)[:, mask]) ** 2)
        return float(np.mean(np.concatenate(errors, axis=1)))

    def _fit(self, X, *, groups, clean) -> None:
        if X.shape[1] < 8:
            raise InputError(f"the blind-spot denoiser needs at least 8 channels, got {X.shape[1]}")
        self._prepare(X, None)
        inputs, intensities = self._inputs(X), torch.as_tensor(X / self.scale_, dtype=torch.float32)
        fit, val = (torch.as_tensor(rows) for rows in holdout(len(X), self.validation_fraction, self.seed))
        self._train(_blind_spot_loss, [inputs[fit], intensities[fit]],
                    [inputs[val], intensities[val]] if len(val) else None, "blind-spot U-Net")
