"""VAE + MLP transfer (Vrábel et al., JAAS 2023): a VAE learns the primary latent space, one MLP per secondary maps into it.

Transfer = MLP (secondary -> primary latent mean) followed by the VAE decoder. Every secondary
instrument shares the primary latent space: `add_secondary` trains only a new MLP.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speclearn.core.memory import iter_blocks
from speclearn.core.spectra import Spectra
from speclearn.models import TrainingConfig, load_module_arrays, module_arrays, predict_batches, resolve_device, train
from speclearn.transfer import data
from speclearn.transfer.base import TransferModel, check_name
from speclearn.transfer.networks import (VAE, AugmentedRegressionLoss, InstrumentDrift, VAELoss, dense_stack,
                                         n_parameters, regression_loss)


class VAEMLPTransfer(TransferModel):
    """Seed-003 composed model: VAE on the primary spectra + MLP from each secondary to the latent means.

    `augment_response` / `augment_shift` (off by default, not in the seed) train the MLPs on
    secondary spectra with random smooth response changes and calibration shifts (`InstrumentDrift`).
    """

    method = "vae-mlp"
    min_pairs = 10

    def __init__(self, hidden=(1024, 512), latent: int = 64, mlp_hidden=(128, 512), vae_epochs: int = 50,
                 mlp_epochs: int = 100, patience: int = 10, batch_size: int = 128, learning_rate: float = 1e-4,
                 weight_decay: float = 1e-5, beta_max: float = 0.5, kl_cycles: int = 4,
                 baseline_window: int = 100, baseline_sigma: float = 50.0, validation_fraction: float = 0.2,
                 augment_response: float = 0.0, augment_shift: float = 0.0, seed: int = 0, device: str = "auto",
                 max_seconds: float | None = None, progress: bool = False):
        self.hidden = hidden
        self.latent = latent
        self.mlp_hidden = mlp_hidden
        self.vae_epochs = vae_epochs
        self.mlp_epochs = mlp_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.beta_max = beta_max
        self.kl_cycles = kl_cycles
        self.baseline_window = baseline_window
        self.baseline_sigma = baseline_sigma
        self.validation_fraction = validation_fraction
        self.augment_response = augment_response
        self.augment_shift = augment_shift
        self.seed = seed
        self.device = device
        self.max_seconds = max_seconds
        self.progress = progress

    # --- training -------------------------------------------------------------------------
    def _config(self, epochs: int, patience: int) -> TrainingConfig:
        return TrainingConfig(epochs=epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                              weight_decay=self.weight_decay, patience=patience, max_seconds=self.max_seconds,
                              seed=self.seed, progress=self.progress)

    def _fit_scaled(self, Xs, Xp, Xs_val, Xp_val, *, name: str) -> None:
        device = resolve_device(self.device)
        torch.manual_seed(self.seed)  # the initial weights, like every random step, follow the seed
        self.vae_ = VAE(Xp.shape[1], tuple(self.hidden), self.latent)
        steps = self.vae_epochs * math.ceil(len(Xp) / self.batch_size)
        # the VAE trains its full schedule (seed: 50 epochs); the best validation reconstruction is kept
        history = train(self.vae_, VAELoss(steps, self.beta_max, self.kl_cycles), [data.Rows(Xp)],
                        [data.Rows(Xp_val)], self._config(self.vae_epochs, self.vae_epochs + 1),
                        device=device, description="VAE")
        self.vae_.cpu()
        self.history_ = {"vae": history.as_dict()}
        self.mlps_: dict[str, torch.nn.Module] = {}
        self._fit_mlp(Xs, Xp, Xs_val, Xp_val, name=name, scaler=self.secondary_pipes_[name].named_steps["scale"])

    def _fit_mlp(self, Xs, Xp, Xs_val, Xp_val, *, name: str, scaler) -> None:
        """Train the MLP of secondary `name` on the VAE's latent means of the paired primary spectra."""
        device = resolve_device(self.device)
        targets, targets_val = self.encode_scaled(Xp), self.encode_scaled(Xp_val)
        torch.manual_seed(self.seed)
        mlp = dense_stack([Xs.shape[1], *self.mlp_hidden, self.latent])
        loss = regression_loss
        if self.augment_response > 0 or self.augment_shift > 0:
            loss = AugmentedRegressionLoss(InstrumentDrift(scaler.mean_, scaler.scale_, seed=self.seed,
                                                           response_sd=self.augment_response,
                                                           max_shift=self.augment_shift))
        history = train(mlp, loss, [data.Rows(Xs), torch.from_numpy(targets)],
                        [data.Rows(Xs_val), torch.from_numpy(targets_val)],
                        self._config(self.mlp_epochs, self.patience), device=device, description=f"MLP {name}")
        self.mlps_[name] = mlp.cpu().eval()
        self.history_[f"mlp.{name}"] = history.as_dict()

    def add_secondary(self, primary: Spectra, secondary: Spectra, name: str, *,
                      validation: tuple[Spectra, Spectra] | None = None) -> "VAEMLPTransfer":
        """Connect another secondary instrument: fit its preprocessing and MLP; the VAE stays as it is."""
        check_name(name)
        primary, secondary, validation = self._paired_split(primary, secondary, validation)
        primary.check_axis_matches(self.axis_, what="the model's primary")
        pipe = data.fit_pipeline(secondary, self.baseline_window, self.baseline_sigma)
        with tempfile.TemporaryDirectory(prefix="speclearn-transfer-") as spool:
            Xp, Xs, Xp_val, Xs_val = data.scaled_arrays(
                [(self.primary_pipe_, primary), (pipe, secondary), (self.primary_pipe_, validation[0]),
                 (pipe, validation[1])], Path(spool))
            self._fit_mlp(Xs, Xp, Xs_val, Xp_val, name=name, scaler=pipe.named_steps["scale"])
        self.secondary_axes_[name] = secondary.axis_spec()
        self.secondary_pipes_[name] = pipe
        return self

    # --- latent space ---------------------------------------------------------------------
    def encode_scaled(self, Xp: np.ndarray) -> np.ndarray:
        return predict_batches(lambda x: self.vae_.encode(x)[0], Xp, device=resolve_device(self.device),
                               modules=(self.vae_,)).astype(np.float32)

    def latent_means(self, primary: Spectra) -> np.ndarray:
        """Latent means of measured primary spectra."""
        primary.check_axis_matches(self.axis_, what="the model's primary")
        return np.concatenate([self.encode_scaled(self.primary_pipe_.transform(block))
                               for _, _, _, block in iter_blocks(primary.flat(), data.BLOCK_ROWS)])

    def _predict_scaled(self, Xs: np.ndarray, *, name: str) -> np.ndarray:
        mlp = self.mlps_[name]
        return predict_batches(lambda x: self.vae_.decoder(mlp(x)), Xs, device=resolve_device(self.device),
                               modules=(self.vae_, mlp))

    def sample(self, n: int, seed: int = 0) -> Spectra:
        """New primary spectra decoded from latent points drawn from N(0, I) (for augmentation)."""
        z = torch.randn(n, self.latent, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            values = data.unscale(self.primary_pipe_, self.vae_.decoder(z).numpy())
        return Spectra(values.astype(np.float32), np.asarray(self.axis_["values"]),
                       axis_kind=self.axis_["kind"], axis_unit=self.axis_["unit"])

    def compression_ratio(self, n_spectra: int | None = None) -> float:
        """Seed eq. 1: CR = M_X N / (M_L N + P), P the decoder's parameters, N the library size."""
        n = self.n_train_ if n_spectra is None else n_spectra
        m_x = len(self.axis_["values"])
        return m_x * n / (self.latent * n + n_parameters(self.vae_.decoder))

    # --- persistence ----------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
        arrays = module_arrays(self.vae_, "vae.")
        for name, mlp in self.mlps_.items():
            arrays.update(module_arrays(mlp, f"mlp.{name}."))
        extra = {"history": self.history_, "compression_ratio": self.compression_ratio(),
                 "decoder_parameters": n_parameters(self.vae_.decoder)}
        return arrays, {}, extra

    def _restore(self, arrays, estimators, extra) -> None:
        self.vae_ = load_module_arrays(VAE(len(self.axis_["values"]), tuple(self.hidden), self.latent),
                                       arrays, "vae.")
        self.mlps_ = {name: load_module_arrays(dense_stack([len(axis["values"]), *self.mlp_hidden, self.latent]),
                                               arrays, f"mlp.{name}.")
                      for name, axis in self.secondary_axes_.items()}
        self.history_ = extra.get("history", {})
