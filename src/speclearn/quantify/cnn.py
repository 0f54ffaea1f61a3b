"""A small 1-D CNN regressor for property targets (moisture, fat, assay, ...) from whole spectra.

Each spectrum is SNV-normalised, then every channel standardised with the training statistics;
targets are standardised too. Two convolution blocks and a pooled dense head predict all targets
at once; early stopping on a held-out 15 % of the training spectra picks the epoch. It needs a few
hundred spectra to compete with PLS, which is why `--method auto` tries it only from
`MIN_SPECTRA` spectra on.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from speclearn.core.params import store_params
from speclearn.models.selection import holdout
from speclearn.models import TrainingConfig, resolve_device, load_module_arrays, module_arrays, predict_batches, train
from speclearn.preprocessing import Normalizer
from speclearn.quantify.base import FitContext, Quantifier

#: Fewest training spectra for which `--method auto` tries the CNN.
MIN_SPECTRA = 200


class SpectrumCNN(nn.Module):
    def __init__(self, n_targets: int, width: int = 8, dropout: float = 0.1):
        super().__init__()
        self.n_targets, self.width = n_targets, width
        self.features = nn.Sequential(
            nn.Conv1d(1, width, 9, padding=4), nn.ReLU(), nn.AvgPool1d(2),
            nn.Conv1d(width, 2 * width, 9, padding=4), nn.ReLU(), nn.AdaptiveAvgPool1d(32))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * width, 64), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(64, n_targets))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x[:, None, :]))


def _snv(X: np.ndarray) -> np.ndarray:
    return Normalizer("snv").fit_transform(X)


class CNNRegressor(Quantifier):
    """1-D CNN on SNV-normalised spectra (see the module docstring)."""

    method = "cnn"

    def __init__(self, width: int = 8, epochs: int = 300, batch_size: int = 32, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-4, patience: int = 30, max_seconds: float | None = None, seed: int = 0,
                 progress: bool = False, device: str = "auto"):
        store_params(self, locals())

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        return ((_snv(X) - self.x_mean_) / self.x_std_).astype(np.float32)

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        torch.manual_seed(self.seed)
        normalised = _snv(X)
        self.x_mean_, self.x_std_ = normalised.mean(axis=0), np.maximum(normalised.std(axis=0), 1e-6)
        self.y_mean_, self.y_std_ = Y.mean(axis=0), np.maximum(Y.std(axis=0), 1e-12)
        inputs = torch.from_numpy(self._inputs(X))
        targets = torch.from_numpy(((Y - self.y_mean_) / self.y_std_).astype(np.float32))
        fit, val = holdout(len(X), 0.15, self.seed, min_size=2)
        self.net_ = SpectrumCNN(Y.shape[1], self.width)
        config = TrainingConfig.of(self)
        self.history_ = train(self.net_, lambda net, b: nn.functional.mse_loss(net(b[0]), b[1]),
                              [inputs[fit], targets[fit]], [inputs[val], targets[val]], config,
                              device=resolve_device(self.device), description="CNN regressor").as_dict()
        self.net_ = self.net_.cpu().eval()

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return predict_batches(self.net_, self._inputs(X), device=resolve_device(self.device), modules=(self.net_,)) * self.y_std_ + self.y_mean_

    _ARRAYS = ("x_mean_", "x_std_", "y_mean_", "y_std_")

    def _state(self):
        arrays = {name: np.asarray(getattr(self, name)) for name in self._ARRAYS}
        return {"history": self.history_}, {**arrays, **module_arrays(self.net_)}, {}

    def _restore(self, extra: dict[str, Any], arrays, estimators) -> None:
        for name in self._ARRAYS:
            setattr(self, name, np.asarray(arrays[name]))
        self.history_ = extra.get("history", {})
        self.net_ = load_module_arrays(SpectrumCNN(len(self.targets_), self.width), arrays).eval()
