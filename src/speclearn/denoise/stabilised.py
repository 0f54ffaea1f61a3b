"""What the self-supervised U-Net denoisers share (Noise2Noise on replicates, Noise2Self on single spectra).

Output = Savitzky-Golay(spectrum) + U-Net(stabilised spectrum). The smoothing window (0: none) is
chosen on the training spectra by the method's own self-supervised loss, and the U-Net's last layer
starts at zero, so training starts from the best classical smoother and only moves away from it
where the held-out loss improves; if it never does, the returned denoiser is that smoother.
A `gated` model, for peaks unlike those of training (narrower, brighter), gives its U-Net the
intensities (one global scale) and weighs the smoother's change per channel:
spectrum + g * (Savitzky-Golay - spectrum) + U-Net, g = 2 sigmoid(second U-Net output) in (0, 2),
1 at the start. Why: docs/notes/denoise_stabilised.md.
The U-Net sees variance-stabilised spectra (the `NoiseModel` estimated from the training data, then
one global scale); its output and the loss are on the measured intensities (divided by one global
scale), where an independent noisy target is unbiased.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.signal import savgol_coeffs
from torch import nn
from torch.nn import functional as F

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.denoise.base import Denoiser, intensity_scale
from speclearn.denoise.networks import UNet1d
from speclearn.denoise.noise_model import NoiseModel, estimate_noise_model
from speclearn.models import (TrainingConfig, load_module_arrays, module_arrays, predict_batches, resolve_device,
                              train)
from speclearn.models.training import evaluate

#: Savitzky-Golay windows (polynomial order 2) tried as the starting point; 0 = no smoothing
WINDOWS = (0, 5, 7, 9, 11, 15, 21, 31)


def smooth(X: np.ndarray, window: int) -> np.ndarray:
    """Savitzky-Golay (order 2) with edge replication, as the network applies it."""
    if not window:
        return X
    kernel = savgol_coeffs(window, 2)
    padded = np.pad(X, ((0, 0), (window // 2, window // 2)), mode="edge")
    return np.stack([np.convolve(row, kernel[::-1], mode="valid") for row in padded])


class SmoothedUNet(nn.Module):
    """(batch, 2, channels) = [stabilised z, intensities x] -> savgol(x) + UNet(z), or with `gated`
    x + 2 sigmoid(UNet(x)[1]) * (savgol(x) - x) + UNet(x)[0]."""

    def __init__(self, width: int, levels: int, kernel_size: int, window: int, gated: bool = False):
        super().__init__()
        self.gated = bool(gated)
        self.net = UNet1d(width=width, levels=levels, kernel_size=kernel_size, outputs=2 if self.gated else 1)
        nn.init.zeros_(self.net.out.weight)
        nn.init.zeros_(self.net.out.bias)
        self.window = int(window)
        kernel = savgol_coeffs(self.window, 2) if self.window else np.ones(1)
        self.register_buffer("kernel", torch.as_tensor(kernel[::-1].copy(), dtype=torch.float32).view(1, 1, -1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        z, x = inputs[:, 0], inputs[:, 1]
        smoothed = x
        if self.window:
            half = self.window // 2
            smoothed = F.conv1d(F.pad(x.unsqueeze(1), (half, half), mode="replicate"), self.kernel)[:, 0]
        if not self.gated:
            return smoothed + self.net(z)
        correction, gate = self.net(x).unbind(1)
        return x + 2.0 * torch.sigmoid(gate) * (smoothed - x) + correction


class StabilisedDenoiser(Denoiser):
    """Base of the self-supervised U-Nets: noise model, smoother choice, training and persistence."""


    def __init__(self, width: int = 16, levels: int = 3, kernel_size: int = 5, noise_model: str = "auto",
                 epochs: int = 200, batch_size: int = 16, learning_rate: float = 1e-3, validation_fraction: float = 0.2,
                 patience: int = 30, max_seconds: float | None = None, seed: int = 0, device: str = "auto",
                 progress: bool = False):
        store_params(self, locals())

    # --- for the subclasses ----------------------------------------------------------------------
    def _window_loss(self, X: np.ndarray, window: int) -> float:
        raise NotImplementedError

    def _prepare(self, X: np.ndarray, codes: np.ndarray | None) -> None:
        """Noise model, scales, smoothing window and a fresh network for training spectra X."""
        if self.noise_model not in ("auto", "gaussian"):
            raise InputError(f"noise_model must be 'auto' or 'gaussian', got {self.noise_model!r}")
        model = estimate_noise_model(X, codes)
        if self.noise_model == "gaussian" and model.poisson:
            model = NoiseModel(0.0, model.read_variance + model.gain * max(float(np.median(X)) - model.offset, 0.0),
                               model.offset)
        self.noise_model_ = model
        self.z_scale_, self.scale_ = intensity_scale(model.forward(X)), intensity_scale(X)
        windows = [w for w in WINDOWS if w < X.shape[1]]
        self.window_losses_ = {w: self._window_loss(X, w) for w in windows}
        self.window_ = min(self.window_losses_, key=self.window_losses_.get)
        self._new_module()

    def _new_module(self, gated: bool = False) -> None:
        torch.manual_seed(self.seed)  # the network's initial weights follow the estimator's seed
        self.module_ = SmoothedUNet(self.width, self.levels, self.kernel_size, self.window_, gated)

    def _inputs(self, X: np.ndarray, noise_model: NoiseModel | None = None) -> torch.Tensor:
        """[stabilised, intensities] channels for the network; `noise_model`: X's own, if not the fitted one."""
        z = (noise_model or self.noise_model_).forward(X) / self.z_scale_
        return torch.as_tensor(np.stack([z, X / self.scale_], axis=1), dtype=torch.float32)

    def _train(self, loss, fit_data: list[torch.Tensor], val_data: list[torch.Tensor] | None, description: str, *,
               share: int = 1) -> None:
        """Train `module_`; `share`: how many networks split `max_seconds`."""
        torch.manual_seed(self.seed)
        seconds = None if self.max_seconds is None else self.max_seconds / share
        config = TrainingConfig.of(self, max_seconds=seconds)
        start = None
        if val_data is not None:  # the smoother alone, before any training: kept unless training beats it
            start = (evaluate(self.module_, loss, val_data, self.batch_size, torch.device("cpu")),
                     {k: v.clone() for k, v in self.module_.state_dict().items()})
        self.history_ = train(self.module_, loss, fit_data, val_data, config, device=resolve_device(self.device),
                              description=description).as_dict()
        self.module_.cpu().eval()
        best = min(self.history_["val_loss"], default=np.inf)
        self.history_["smoother_val_loss"] = start[0] if start else None
        if start is not None and not best < start[0]:
            self.module_.load_state_dict(start[1])
            self.history_["stopped"] += "; the smoother alone was better on validation: network output zeroed"

    # --- Denoiser ----------------------------------------------------------------------------------
    def _clean(self, X: np.ndarray) -> np.ndarray:
        device = resolve_device(self.device)
        out = predict_batches(self.module_, self._inputs(X).numpy(), batch_size=64, device=device,
                              modules=[self.module_])
        return out.astype(np.float64) * self.scale_

    def _state(self):
        return module_arrays(self.module_), {}, {"noise_model": self.noise_model_.as_dict(), "z_scale": self.z_scale_,
                                                 "scale": self.scale_, "window": self.window_,
                                                 "gated": self.module_.gated,
                                                 "history": getattr(self, "history_", {})}

    def _restore(self, arrays, estimators, extra) -> None:
        self.noise_model_ = NoiseModel(**extra["noise_model"])
        self.z_scale_, self.scale_, self.window_ = float(extra["z_scale"]), float(extra["scale"]), int(extra["window"])
        self.history_ = extra.get("history", {})
        gated = bool(extra.get("gated", False))  # models saved before the gate have none
        self.module_ = load_module_arrays(SmoothedUNet(self.width, self.levels, self.kernel_size, self.window_, gated),
                                          arrays)
