"""One-step MLP baseline (Vrábel et al., JAAS 2023 §4.3.3): secondary -> primary directly, same layers as MLP + decoder."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from speclearn.core.params import store_params
from speclearn.models import TrainingConfig, load_module_arrays, module_arrays, predict_batches, resolve_device, train
from speclearn.transfer import data
from speclearn.transfer.base import TransferModel
from speclearn.transfer.networks import dense_stack, n_parameters, regression_loss


def one_step_sizes(n_secondary: int, n_primary: int, mlp_hidden, latent: int, hidden) -> list[int]:
    """Layer widths of the composed model (MLP then decoder) as one network."""
    return [n_secondary, *mlp_hidden, latent, *reversed(tuple(hidden)), n_primary]


class OneStepMLPTransfer(TransferModel):
    """A single MLP with the widths of MLP + VAE decoder, trained end to end on the primary spectra."""

    method = "mlp"
    min_pairs = 10

    def __init__(self, hidden=(1024, 512), latent: int = 64, mlp_hidden=(128, 512), epochs: int = 100,
                 patience: int = 10, batch_size: int = 128, learning_rate: float = 1e-4, weight_decay: float = 1e-5,
                 baseline_window: int = 100, baseline_sigma: float = 50.0, validation_fraction: float = 0.2,
                 seed: int = 0, device: str = "auto", max_seconds: float | None = None, progress: bool = False):
        store_params(self, locals())

    def _network(self, n_secondary: int, n_primary: int) -> torch.nn.Module:
        return dense_stack(one_step_sizes(n_secondary, n_primary, self.mlp_hidden, self.latent, self.hidden))

    def _fit_scaled(self, Xs, Xp, Xs_val, Xp_val, *, name: str) -> None:
        torch.manual_seed(self.seed)
        self.net_ = self._network(Xs.shape[1], Xp.shape[1])
        config = TrainingConfig.of(self)
        history = train(self.net_, regression_loss, [data.Rows(Xs), data.Rows(Xp)], [data.Rows(Xs_val), data.Rows(Xp_val)],
                        config, device=resolve_device(self.device), description="one-step MLP")
        self.net_.cpu().eval()
        self.history_ = history.as_dict()

    def _predict_scaled(self, Xs: np.ndarray, *, name: str) -> np.ndarray:
        return predict_batches(self.net_, Xs, device=resolve_device(self.device), modules=(self.net_,))

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
        return module_arrays(self.net_, "net."), {}, {"history": self.history_, "parameters": n_parameters(self.net_)}

    def _restore(self, arrays, estimators, extra) -> None:
        (axis,) = self.secondary_axes_.values()
        self.net_ = load_module_arrays(self._network(len(axis["values"]), len(self.axis_["values"])),
                                       arrays, "net.")
        self.history_ = extra.get("history", {})
