"""Data-parallel training: 2 CPU processes (gloo) make the same updates as one process with the whole batch."""
from __future__ import annotations

import numpy as np
import torch


def _fit(rank: int, X: np.ndarray, y: np.ndarray) -> dict:
    from speclearn.models.training import TrainingConfig, train
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    config = TrainingConfig(epochs=4, batch_size=16, learning_rate=0.05, optimizer="sgd", momentum=0.0,
                            patience=100, progress=False, seed=3)
    history = train(module, lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]),
                    [torch.as_tensor(X), torch.as_tensor(y)], None, config)
    return {"state": {k: v.clone() for k, v in module.state_dict().items()}, "loss": history.train_loss}


def test_two_gloo_processes_match_one_process():
    from speclearn.distributed import data_parallel
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    y = (X @ rng.normal(size=(5, 1))).astype(np.float32)
    single = _fit(0, X, y)
    parallel = data_parallel(_fit, X, y, processes=2)
    for name, value in single["state"].items():
        torch.testing.assert_close(parallel["state"][name], value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parallel["loss"], single["loss"], rtol=1e-5)
    assert single["loss"][-1] < single["loss"][0]  # it did learn
