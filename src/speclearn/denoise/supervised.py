"""Supervised denoiser: a 1-D U-Net trained on (noisy, clean) pairs, e.g. from the LIBS simulator.

It predicts the residual y - clean (everything to remove, the non-zero-mean part included), on
spectra divided by one global RMS scale; the loss is the mean squared error to the clean spectra.
"""
from __future__ import annotations

import torch
from torch import nn

from speclearn.core.params import store_params
from speclearn.denoise.base import NetworkDenoiser, intensity_scale
from speclearn.denoise.networks import UNet1d
from speclearn.models.selection import holdout
from speclearn.models import TrainingConfig, resolve_device, train


class ResidualUNet(nn.Module):
    def __init__(self, width: int, levels: int, kernel_size: int):
        super().__init__()
        self.net = UNet1d(width=width, levels=levels, kernel_size=kernel_size)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.net(y)


class SupervisedDenoiser(NetworkDenoiser):
    """U-Net denoiser trained with clean targets (the upper bound a weakly supervised method chases)."""

    method = "supervised"
    needs_clean = True

    def __init__(self, width: int = 16, levels: int = 3, kernel_size: int = 5, epochs: int = 60,
                 batch_size: int = 32, learning_rate: float = 1e-3, validation_fraction: float = 0.1,
                 patience: int = 10, max_seconds: float | None = None, seed: int = 0, device: str = "auto",
                 progress: bool = False):
        store_params(self, locals())

    def _module(self) -> ResidualUNet:
        return ResidualUNet(self.width, self.levels, self.kernel_size)

    def _fit(self, X, *, groups, clean) -> None:
        torch.manual_seed(self.seed)
        self.scale_ = intensity_scale(X)
        noisy = torch.as_tensor(X / self.scale_, dtype=torch.float32)
        target = torch.as_tensor(clean / self.scale_, dtype=torch.float32)
        fit, val = (torch.as_tensor(rows) for rows in holdout(len(X), self.validation_fraction, self.seed))
        self.module_ = self._module()
        config = TrainingConfig.of(self)
        self.history_ = train(self.module_, lambda m, b: torch.mean((m(b[0]) - b[1]) ** 2),
                              [noisy[fit], target[fit]], [noisy[val], target[val]] if len(val) else None, config,
                              device=resolve_device(self.device), description="supervised U-Net").as_dict()
        self.module_.cpu().eval()
