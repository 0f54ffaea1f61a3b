"""CNN frequency and phase correction of single transients (after Tapper 2021, Ma 2022).

A 1-D CNN reads the complex spectrum (0-4.4 ppm, real and imaginary channels) of one transient and
regresses its frequency offset (Hz) and phase (as cos, sin), trained on transients simulated from the
basis with offsets uniform in +-max_shift_hz and +-180 deg, the simulator's line shapes, water,
lipids, baseline and eddy currents, and noise at per-transient SNR in `snr`. Offsets are absolute
(relative to the basis), so the CNN needs no reference and no starting point; `auto` alignment refines
its estimate with spectral registration.
"""
from __future__ import annotations

import numpy as np
import torch

from speclearn.core.params import store_params
from speclearn.models.device import resolve_device
from speclearn.models.estimator import SpectralEstimator
from speclearn.models.persistence import SavedModel
from speclearn.models.training import TrainingConfig, load_module_arrays, module_arrays, predict_batches, train
from speclearn.mrs.basis import Basis, load_basis
from speclearn.mrs.data import MRSData, ppm_slice, shift_phase, to_spectrum
from speclearn.mrs.networks import Encoder, window_input
from speclearn.mrs.simulate import MRSSimConfig, simulate_mrs



def simulated_transients(basis: Basis, n_scans: int, augment: int, *, max_shift_hz: float, snr: tuple[float, float],
                         seed: int, corrupted_fraction: float = 0.0) -> tuple[MRSData, np.ndarray, np.ndarray]:
    """Single transients with known absolute offsets: (data, shift_hz, phase_deg)."""
    rng = np.random.default_rng(seed)
    config = MRSSimConfig(transients=1, shift_hz=1e-9, phase0_deg=0.0, corrupted_fraction=0.0, snr=(1e9, 1e9))
    clean = simulate_mrs(n_scans, seed=seed, basis=basis, config=config).clean
    ppm = clean.ppm()
    height = np.abs(to_spectrum(clean.fid)[:, ppm_slice(ppm, 1.9, 2.1)]).max(axis=1)
    fid = np.repeat(clean.fid, augment, axis=0)
    height = np.repeat(height, augment)
    n = fid.shape[0]
    shift = rng.uniform(-max_shift_hz, max_shift_hz, n)
    phase = rng.uniform(-180, 180, n)
    sigma = height / rng.uniform(*snr, n) / np.sqrt(clean.points)
    fid = shift_phase(fid, clean.dwell_time_s, shift, phase)
    fid += sigma[:, None] * (rng.normal(size=fid.shape) + 1j * rng.normal(size=fid.shape))
    data = MRSData(fid, clean.dwell_time_s, clean.central_frequency_mhz, clean.te_ms)
    return data, shift, phase


class CNNAligner(SpectralEstimator):
    """Per-transient frequency/phase regression; `fit(basis)` trains on simulated transients."""

    system, method = "mrs", "cnn-aligner"

    def __init__(self, max_shift_hz: float = 40.0, ppm_range: tuple[float, float] = (0.0, 4.4),
                 snr: tuple[float, float] = (4.0, 40.0), n_scans: int = 600, augment: int = 10, epochs: int = 40,
                 learning_rate: float = 2e-3, batch_size: int = 128, max_seconds: float | None = None, seed: int = 0,
                 device: str = "auto"):
        store_params(self, locals())

    def fit(self, basis: Basis | None = None) -> "CNNAligner":
        basis = basis or load_basis()
        data, shift, phase = simulated_transients(basis, self.n_scans, self.augment, max_shift_hz=self.max_shift_hz,
                                                  snr=self.snr, seed=self.seed)
        x, _ = window_input(data, self.ppm_range)
        rad = np.deg2rad(phase)
        y = np.stack([shift / self.max_shift_hz, np.cos(rad), np.sin(rad)], 1).astype(np.float32)
        self.axis_ = data.acquisition()
        torch.manual_seed(self.seed)  # initial weights follow the estimator's seed
        self.net_ = Encoder(2, 3)
        n_val = max(len(x) // 10, 2)
        tensors = [torch.from_numpy(x), torch.from_numpy(y)]
        config = TrainingConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                patience=8, max_seconds=self.max_seconds, seed=self.seed, progress=False)
        self.history_ = train(self.net_, lambda net, b: torch.mean((net(b[0]) - b[1]) ** 2),
                              [t[n_val:] for t in tensors], [t[:n_val] for t in tensors], config,
                              device=resolve_device(self.device), description="CNN aligner")
        return self

    def estimate(self, data: MRSData) -> tuple[np.ndarray, np.ndarray]:
        """Absolute offsets (Hz, deg) per row; `shift_phase(fid, -shift, -phase)` aligns."""
        data.check_acquisition(self.axis_, what="the CNN aligner")
        x, _ = window_input(data, self.ppm_range)
        out = predict_batches(self.net_, x, device=resolve_device(self.device), modules=[self.net_])
        return out[:, 0] * self.max_shift_hz, np.rad2deg(np.arctan2(out[:, 2], out[:, 1]))

    def _saved_parts(self) -> dict:
        return {"extra": {"history": self.history_.as_dict() if hasattr(self, "history_") else {}},
                "arrays": module_arrays(self.net_)}

    def _restore_saved(self, saved: SavedModel) -> None:
        self.net_ = load_module_arrays(Encoder(2, 3), saved.arrays)
