"""A small recurrent detector over the run (Spectralligence D1.2: "RNNs to detect anomalies during operation").

Input: the per-spectrum QA statistics in run order (the drift-chart inputs: internal-standard
recovery, signal level, latent scores, each standardised against in-control spectra, plus the
normalised per-spectrum components). A one-layer GRU reads the sequence and outputs per step the
probability that the run is out of control there. It is trained self-supervised on in-control
sequences (held-out reference spectra drawn in random order) with synthetic faults added in feature
space: steps, ramps (drifts) and single-point outliers of random direction and size; the labels are
the perturbed steps. It never sees the simulator's faults.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from speclearn.models import TrainingConfig, train


class GRUDetector(nn.Module):
    def __init__(self, n_features: int, hidden: int = 32):
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gru(x)[0])[..., 0]


def _loss(net: nn.Module, batch) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(net(batch[0]), batch[1])


def synthetic_runs(features: np.ndarray, n_runs: int, length: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """In-control sequences (rows of `features` drawn at random) with half of them perturbed."""
    runs = features[rng.integers(0, len(features), (n_runs, length))].copy()
    labels = np.zeros((n_runs, length))
    d = features.shape[1]
    for r in range(n_runs):
        kind = rng.integers(0, 4)  # 0 none, 1 step, 2 ramp, 3 outlier
        if kind == 0:
            continue
        start = int(rng.integers(1, length - 1))
        direction = rng.standard_normal(d) * (rng.random(d) < 0.6)
        direction /= max(np.linalg.norm(direction), 1e-9)
        if kind == 1:
            size = rng.uniform(1.0, 6.0)
            runs[r, start:] += size * direction
            labels[r, start:] = 1
        elif kind == 2:
            slope = rng.uniform(0.05, 0.5)
            ramp = slope * np.arange(length - start)
            runs[r, start:] += ramp[:, None] * direction
            labels[r, start:] = ramp >= 1.0
        else:
            runs[r, start] += rng.uniform(3.0, 20.0) * direction
            labels[r, start] = 1
    return runs.astype(np.float32), labels.astype(np.float32)


class SequenceDetector:
    """GRU trained on synthetic perturbations of in-control feature sequences."""

    def __init__(self, hidden: int = 32, n_runs: int = 600, length: int = 60, epochs: int = 30, seed: int = 0):
        self.hidden, self.n_runs, self.length, self.epochs, self.seed = hidden, n_runs, length, epochs, seed

    def fit(self, features: np.ndarray) -> "SequenceDetector":
        rng = np.random.default_rng(self.seed)
        runs, labels = synthetic_runs(np.clip(features, -8, 8), self.n_runs, self.length, rng)
        n_val = self.n_runs // 5
        torch.manual_seed(self.seed)
        self.net_ = GRUDetector(features.shape[1], self.hidden)
        tensors = [torch.from_numpy(runs), torch.from_numpy(labels)]
        config = TrainingConfig(epochs=self.epochs, batch_size=32, learning_rate=3e-3, patience=8, seed=self.seed,
                                progress=False)
        self.history_ = train(self.net_, _loss, [t[n_val:] for t in tensors], [t[:n_val] for t in tensors], config,
                              description="GRU run detector").as_dict()
        return self

    @torch.no_grad()
    def score(self, features: np.ndarray) -> np.ndarray:
        """Per-step out-of-control probability for one run (n, features)."""
        x = torch.from_numpy(np.clip(features, -8, 8).astype(np.float32))[None]
        return torch.sigmoid(self.net_.eval()(x))[0].numpy()
