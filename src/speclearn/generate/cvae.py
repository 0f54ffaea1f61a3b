"""Conditional VAE that generates spectra for a requested composition (or class).

Spectra are standard-scaled per channel; the condition is a composition vector (numeric target
columns, standard-scaled) or a class one-hot (a single non-numeric column). The encoder maps
(spectrum, condition) to a Gaussian latent; the decoder (an MLP of latent and condition plus a
linear term in the condition, since line intensities grow about linearly with concentration) maps
(latent, condition) to the mean of a Gaussian over the spectrum with a learnt per-channel noise level, so a generated spectrum is
decoder mean + noise, sampled with z ~ N(0, I). Loss: Gaussian negative log-likelihood + beta * KL.
beta defaults to 5 so that the decoder relies on the condition (the measurement with beta = 1:
docs/notes/generate_cvae.md).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra
from speclearn.io import align_table
from speclearn.models.selection import holdout
from speclearn.models import (SavedModel, SpectralEstimator, TrainingConfig, load_module_arrays, module_arrays,
                              resolve_device, train)



def _mlp(n_in: int, hidden: list[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.LeakyReLU(0.1)]
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


class CVAENet(nn.Module):
    def __init__(self, n_channels: int, n_condition: int, latent_dim: int, hidden: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = _mlp(n_channels + n_condition, [hidden, hidden // 2], 2 * latent_dim)
        self.decoder = _mlp(latent_dim + n_condition, [hidden // 2, hidden], n_channels)
        self.linear = nn.Linear(n_condition, n_channels, bias=False)
        self.log_sigma = nn.Parameter(torch.full((n_channels,), math.log(0.3)))

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.encoder(torch.cat([x, c], dim=1)).chunk(2, dim=1)
        return mu, log_var.clamp(-10, 10)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z, c], dim=1)) + self.linear(c)


def _elbo_loss(beta: float):
    def loss(net: CVAENet, batch: list[torch.Tensor]) -> torch.Tensor:
        x, c = batch
        mu, log_var = net.encode(x, c)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        mean = net.decode(z, c)
        log_sigma = net.log_sigma.clamp(-7, 3)
        nll = (0.5 * ((x - mean) * torch.exp(-log_sigma)) ** 2 + log_sigma).sum(dim=1)
        kl = 0.5 * (mu ** 2 + log_var.exp() - 1 - log_var).sum(dim=1)
        return (nll + beta * kl).mean() / x.shape[1]
    return loss


class ConditionalVAE(SpectralEstimator):
    """fit(spectra, targets) then generate(wanted targets) -> Spectra on the training axis."""

    system, method = "generate", "cvae"

    def __init__(self, latent_dim: int = 8, hidden: int = 256, beta: float = 5.0, epochs: int = 300,
                 learning_rate: float = 1e-3, batch_size: int = 32, weight_decay: float = 0.0, patience: int = 60,
                 validation_fraction: float = 0.15, max_seconds: float | None = None, device: str = "auto",
                 seed: int = 0, progress: bool = False):
        store_params(self, locals())

    # --- conditions ---------------------------------------------------------------------------
    def _read_condition_kind(self, targets: pd.DataFrame, file) -> None:
        numeric = targets.apply(pd.to_numeric, errors="coerce")
        if numeric.notna().all().all():
            self.condition_kind_ = "composition"
            self.condition_columns_ = [str(c) for c in targets.columns]
            values = numeric.to_numpy(float)
            if not np.isfinite(values).all():
                raise InputError("targets hold non-finite values", file=file)
            self.condition_mean_ = values.mean(axis=0)
            self.condition_std_ = np.where(values.std(axis=0) > 0, values.std(axis=0), 1.0)
        elif targets.shape[1] == 1:
            self.condition_kind_ = "class"
            self.condition_columns_ = [str(targets.columns[0])]
            self.classes_ = sorted(targets.iloc[:, 0].astype(str).unique())
        else:
            bad = numeric.columns[numeric.isna().any()][0]
            raise InputError(f"column {bad!r} is not numeric; give numeric composition columns or a single "
                             "class column", file=file)

    def encode_condition(self, targets: pd.DataFrame, *, file=None) -> np.ndarray:
        """(n, condition) network input for a table holding the training condition columns."""
        missing = [c for c in self.condition_columns_ if c not in targets.columns]
        if missing:
            raise InputError(f"missing column {missing[0]!r} (the model was trained on "
                             f"{', '.join(self.condition_columns_)})", file=file)
        if self.condition_kind_ == "class":
            values = targets[self.condition_columns_[0]].astype(str)
            unknown = ~values.isin(self.classes_)
            if unknown.any():
                r = int(np.flatnonzero(unknown.to_numpy())[0])
                raise InputError(f"unknown class {values.iloc[r]!r} (known: {', '.join(self.classes_)})",
                                 file=file, row=r + 1)
            return np.eye(len(self.classes_))[np.searchsorted(self.classes_, values.to_numpy())]
        numeric = targets[self.condition_columns_].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        bad = np.argwhere(~np.isfinite(numeric))
        if len(bad):
            r, c = bad[0]
            raise InputError("value is not a finite number", file=file, row=int(r) + 1,
                             column=self.condition_columns_[c])
        return (numeric - self.condition_mean_) / self.condition_std_

    # --- fit / generate ---------------------------------------------------------------------------
    def fit(self, spectra: Spectra, targets: pd.DataFrame, *, file=None) -> "ConditionalVAE":
        targets = align_table(targets, spectra, file=file)
        if spectra.n_spectra < 4:
            raise InputError(f"only {spectra.n_spectra} spectra; the cVAE needs at least 4", file=spectra.source)
        self._read_condition_kind(targets, file)
        X = spectra.values().astype(float)
        self.axis_ = spectra.axis_spec()
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
        Xs = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32)
        C = torch.as_tensor(self.encode_condition(targets, file=file), dtype=torch.float32)
        torch.manual_seed(self.seed)
        self.net_ = CVAENet(X.shape[1], C.shape[1], self.latent_dim, self.hidden)
        fit, val = holdout(len(X), self.validation_fraction, self.seed, min_size=20)
        config = TrainingConfig.of(self)
        self.history_ = train(self.net_, _elbo_loss(self.beta), [Xs[fit], C[fit]],
                              [Xs[val], C[val]] if len(val) else None, config, device=resolve_device(self.device),
                              description="cVAE")
        self.net_.cpu()
        return self

    @torch.no_grad()
    def generate(self, targets: pd.DataFrame, *, n_per_row: int = 1, seed: int = 0, noise: bool = True,
                 file=None) -> tuple[Spectra, pd.DataFrame]:
        """`n_per_row` spectra per wanted row; returns (spectra, their conditions) with ids `<row id>_g<k>`."""
        if not hasattr(self, "net_"):
            raise InputError("the cVAE is not fitted")
        if n_per_row < 1:
            raise InputError(f"--n-per-row must be at least 1, got {n_per_row}")
        condition = np.repeat(self.encode_condition(targets, file=file), n_per_row, axis=0)
        generator = torch.Generator().manual_seed(seed)
        c = torch.as_tensor(condition, dtype=torch.float32)
        z = torch.randn(len(c), self.latent_dim, generator=generator)
        device = resolve_device(self.device)
        self.net_.to(device).eval()
        mean = self.net_.decode(z.to(device), c.to(device)).cpu()
        self.net_.cpu()
        if noise:
            mean = mean + torch.randn(mean.shape, generator=generator) * torch.exp(self.net_.log_sigma.clamp(-7, 3))
        X = mean.numpy().astype(float) * self.scale_ + self.mean_
        ids = pd.Index([f"{i}_g{k}" for i in targets.index.astype(str) for k in range(n_per_row)], name="id")
        wanted = targets[self.condition_columns_].loc[targets.index.repeat(n_per_row)].set_axis(ids)
        axis = np.asarray(self.axis_["values"], float)
        spectra = Spectra(X, axis, axis_kind=self.axis_["kind"], axis_unit=self.axis_["unit"],
                          meta=pd.DataFrame(index=ids))
        return spectra, wanted

    # --- persistence -------------------------------------------------------------------------
    def _saved_parts(self) -> dict:
        arrays = {**module_arrays(self.net_), "mean": self.mean_, "scale": self.scale_}
        extra = {"condition_kind": self.condition_kind_, "n_channels": int(self.mean_.size)}
        if self.condition_kind_ == "class":
            extra["classes"] = self.classes_
        else:
            arrays.update(condition_mean=self.condition_mean_, condition_std=self.condition_std_)
        return {"targets": self.condition_columns_, "extra": extra, "arrays": arrays}

    def _restore_saved(self, model: SavedModel) -> None:
        self.condition_kind_ = model.extra["condition_kind"]
        self.condition_columns_ = list(model.targets)
        self.mean_, self.scale_ = np.asarray(model.arrays["mean"]), np.asarray(model.arrays["scale"])
        if self.condition_kind_ == "class":
            self.classes_ = list(model.extra["classes"])
            n_condition = len(self.classes_)
        else:
            self.condition_mean_ = np.asarray(model.arrays["condition_mean"])
            self.condition_std_ = np.asarray(model.arrays["condition_std"])
            n_condition = len(self.condition_columns_)
        net = CVAENet(int(model.extra["n_channels"]), n_condition, self.latent_dim, self.hidden)
        self.net_ = load_module_arrays(net, model.arrays)
