"""SpectroscopyNet (Castorena & Oyen): a siamese pair of DnCNN channels that splits spectra into signal and
noise using only weak labels (which spectra come from the same target).

Training draws triplets (y_j, y_k, y_k') from three different targets and minimises, per triplet,

    loss = rec + w_o * ortho - w_a * align                                   (seed eq. 3, scaled)
    rec   = mean_c (t_j - z_x^j - z_n^k)^2                 reconstruction (squared, per channel)
    ortho = (<z_x^j, z_n^k> / N)^2                          relaxed orthogonality
    align = <z_n^k, z_n^k'> / N                             alignment of two unrelated noises

with z_x = h1(y) = y - f1(y) (DnCNN residual form) and z_n = h2(y) = f2(y), all computed on
spectra divided by one global RMS scale (so every term is O(1)), N the number of channels.
t_j is y_j itself (the seed's eq. 3, `reconstruction="self"`) or another shot of the same
target (`reconstruction="replicate"`, a Noise2Noise-style variant using the same weak labels).

What it removes: with `reconstruction="self"` a mean line spectrum shared by every target goes with the
instrument's mean noise; with `"replicate"` shot noise and shot-to-shot drift go too, while a stationary
multiplicative response stays. Weights w_o = 10, w_a = 0.1 with SGD (lr 0.1, momentum 0.9, gradients
clipped at `clip_norm`); on small sets some seeds remove almost nothing: check the removed mean.
Identifiability, the choice of weights and the rejected schedule: docs/notes/denoise_siamese.md.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.denoise.base import NetworkDenoiser, intensity_scale
from speclearn.denoise.networks import DnCNN1d
from speclearn.models import TrainingConfig, resolve_device, train

#: the seed's configuration (§3): D = 18 Conv+BN+ReLU layers of 64 filters, 60 epochs, batches of 512
SEED_CONFIG = {"depth": 18, "width": 64, "dilation": 1, "downsample": 1, "epochs": 60, "batch_size": 512}


class TripletSampler:
    """Draws, for anchor spectra j, partners k and k' from two other targets (j, k, k' three distinct
    groups) and a replicate j2 from j's own group (another spectrum when the group has one)."""

    def __init__(self, groups: np.ndarray):
        groups = np.asarray(groups, dtype=np.int64)
        self.n_groups = int(groups.max()) + 1
        if self.n_groups < 3:
            raise InputError(f"triplets need at least three groups, got {self.n_groups}")
        self.groups = groups
        order = np.argsort(groups, kind="stable")
        self.members = order
        self.starts = np.searchsorted(groups[order], np.arange(self.n_groups))
        self.sizes = np.bincount(groups, minlength=self.n_groups)

    def _member(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.members[self.starts[group] + (rng.random(len(group)) * self.sizes[group]).astype(np.int64)]

    def draw(self, anchors: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k, k', j2) for the anchor indices: groups g_k != g_j, g_k' not in {g_j, g_k}, g_j2 == g_j."""
        g_j = self.groups[anchors]
        g_k = (g_j + rng.integers(1, self.n_groups, len(anchors))) % self.n_groups
        r = rng.integers(0, self.n_groups - 2, len(anchors))
        low, high = np.minimum(g_j, g_k), np.maximum(g_j, g_k)
        g_k2 = r + (r >= low) + ((r + (r >= low)) >= high)  # the r-th group skipping g_j and g_k
        replicate = self._member(g_j, rng)
        same = (replicate == anchors) & (self.sizes[g_j] > 1)
        while same.any():  # redraw the replicates that hit the anchor itself
            replicate[same] = self._member(g_j[same], rng)
            same = (replicate == anchors) & (self.sizes[g_j] > 1)
        return self._member(g_k, rng), self._member(g_k2, rng), replicate


class SiameseModule(nn.Module):
    """h1 (signal: z_x = f1(y), or y - f1(y) when `residual`) and h2 (noise: z_n = f2(y))."""

    def __init__(self, residual: bool = False, **net: Any):
        super().__init__()
        self.residual = residual
        self.signal_net = DnCNN1d(**net)
        self.noise_net = DnCNN1d(**net)

    def signal(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.signal_net(y) if self.residual else self.signal_net(y)

    def noise(self, y: torch.Tensor) -> torch.Tensor:
        return self.noise_net(y)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.signal(y)


def siamese_loss(module: SiameseModule, y_j: torch.Tensor, target: torch.Tensor, y_k: torch.Tensor,
                 y_k2: torch.Tensor, orthogonality_weight: float, alignment_weight: float) -> torch.Tensor:
    """Scaled eq. 3 for a batch of triplets (see the module docstring)."""
    n = y_j.shape[-1]
    z_x = module.signal(y_j)
    z_n = module.noise(torch.cat([y_k, y_k2]))
    z_nk, z_nk2 = z_n[:len(y_k)], z_n[len(y_k):]
    rec = torch.mean((target - z_x - z_nk) ** 2)
    ortho = torch.mean((torch.sum(z_x * z_nk, dim=1) / n) ** 2)
    align = torch.mean(torch.sum(z_nk * z_nk2, dim=1) / n)
    return rec + orthogonality_weight * ortho - alignment_weight * align


class SpectroscopyNet(NetworkDenoiser):
    """Siamese signal/noise disentanglement from weak labels (Castorena & Oyen). See the module docstring.

    The defaults are the cheaper network chosen by the speed benchmark; `SEED_CONFIG` holds the
    seed's (18 x 64, 60 epochs, batches of 512). SGD with lr 0.1 and momentum 0.9 as in the seed.
    """

    method = "siamese"
    needs_groups = True

    def __init__(self, depth: int = 6, width: int = 16, kernel_size: int = 3, dilation: int | list[int] = 1,
                 downsample: int = 4, residual: bool = False, reconstruction: str = "self",
                 orthogonality_weight: float = 10.0, alignment_weight: float = 0.1, epochs: int = 60,
                 batch_size: int = 16, learning_rate: float = 0.1, momentum: float = 0.9, optimizer: str = "sgd",
                 clip_norm: float | None = 1.0, max_seconds: float | None = None, patience: int = 60, seed: int = 0,
                 device: str = "auto", progress: bool = False):
        store_params(self, locals())

    def _module(self) -> SiameseModule:
        return SiameseModule(residual=self.residual, depth=self.depth, width=self.width, kernel_size=self.kernel_size,
                             dilation=self.dilation, downsample=self.downsample)

    def _fit(self, X, *, groups, clean) -> None:
        if self.reconstruction not in ("self", "replicate"):
            raise InputError(f"reconstruction must be 'self' or 'replicate', got {self.reconstruction!r}")
        device = resolve_device(self.device)
        torch.manual_seed(self.seed)
        self.scale_ = intensity_scale(X)
        data = torch.as_tensor(X / self.scale_, dtype=torch.float32, device=device)
        sampler = TripletSampler(groups)
        rng = np.random.default_rng(self.seed)
        replicate = self.reconstruction == "replicate"

        def loss_fn(module: SiameseModule, batch: list[torch.Tensor]) -> torch.Tensor:
            anchors = batch[0].cpu().numpy()
            k, k2, j2 = (torch.as_tensor(i, device=device) for i in sampler.draw(anchors, rng))
            y_j = data[batch[0]]
            target = data[j2] if replicate else y_j
            return siamese_loss(module, y_j, target, data[k], data[k2], self.orthogonality_weight,
                                self.alignment_weight)

        self.module_ = self._module()
        config = TrainingConfig.of(self)
        self.history_ = train(self.module_, loss_fn, [torch.arange(len(X))], None, config, device=device,
                              description="SpectroscopyNet").as_dict()
        self.module_.cpu().eval()

    def _clean(self, X: np.ndarray) -> np.ndarray:
        return self._apply(self.module_.signal, X)

    def noise(self, spectra):
        """z_n = h2(y): the noise channel's estimate (the stationary, target-independent part)."""
        self.check_spectra(spectra)
        return spectra.with_intensity(self._apply(self.module_.noise, spectra.values()))
