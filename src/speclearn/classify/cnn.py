"""1-D CNN classifier with transfer learning: pretrain on simulated band spectra, fine-tune on real ones.

Pretraining (`pretrain=True`) trains the convolutional feature extractor on the pretext task of
`speclearn.classify.pretraining` (synthetic materials on the same number of channels, through the
same preprocessing as the real data); fine-tuning then trains the whole network, with a new
classification head, on the labelled spectra. `pretrain=False` trains the same network from scratch.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from speclearn.classify.base import SpectralClassifier
from speclearn.classify.pretraining import simulate_band_classes
from speclearn.core.params import store_params
from speclearn.models import (SavedModel, TrainingConfig, load_module_arrays, module_arrays, predict_batches,
                              resolve_device, train)

FEATURES = "features."


def _block(n_in: int, n_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(n_in, n_out, kernel, stride=2, padding=kernel // 2), nn.BatchNorm1d(n_out),
                         nn.ReLU(), nn.MaxPool1d(2, ceil_mode=True))


class BandCNN(nn.Module):
    """Input centring, three strided conv blocks (x1/4 length each), adaptive pooling to 8 positions, linear head."""

    def __init__(self, n_classes: int, n_channels: int, width: int = 16, kernel: int = 9, dropout: float = 0.3):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(n_channels))
        self.register_buffer("input_scale", torch.ones(()))
        self.features = nn.Sequential(_block(1, width, kernel), _block(width, 2 * width, kernel),
                                      _block(2 * width, 4 * width, kernel), nn.AdaptiveAvgPool1d(8), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * width * 8, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(((x - self.input_mean) / self.input_scale).unsqueeze(1)))

    def centre_on(self, X: torch.Tensor) -> None:
        """Centre inputs on the mean training spectrum and divide by one overall scale, so the
        network sees how spectra differ from each other rather than their common shape."""
        self.input_mean.copy_(X.mean(dim=0))
        self.input_scale.copy_((X - X.mean(dim=0)).std().clamp_min(1e-12))


def _cross_entropy(module: nn.Module, batch: list[torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(module(batch[0]), batch[1])


class CNNClassifier(SpectralClassifier):
    """1-D CNN; with `pretrain` its features are first learnt on simulated spectra."""

    method = "cnn"

    def __init__(self, width: int = 16, kernel: int = 9, epochs: int = 100, learning_rate: float = 1e-3,
                 batch_size: int = 16, weight_decay: float = 1e-4, patience: int = 40, pretrain: bool = True,
                 pretrain_classes: int = 16, pretrain_per_class: int = 24, pretrain_epochs: int = 10,
                 max_seconds: float | None = None, device: str = "auto", preprocessing: list | None = None,
                 seed: int = 0, progress: bool = False):
        store_params(self, locals())

    def fit(self, spectra, labels, *, encoder: dict[str, np.ndarray] | None = None) -> "CNNClassifier":
        """Fit; `encoder` (from `pretrained_encoder`) reuses pretrained features instead of pretraining again."""
        self._given_encoder = encoder
        try:
            return super().fit(spectra, labels)
        finally:
            del self._given_encoder

    def _config(self, epochs: int, seed: int) -> TrainingConfig:
        return TrainingConfig.of(self, epochs=epochs, seed=seed)

    def pretrained_encoder(self, n_channels: int, pipeline=None) -> dict[str, np.ndarray]:
        """Feature-extractor weights learnt on the simulated pretext task (`pipeline` preprocesses it)."""
        X, y = simulate_band_classes(n_channels, n_classes=self.pretrain_classes,
                                     n_per_class=self.pretrain_per_class, seed=self.seed + 1)
        if pipeline is not None:
            X = pipeline.transform(X)
        net = BandCNN(self.pretrain_classes, n_channels, self.width, self.kernel)
        X = torch.as_tensor(X, dtype=torch.float32)
        net.centre_on(X)
        train(net, _cross_entropy, [X, torch.as_tensor(y)], None,
              self._config(self.pretrain_epochs, self.seed + 1), device=resolve_device(self.device),
              description="pretraining")
        return module_arrays(net.features, prefix=FEATURES)

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray) -> None:
        torch.manual_seed(self.seed)
        self.net_ = BandCNN(len(self.classes_), X.shape[1], self.width, self.kernel)
        if self.pretrain:
            encoder = self._given_encoder or self.pretrained_encoder(X.shape[1], self.pipeline_)
            load_module_arrays(self.net_.features, encoder, prefix=FEATURES)
        X = torch.as_tensor(X, dtype=torch.float32)
        self.net_.centre_on(X)
        self.history_ = train(self.net_, _cross_entropy, [X, torch.as_tensor(y)], None,
                              self._config(self.epochs, self.seed), device=resolve_device(self.device),
                              description="fine-tuning" if self.pretrain else "training")
        self.net_.cpu()

    def _proba_arrays(self, X: np.ndarray) -> np.ndarray:
        self.net_.eval()
        return predict_batches(lambda batch: torch.softmax(self.net_(batch), dim=1), X,
                               device=resolve_device(self.device), modules=(self.net_,)).astype(float)

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        return module_arrays(self.net_), {}

    def _restore(self, model: SavedModel) -> None:
        n_channels = len(model.axis["values"])
        self.net_ = load_module_arrays(BandCNN(len(self.classes_), n_channels, self.width, self.kernel), model.arrays)
