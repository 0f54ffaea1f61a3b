"""Torch building blocks of the seed-003 models: dense stacks and the primary-spectra VAE."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def dense_stack(sizes: Sequence[int], *, activate_last: bool = False) -> nn.Sequential:
    """Linear layers of the given widths with leaky ReLU between them (the last linear unless asked)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if activate_last or i < len(sizes) - 2:
            layers.append(nn.LeakyReLU())
    return nn.Sequential(*layers)


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class VAE(nn.Module):
    """Dense VAE: n - hidden... - latent (linear mean and log-variance) - ...hidden - n (linear)."""

    def __init__(self, n_channels: int, hidden: Sequence[int] = (1024, 512), latent: int = 64):
        super().__init__()
        self.encoder = dense_stack([n_channels, *hidden], activate_last=True)
        self.mean = nn.Linear(hidden[-1], latent)
        self.log_var = nn.Linear(hidden[-1], latent)
        self.decoder = dense_stack([latent, *reversed(hidden), n_channels])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.mean(h), self.log_var(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var) if self.training else mean
        return self.decoder(z), mean, log_var


def cyclical_beta(step: int, total_steps: int, *, cycles: int = 4, beta_max: float = 0.5, ramp: float = 0.5) -> float:
    """Cyclical KL annealing (Fu et al. 2019): per cycle rise linearly 0 -> beta_max over `ramp`, then hold."""
    cycle = max(total_steps / cycles, 1.0)
    return beta_max * min(1.0, (step % cycle) / (ramp * cycle))


class VAELoss:
    """Sum-over-channels squared error + beta * KL (beta cyclically annealed per training step).

    In eval mode it is the reconstruction error of the latent mean only, so early stopping and
    best-weight selection do not depend on where the annealing schedule is.
    """

    def __init__(self, total_steps: int, beta_max: float = 0.5, cycles: int = 4):
        self.total_steps, self.beta_max, self.cycles, self.step = total_steps, beta_max, cycles, 0

    def __call__(self, module: VAE, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        x = batch[0]
        reconstruction, mean, log_var = module(x)
        loss = ((reconstruction - x) ** 2).sum(dim=1).mean()
        if not module.training:
            return loss
        kl = (-0.5 * (1 + log_var - mean ** 2 - log_var.exp()).sum(dim=1)).mean()
        beta = cyclical_beta(self.step, self.total_steps, cycles=self.cycles, beta_max=self.beta_max)
        self.step += 1
        return loss + beta * kl


def regression_loss(module: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean squared error of `module(x)` against `y` (L2 comes from the optimiser's weight decay)."""
    x, y = batch
    return ((module(x) - y) ** 2).mean()


class InstrumentDrift:
    """Training-time augmentation of scaled spectra with another day's instrument changes.

    Each spectrum gets a random smooth multiplicative response exp(sum_k c_k P_k(x)) (Legendre
    degree <= 2, c_k ~ N(0, response_sd)) and a random calibration shift of up to `max_shift`
    channels (linear interpolation), applied in the measured intensity scale (`mean`, `scale` undo
    and redo the standard scaling).
    """

    def __init__(self, mean, scale, *, response_sd: float, max_shift: float, seed: int = 0):
        n = len(mean)
        x = torch.linspace(-1.0, 1.0, n)
        self.basis = torch.stack([torch.ones(n), x, 1.5 * x ** 2 - 0.5])
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.scale = torch.as_tensor(scale, dtype=torch.float32)
        self.response_sd, self.max_shift = response_sd, max_shift
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, m = x.shape
        raw = x * self.scale.to(x.device) + self.mean.to(x.device)
        if self.max_shift > 0:
            shift = (torch.rand(n, 1, generator=self.generator) * 2 - 1) * self.max_shift
            position = (torch.arange(m)[None, :] + shift).clamp(0, m - 1).to(x.device)
            low = position.floor().long()
            high = (low + 1).clamp(max=m - 1)
            weight = position - low
            raw = raw.gather(1, low) * (1 - weight) + raw.gather(1, high) * weight
        if self.response_sd > 0:
            coefficients = torch.randn(n, 3, generator=self.generator) * self.response_sd
            raw = raw * torch.exp(coefficients @ self.basis).to(x.device)
        return (raw - self.mean.to(x.device)) / self.scale.to(x.device)


class AugmentedRegressionLoss:
    """`regression_loss` on inputs passed through `augment` while the module trains."""

    def __init__(self, augment: InstrumentDrift):
        self.augment = augment

    def __call__(self, module: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return regression_loss(module, (self.augment(x) if module.training else x, y))
