"""VAE + MLP transfer (Vrábel et al., JAAS 2023): a VAE learns the primary latent space, one MLP per secondary maps into it.

Transfer = map (secondary -> primary latent mean) followed by the VAE decoder. Every secondary
instrument shares the primary latent space: `add_secondary` trains only a new map.

The map is a linear prior refined by the MLP (`prior="pds"`, the default): piecewise direct
standardisation predicts the primary channels the secondary covers, a ridge "partial encoder"
(fitted on primary spectra only, e.g. a large unpaired `library`) maps them to latent means, and
the MLP learns only a residual on top (its last layer starts at zero; a residual that does not
lower the validation error is dropped). The decoder fills in the primary channels the secondary
never sees from what the library taught the VAE. Where the decoder reconstructs worse than PDS
predicts (a small library, e.g. a few dozen real pairs), the channels the secondary covers are
taken from PDS directly and only the others from the decoder (`output="direct"`) or from a ridge
map of the covered channels fitted on primary spectra alone (`"linear"`), whichever the validation
pairs prefer. `prior="none"` is the seed's plain MLP (also used for a secondary whose
range covers fewer than 2 primary channels).
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import linalg

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra
from speclearn.models import TrainingConfig, load_module_arrays, module_arrays, predict_batches, resolve_device, train
from speclearn.transfer import data
from speclearn.transfer.base import DEFAULT_SECONDARY, TransferModel, check_name
from speclearn.transfer.pds import apply_windows, fit_windows, overlap_layout, overlap_mask
from speclearn.transfer.networks import (VAE, AugmentedRegressionLoss, InstrumentDrift, VAELoss, dense_stack,
                                         n_parameters, regression_loss)

PRIORS = ("pds", "none")
#: ridge strengths of the partial encoder, relative to the mean squared singular value of its input
RIDGE_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: ridge of the prior's PDS windows (as `PDSTransfer`'s default)
PDS_RIDGE = 1e-3
#: PDS half-widths of the prior (wider than `PDSTransfer`'s: the partial encoder averages their noise out)
HALF_WIDTH_GRID = (1, 2, 4, 8, 16)
#: augmented copies of the training pairs the prior's PDS is fitted on (with augmentation on)
AUGMENT_COPIES = 4
#: what the prior predicts: every channel decoded; the covered channels from PDS and the rest decoded
#: (`direct`) or from a ridge map of the covered ones fitted on primary spectra (`linear`)
OUTPUTS = ("decoded", "direct", "linear")
#: the augmented prior is kept while its validation error is at most this multiple of the plain prior's
AUGMENT_TOLERANCE = 1.5
#: relative drop of the validation error the MLP residual must bring to be kept (more than rounding)
RESIDUAL_GAIN = 1e-6


def ridge_path(X: np.ndarray, Y: np.ndarray, grid) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ridge maps (W, b) from `X` to `Y`, one per relative strength in `grid`, from one SVD."""
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    U, s, Vt = linalg.svd(X - x_mean, full_matrices=False, lapack_driver="gesdd")
    projected = U.T @ (Y - y_mean)
    maps = []
    for strength in grid:
        W = Vt.T @ ((s / (s ** 2 + strength * np.mean(s ** 2)))[:, None] * projected)
        maps.append((W, y_mean - x_mean @ W))
    return maps


class VAEMLPTransfer(TransferModel):
    """The composed model of Vrábel et al.: VAE on the primary spectra + a map from each secondary to the latent means.

    `prior`: "pds" (PDS + ridge partial encoder, MLP residual; see the module) or "none" (the seed's
    MLP alone). `fit(..., library=...)` adds unpaired primary spectra to the VAE's training set and
    to the partial encoder's. `augment_response` / `augment_shift` (not in the seed; 0 turns them
    off) train the MLPs and the PDS prior on secondary spectra with random smooth response changes
    (log-response Legendre coefficients of that sd) and calibration shifts (up to that many
    channels; `InstrumentDrift`): what another day of the secondary looks like.
    """

    method = "vae-mlp"
    min_pairs = 10

    def __init__(self, hidden=(1024, 512), latent: int = 64, mlp_hidden=(128, 512), vae_epochs: int = 50,
                 mlp_epochs: int = 100, patience: int = 10, batch_size: int = 128, learning_rate: float = 1e-4,
                 weight_decay: float = 1e-5, beta_max: float = 0.5, kl_cycles: int = 4,
                 baseline_window: int = 100, baseline_sigma: float = 50.0, validation_fraction: float = 0.2,
                 augment_response: float = 0.1, augment_shift: float = 1.0, prior: str = "pds",
                 half_width_grid=HALF_WIDTH_GRID, ridge_grid=RIDGE_GRID, seed: int = 0, device: str = "auto",
                 max_seconds: float | None = None, progress: bool = False):
        store_params(self, locals())

    # --- training -------------------------------------------------------------------------
    def fit(self, primary: Spectra, secondary: Spectra, *, library: Spectra | None = None,
            validation: tuple[Spectra, Spectra] | None = None, name: str = DEFAULT_SECONDARY) -> "VAEMLPTransfer":
        """Fit on spectra paired by id; `library`: unpaired primary spectra (same axis) the VAE also learns."""
        if self.prior not in PRIORS:
            raise InputError(f"prior must be one of {', '.join(PRIORS)}, not {self.prior!r}")
        self._library = self._check_library(library, primary)
        try:
            return super().fit(primary, secondary, validation=validation, name=name)
        finally:
            del self._library

    @staticmethod
    def _check_library(library: Spectra | None, primary: Spectra) -> Spectra | None:
        if library is not None:
            library.check_trainable()
            library.check_axis_matches(primary.axis_spec(), what="the paired primary spectra")
            data.check_finite(library)
        return library

    def _config(self, epochs: int, patience: int) -> TrainingConfig:
        return TrainingConfig.of(self, epochs=epochs, patience=patience)

    def _fit_scaled(self, Xs, Xp, Xs_val, Xp_val, *, name: str) -> None:
        device = resolve_device(self.device)
        library = self._scaled_library(self._library)
        X_vae = Xp if library is None else np.concatenate([np.asarray(library), np.asarray(Xp)])
        torch.manual_seed(self.seed)  # the initial weights, like every random step, follow the seed
        self.vae_ = VAE(Xp.shape[1], tuple(self.hidden), self.latent)
        steps = self.vae_epochs * math.ceil(len(X_vae) / self.batch_size)
        # the VAE trains its full schedule (seed: 50 epochs); the best validation reconstruction is kept
        history = train(self.vae_, VAELoss(steps, self.beta_max, self.kl_cycles), [data.Rows(X_vae)],
                        [data.Rows(Xp_val)], self._config(self.vae_epochs, self.vae_epochs + 1),
                        device=device, description="VAE")
        self.vae_.cpu().eval()
        self.history_ = {"vae": history.as_dict()}
        self.reconstruction_rse_ = self._rse(self._decode(self.encode_scaled(Xp_val)), Xp_val)
        self.n_library_ = 0 if library is None else len(library)
        self.mlps_: dict[str, torch.nn.Module] = {}
        self.priors_: dict[str, dict[str, np.ndarray]] = {}
        self.prior_info_: dict[str, dict] = {}
        self._fit_mlp(Xs, Xp, Xs_val, Xp_val, name=name, scaler=self.secondary_pipes_[name].named_steps["scale"],
                      library=library)

    def _scaled_library(self, library: Spectra | None) -> np.ndarray | None:
        return None if library is None else data.scaled_array(self.primary_pipe_, library)

    def _rse(self, predicted_scaled: np.ndarray, Xp: np.ndarray) -> float:
        """RSE of scaled predictions against scaled primary spectra, in the unscaled primary space."""
        scale = self.primary_pipe_.named_steps["scale"].scale_
        truth = np.asarray(Xp, float) * scale
        return float(np.sum(((predicted_scaled - Xp) * scale) ** 2) / np.sum((truth - truth.mean(axis=0)) ** 2))

    def _augment(self, scaler):
        if self.augment_response > 0 or self.augment_shift > 0:
            return InstrumentDrift(scaler.mean_, scaler.scale_, seed=self.seed, response_sd=self.augment_response,
                                   max_shift=self.augment_shift)
        return None

    def _fit_prior(self, Xs, Xp, Xs_val, Xp_val, *, name: str, scaler, library: np.ndarray | None) -> bool:
        """PDS on the covered primary channels, then a ridge map from those channels to the latent means.

        The ridge map is fitted on primary spectra alone (library and paired primaries): it needs no
        pairs. Half-width, ridge strength and output (`OUTPUTS`) are chosen by the validation pairs' error.
        With augmentation on, the PDS windows are also fitted on augmented copies (other days' instruments);
        that prior is kept unless its validation error exceeds `AUGMENT_TOLERANCE` x the plain prior's
        (a drift model far larger than the instruments' differences). Returns whether it was kept.
        """
        inside, resampler = overlap_layout(self.axis_, self.secondary_axes_[name])
        Xs, Xs_val, Xp = np.asarray(Xs, float), np.asarray(Xs_val, float), np.asarray(Xp, float)
        augment = self._augment(scaler)
        R_val = resampler.transform(Xs_val)
        primaries = Xp if library is None else np.vstack([np.asarray(library, float), Xp])
        # one ridge path from the covered channels to the latent means and to the channels outside
        maps = ridge_path(primaries[:, inside], np.hstack([self.encode_scaled(primaries), primaries[:, ~inside]]),
                          self.ridge_grid)
        best = {}
        for augmented in (True, False) if augment is not None else (False,):
            Xs_fit, Xp_fit = Xs, Xp
            if augmented:  # the PDS windows also see other days' instruments
                copies = [augment(torch.from_numpy(Xs).float()).numpy() for _ in range(AUGMENT_COPIES)]
                Xs_fit, Xp_fit = np.vstack([Xs, *copies]), np.vstack([Xp] * (AUGMENT_COPIES + 1))
            R = resampler.transform(Xs_fit)
            scores = {}
            for width in self.half_width_grid:
                coef, intercept = fit_windows(R, Xp_fit[:, inside], width, PDS_RIDGE)
                covered = apply_windows(R_val, coef, intercept)
                for ridge, (W, b) in zip(self.ridge_grid, maps):
                    decoded = self._decode(covered @ W[:, :self.latent] + b[:self.latent])
                    outside = covered @ W[:, self.latent:] + b[self.latent:]
                    for output in OUTPUTS:
                        error = self._validation_error(self._compose(decoded, covered, outside, inside, output), Xp_val)
                        scores[(width, ridge, output)] = (error, coef, intercept, W, b)
            best[augmented] = (min(scores, key=lambda key: scores[key][0]), scores)
        error_of = {augmented: scores[key][0] for augmented, (key, scores) in best.items()}
        augmented = True in best and error_of[True] <= AUGMENT_TOLERANCE * error_of[False]
        (width, ridge, output), scores = best[augmented]
        error, coef, intercept, W, b = scores[(width, ridge, output)]
        self.priors_[name] = {"inside": inside.astype(np.uint8), "coef": coef.astype(np.float32),
                              "intercept": intercept.astype(np.float32), "W": W[:, :self.latent].astype(np.float32),
                              "b": b[:self.latent].astype(np.float32)}
        if output == "linear":
            self.priors_[name].update(W_out=W[:, self.latent:].astype(np.float32),
                                      b_out=b[self.latent:].astype(np.float32))
        self.prior_info_[name] = {"half_width": width, "ridge": ridge, "output": output, "augmented": augmented,
                                  "validation_mse": error, "validation_mse_plain": error_of[False],
                                  "validation_scores": {f"{w},{r},{o}": v[0] for (w, r, o), v in scores.items()}}
        return augmented

    @staticmethod
    def _compose(decoded: np.ndarray | None, covered: np.ndarray, outside: np.ndarray | None, inside: np.ndarray,
                 output: str) -> np.ndarray:
        """The prediction of `output` (see `OUTPUTS`) from the decoded spectra, the PDS prediction of
        the covered channels and the ridge prediction of the others."""
        if output == "decoded":
            return decoded
        composed = np.empty((len(covered), inside.size)) if output == "linear" else np.array(decoded, copy=True)
        composed[:, inside] = covered
        if output == "linear":
            composed[:, ~inside] = outside
        return composed

    def _prior_covered(self, Xs: np.ndarray, name: str) -> np.ndarray:
        """The prior's PDS prediction of the primary channels the secondary covers."""
        prior = self.priors_[name]
        _, resampler = overlap_layout(self.axis_, self.secondary_axes_[name])
        return apply_windows(resampler.transform(np.asarray(Xs, float)), prior["coef"], prior["intercept"])

    def _prior_latent(self, Xs: np.ndarray, name: str) -> np.ndarray:
        """The linear prior's latent means (zeros without a prior)."""
        if name not in self.priors_:
            return np.zeros((len(Xs), self.latent), np.float32)
        prior = self.priors_[name]
        return (self._prior_covered(Xs, name) @ prior["W"] + prior["b"]).astype(np.float32)

    def _fit_mlp(self, Xs, Xp, Xs_val, Xp_val, *, name: str, scaler, library: np.ndarray | None = None) -> None:
        """Train the map of secondary `name` onto the VAE's latent means of the paired primary spectra."""
        device = resolve_device(self.device)
        augment = self._augment(scaler)
        if self.prior != "none" and overlap_mask(self.axis_, self.secondary_axes_[name]).sum() >= 2:
            if not self._fit_prior(Xs, Xp, Xs_val, Xp_val, name=name, scaler=scaler, library=library):
                augment = None  # the MLP residual trains without the drift model the prior rejected
        start, start_val = self._prior_latent(Xs, name), self._prior_latent(Xs_val, name)
        targets, targets_val = self.encode_scaled(Xp) - start, self.encode_scaled(Xp_val) - start_val
        torch.manual_seed(self.seed)
        mlp = dense_stack([Xs.shape[1], *self.mlp_hidden, self.latent])
        if name in self.priors_:  # a residual on the prior: the MLP starts at exactly the prior
            torch.nn.init.zeros_(mlp[-1].weight)
            torch.nn.init.zeros_(mlp[-1].bias)
        if self.prior_info_.get(name, {}).get("output") == "linear":  # no decoder, so no residual to learn
            self.mlps_[name] = mlp.eval()
            self.history_[f"mlp.{name}"] = {"train_loss": [], "val_loss": [], "best_epoch": 0, "seconds": 0.0,
                                            "stopped": "not trained: the linear output uses no decoder"}
            info = self.prior_info_[name]
            info.update(residual_kept=False, validation_mse_with_residual=info["validation_mse"])
            return
        loss = regression_loss if augment is None else AugmentedRegressionLoss(augment)
        history = train(mlp, loss, [data.Rows(Xs), torch.from_numpy(targets)],
                        [data.Rows(Xs_val), torch.from_numpy(targets_val)],
                        self._config(self.mlp_epochs, self.patience), device=device, description=f"MLP {name}")
        self.mlps_[name] = mlp.cpu().eval()
        self.history_[f"mlp.{name}"] = history.as_dict()
        if name in self.priors_:
            with_residual = self._validation_error(self._predict_scaled(Xs_val, name=name), Xp_val)
            keep = with_residual < (1 - RESIDUAL_GAIN) * self.prior_info_[name]["validation_mse"]
            if not keep:  # the residual did not help on validation: the map is the prior alone
                torch.nn.init.zeros_(mlp[-1].weight)
                torch.nn.init.zeros_(mlp[-1].bias)
            self.prior_info_[name].update(residual_kept=bool(keep), validation_mse_with_residual=with_residual)

    def add_secondary(self, primary: Spectra, secondary: Spectra, name: str, *, library: Spectra | None = None,
                      validation: tuple[Spectra, Spectra] | None = None) -> "VAEMLPTransfer":
        """Connect another secondary instrument: fit its preprocessing and map; the VAE stays as it is.

        `library` (unpaired primary spectra) only feeds the prior's partial encoder.
        """
        check_name(name)
        primary, secondary, validation = self._paired_split(primary, secondary, validation)
        primary.check_axis_matches(self.axis_, what="the model's primary")
        library = self._check_library(library, primary)
        pipe = data.fit_pipeline(secondary, self.baseline_window, self.baseline_sigma)
        self.secondary_axes_[name] = secondary.axis_spec()
        try:
            with tempfile.TemporaryDirectory(prefix="speclearn-transfer-") as spool:
                Xp, Xs, Xp_val, Xs_val = data.scaled_arrays(
                    [(self.primary_pipe_, primary), (pipe, secondary), (self.primary_pipe_, validation[0]),
                     (pipe, validation[1])], Path(spool))
                self._fit_mlp(Xs, Xp, Xs_val, Xp_val, name=name, scaler=pipe.named_steps["scale"],
                              library=self._scaled_library(library))
        except BaseException:
            for fitted in (self.secondary_axes_, self.priors_, self.prior_info_, self.mlps_):
                fitted.pop(name, None)
            raise
        self.secondary_pipes_[name] = pipe
        return self

    # --- latent space ---------------------------------------------------------------------
    def encode_scaled(self, Xp: np.ndarray) -> np.ndarray:
        return predict_batches(lambda x: self.vae_.encode(x)[0], Xp, device=resolve_device(self.device),
                               modules=(self.vae_,)).astype(np.float32)

    def _decode(self, Z: np.ndarray) -> np.ndarray:
        return predict_batches(self.vae_.decoder, Z, device=resolve_device(self.device), modules=(self.vae_,))

    def reconstruct(self, primary: Spectra) -> Spectra:
        """Primary spectra passed through the VAE (latent mean, decoded): what the decoder can reach."""
        primary.check_axis_matches(self.axis_, what="the model's primary")
        values = data.unscale(self.primary_pipe_, self._decode(self.encode_scaled(
            data.scaled_array(self.primary_pipe_, primary))))
        return data.as_output(primary, values.astype(np.float32), self.axis_)

    def _predict_scaled(self, Xs: np.ndarray, *, name: str) -> np.ndarray:
        output = self.prior_info_.get(name, {}).get("output", "decoded")
        if output == "linear":  # the decoder is not used
            prior, covered = self.priors_[name], self._prior_covered(Xs, name)
            return self._compose(None, covered, covered @ prior["W_out"] + prior["b_out"],
                                 prior["inside"].astype(bool), output)
        mlp, m = self.mlps_[name], Xs.shape[1]
        inputs = np.concatenate([np.asarray(Xs, np.float32), self._prior_latent(Xs, name)], axis=1)
        decoded = predict_batches(lambda x: self.vae_.decoder(mlp(x[:, :m]) + x[:, m:]), inputs,
                                  device=resolve_device(self.device), modules=(self.vae_, mlp))
        if output == "decoded":
            return decoded
        return self._compose(decoded, self._prior_covered(Xs, name), None, self.priors_[name]["inside"].astype(bool),
                             output)

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
        for name, prior in self.priors_.items():
            arrays.update({f"prior.{name}.{key}": value for key, value in prior.items()})
        extra = {"history": self.history_, "compression_ratio": self.compression_ratio(),
                 "decoder_parameters": n_parameters(self.vae_.decoder), "prior_info": self.prior_info_,
                 "reconstruction_rse": self.reconstruction_rse_, "n_library": self.n_library_}
        return arrays, {}, extra

    def _restore(self, arrays, estimators, extra) -> None:
        self.vae_ = load_module_arrays(VAE(len(self.axis_["values"]), tuple(self.hidden), self.latent),
                                       arrays, "vae.")
        self.mlps_ = {name: load_module_arrays(dense_stack([len(axis["values"]), *self.mlp_hidden, self.latent]),
                                               arrays, f"mlp.{name}.")
                      for name, axis in self.secondary_axes_.items()}
        self.priors_ = {}
        for key, value in arrays.items():
            if key.startswith("prior."):
                name, part = key.removeprefix("prior.").rsplit(".", 1)
                self.priors_.setdefault(name, {})[part] = np.asarray(value)
        self.prior_info_ = extra.get("prior_info", {})
        self.reconstruction_rse_ = extra.get("reconstruction_rse")
        self.n_library_ = extra.get("n_library", 0)
        self.history_ = extra.get("history", {})
