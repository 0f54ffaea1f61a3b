"""Small 1-D CNNs of the MRS system and the network input: a ppm window of the complex spectrum."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from speclearn.mrs.data import MRSData, ppm_slice


def window_input(data: MRSData, ppm_range: tuple[float, float], scale: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(float32 (n, 2, L) real/imag of the spectra in `ppm_range` divided by `scale`, scale (n,)).

    scale defaults to each spectrum's RMS magnitude in the window."""
    spectra = data.spectrum()[:, ppm_slice(data.ppm(), *ppm_range)]
    if scale is None:
        scale = np.sqrt(np.mean(np.abs(spectra) ** 2, axis=1))
    scale = np.maximum(np.asarray(scale, float), 1e-30)
    x = spectra / scale[:, None]
    return np.stack([x.real, x.imag], axis=1).astype(np.float32), scale


class Encoder(nn.Module):
    """Conv1d stack -> pooled features -> MLP head with dropout (MC dropout at prediction)."""

    def __init__(self, in_channels: int, outputs: int, width: int = 32, dropout: float = 0.1):
        super().__init__()
        layers, channels = [], in_channels
        for out_channels in (width // 2, width, width, 2 * width):
            layers += [nn.Conv1d(channels, out_channels, 7, stride=2, padding=3), nn.BatchNorm1d(out_channels),
                       nn.GELU()]
            channels = out_channels
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(8), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(8 * channels, 128), nn.GELU(), nn.Dropout(dropout), nn.Linear(128, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def enable_dropout(module: nn.Module) -> None:
    """Eval mode everywhere except dropout layers (MC dropout)."""
    module.eval()
    for layer in module.modules():
        if isinstance(layer, nn.Dropout):
            layer.train()
