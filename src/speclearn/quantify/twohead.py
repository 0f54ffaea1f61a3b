"""Two-headed quantifier (Spectralligence D1.2, AES): a spectral head and an instrument-parameter head, fused.

Spectral head: the spectrum is projected onto isotope-pattern templates (a fitted `WNNLS`: analytes,
internal standard, interferences, baseline); the amounts (asinh-scaled, standardised) feed an MLP.
Parameter head: an MLP on the standardised per-spectrum instrument/process parameters (plasma power,
nebuliser flow, conductivity, temperature, ...). Late fusion: both embeddings are concatenated and a
fusion MLP outputs a log-correction per analyte, plus a linear term in the parameters (a wide-and-deep
skip that holds the classical log-linear correction), applied to the internal-standard-corrected
calibration line of the WNNLS: concentration = calibrated ratio * exp(correction). The linear term and the
output bias start at the classical correction (`paramcorrection.fit_log_recovery` on the training
spectra; zero without parameters), the MLP part at zero; all is trained with a Huber loss on relative
errors, so the network learns what the classical log-linear correction misses.

Fitted without parameters the parameter head is absent: the same model, spectral head only, which is
what the matrix-effect benchmark compares against.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from speclearn.core.params import store_params
from speclearn.models.selection import holdout
from speclearn.models import TrainingConfig, resolve_device, load_module_arrays, module_arrays, predict_batches, train
from speclearn.quantify.base import FitContext, Quantifier, relative_loss_floor
from speclearn.quantify.paramcorrection import fit_log_recovery
from speclearn.quantify.wnnls import WNNLS


class TwoHeadNet(nn.Module):
    """forward(x) with x = [spectral features (F) | parameters (P) | calibrated ratio (K)] -> concentrations."""

    def __init__(self, n_features: int, n_params: int, n_targets: int, hidden: int = 64, param_hidden: int = 32):
        super().__init__()
        self.sizes = (n_features, n_params, n_targets)
        self.spectral = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
        self.parameters_head = (nn.Sequential(nn.Linear(n_params, param_hidden), nn.ReLU(),
                                              nn.Linear(param_hidden, param_hidden), nn.ReLU())
                                if n_params else None)
        self.params_linear = nn.Linear(n_params, n_targets, bias=False) if n_params else None
        width = hidden + (param_hidden if n_params else 0)
        self.fusion = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, n_targets))
        for layer in (self.fusion[-1], self.params_linear):
            if layer is not None:
                nn.init.zeros_(layer.weight)
        nn.init.zeros_(self.fusion[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, params, calibrated = torch.split(x, self.sizes, dim=1)
        h = self.spectral(features)
        if self.parameters_head is None:
            return calibrated * torch.exp(self.fusion(h))
        correction = self.fusion(torch.cat([h, self.parameters_head(params)], dim=1)) + self.params_linear(params)
        return calibrated * torch.exp(correction)


class TwoHeadQuantifier(Quantifier):
    """Spectral (template projection + MLP) and parameter (MLP) heads, late fusion; see the module docstring.

    internal_standard, interferences: passed to the `WNNLS` spectral front end. Training: Adam
    (learning_rate, weight_decay), batch_size, epochs, early stopping (patience) on validation_fraction of the
    training spectra, max_seconds. warm_start: keep an already fitted front end (`physics_`, a WNNLS
    fitted on the same training spectra) and train only the network.
    """

    method = "twohead"
    uses_params = True

    def __init__(self, internal_standard: str = "In", interferences: str = "auto", hidden: int = 64,
                 param_hidden: int = 32, epochs: int = 400, batch_size: int = 32, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-4, patience: int = 40, validation_fraction: float = 0.2,
                 max_seconds: float | None = None, seed: int = 0, progress: bool = True, warm_start: bool = False,
                 device: str = "auto"):
        store_params(self, locals())

    # --- inputs --------------------------------------------------------------------------------------
    def _inputs(self, amounts: np.ndarray, P: np.ndarray | None) -> np.ndarray:
        """Network input from the WNNLS amounts (n, species + baseline) and the raw parameters."""
        n_species = len(self.physics_.species_)
        features = (np.arcsinh(amounts[:, :n_species] / self.amount_scale_) - self.feature_mean_) / self.feature_std_
        calibrated = self.physics_._ratios(amounts) * self.physics_.slope_ + self.physics_.intercept_
        params = np.empty((len(amounts), 0)) if P is None else (P - self.param_mean_) / self.param_std_
        return np.concatenate([features, params, calibrated], axis=1).astype(np.float32)

    def _build(self, n_features: int, n_params: int) -> TwoHeadNet:
        return TwoHeadNet(n_features, n_params, len(self.targets_), self.hidden, self.param_hidden)

    # --- fit -----------------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        torch.manual_seed(self.seed)
        if not (self.warm_start and hasattr(self, "physics_")):
            self.physics_ = WNNLS(internal_standard=self.internal_standard, interferences=self.interferences)
            self.physics_.fit(context.spectra, pd.DataFrame(Y, index=context.spectra.meta.index,
                                                            columns=self.targets_))
        amounts = self.physics_.amounts(X)
        species = amounts[:, :len(self.physics_.species_)]
        self.amount_scale_ = np.maximum(np.percentile(np.abs(species), 90, axis=0), 1e-12)
        scaled = np.arcsinh(species / self.amount_scale_)
        self.feature_mean_, self.feature_std_ = scaled.mean(axis=0), np.maximum(scaled.std(axis=0), 1e-6)
        P = context.params
        if P is not None:
            self.param_mean_, self.param_std_ = P.mean(axis=0), np.maximum(P.std(axis=0), 1e-12)
        self.floor_ = relative_loss_floor(Y)
        inputs = self._inputs(amounts, P)
        self.net_ = self._build(scaled.shape[1], 0 if P is None else P.shape[1])
        if P is not None:  # start from the classical log-linear correction: the network learns what it misses
            n_inputs = scaled.shape[1] + P.shape[1]
            coef = fit_log_recovery(inputs[:, n_inputs:].astype(float), Y, inputs[:, scaled.shape[1]:n_inputs], 1e-3)
            with torch.no_grad():
                self.net_.params_linear.weight.copy_(torch.from_numpy(-coef[:, 1:]).float())
                self.net_.fusion[-1].bias.copy_(torch.from_numpy(-coef[:, 0]).float())
        fit, val = holdout(len(X), self.validation_fraction, self.seed)
        tensors = [torch.from_numpy(inputs), torch.from_numpy(Y.astype(np.float32))]
        config = TrainingConfig.of(self)
        self.history_ = train(self.net_, self._loss, [t[fit] for t in tensors],
                              [t[val] for t in tensors] if len(val) else None, config,
                              device=resolve_device(self.device), description="two-headed quantifier").as_dict()
        self.net_ = self.net_.cpu().eval()

    def _loss(self, net: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        floor = torch.as_tensor(self.floor_, dtype=torch.float32, device=x.device)
        return nn.functional.huber_loss((net(x) - y) / (y + floor), torch.zeros_like(y), delta=0.1)

    # --- prediction ----------------------------------------------------------------------------------
    def _predict(self, X: np.ndarray, P: np.ndarray | None = None) -> np.ndarray:
        return predict_batches(self.net_, self._inputs(self.physics_.amounts(X), P), device=resolve_device(self.device),
                               modules=(self.net_,)).astype(float)

    def internal_standard_recovery(self, X: np.ndarray) -> np.ndarray | None:
        return self.physics_.internal_standard_recovery(X)

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """The spectral head's template fit (the WNNLS reconstruction)."""
        return self.physics_.reconstruct(X)

    # --- persistence ---------------------------------------------------------------------------------
    _ARRAYS = ("amount_scale_", "feature_mean_", "feature_std_", "param_mean_", "param_std_", "floor_")

    def _state(self):
        physics_extra, physics_arrays, _ = self.physics_._state()
        extra = {"physics": physics_extra, "history": self.history_, "n_features": self.net_.sizes[0],
                 "n_params": self.net_.sizes[1]}
        arrays = {name: np.asarray(getattr(self, name)) for name in self._ARRAYS if hasattr(self, name)}
        arrays |= {f"physics.{k}": v for k, v in physics_arrays.items()}
        return extra, {**arrays, **module_arrays(self.net_)}, {}

    def _restore(self, extra: dict[str, Any], arrays, estimators) -> None:
        self.physics_ = WNNLS(internal_standard=self.internal_standard, interferences=self.interferences)
        self.physics_.axis_, self.physics_.targets_ = self.axis_, self.targets_
        self.physics_._restore(extra["physics"], {k.split(".", 1)[1]: v for k, v in arrays.items()
                                                  if k.startswith("physics.")}, {})
        for name in self._ARRAYS:
            if name in arrays:
                setattr(self, name, np.asarray(arrays[name]))
        self.history_ = extra["history"]
        self.net_ = load_module_arrays(self._build(int(extra["n_features"]), int(extra["n_params"])), arrays).eval()
