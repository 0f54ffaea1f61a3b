"""Corrupted-transient detector: a 1-D CNN on each aligned transient beside its scan's median spectrum.

Input channels: real/imag of the transient and of the median of its scan (0.2-4.6 ppm, divided by the
median's RMS). Trained on simulated scans (motion-corrupted and ghost / out-of-voxel-echo transients,
aligned by spectral registration as at prediction time); the decision threshold is set on held-out
simulated transients for `target_fpr` false positives. The classical baseline is
`preprocess.transient_outlier_scores` (robust z > 3).
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
from speclearn.mrs.data import MRSData, ppm_slice
from speclearn.mrs.networks import Encoder
from speclearn.mrs.registration import SpectralRegistration
from speclearn.mrs.simulate import MRSSimConfig, simulate_mrs



def detector_input(data: MRSData, ppm_range: tuple[float, float]) -> np.ndarray:
    """float32 (n, 4, L): transient and scan-median spectra (real, imag) over the median's RMS."""
    spectra = data.spectrum()[:, ppm_slice(data.ppm(), *ppm_range)]
    scans = np.asarray(data.scans)
    out = np.empty((data.n, 4, spectra.shape[1]), np.float32)
    for name in data.scan_names():
        rows = np.flatnonzero(scans == name)
        block = spectra[rows]
        median = np.median(block.real, axis=0) + 1j * np.median(block.imag, axis=0)
        scale = max(np.sqrt(np.mean(np.abs(median) ** 2)), 1e-30)
        out[rows, 0], out[rows, 1] = block.real / scale, block.imag / scale
        out[rows, 2], out[rows, 3] = median.real / scale, median.imag / scale
    return out


def aligned_simulation(basis: Basis, n_scans: int, *, seed: int, config: MRSSimConfig | None = None
                       ) -> tuple[MRSData, np.ndarray, object]:
    """Simulated transients aligned by spectral registration: (data, corrupted flags, simulation)."""
    config = config or MRSSimConfig(corrupted_fraction=0.15, snr=(15.0, 80.0))
    simulation = simulate_mrs(n_scans, seed=seed, basis=basis, config=config)
    aligned = SpectralRegistration(search_hz=30.0).transform(simulation.transients)[0]
    return aligned, simulation.truth["corrupted"].to_numpy(bool), simulation


class TransientDetector(SpectralEstimator):
    """P(corrupted) per transient; `fit(basis)` trains on simulated scans."""

    system, method = "mrs", "transient-detector"

    def __init__(self, ppm_range: tuple[float, float] = (0.2, 4.6), n_scans: int = 300, target_fpr: float = 0.03,
                 epochs: int = 30, learning_rate: float = 2e-3, batch_size: int = 128,
                 max_seconds: float | None = None, seed: int = 0, device: str = "auto"):
        store_params(self, locals())

    def fit(self, basis: Basis | None = None) -> "TransientDetector":
        basis = basis or load_basis()
        data, corrupted, _ = aligned_simulation(basis, self.n_scans, seed=self.seed)
        x = detector_input(data, self.ppm_range)
        y = corrupted.astype(np.float32)[:, None]
        self.axis_ = data.acquisition()
        torch.manual_seed(self.seed)  # initial weights follow the estimator's seed
        self.net_ = Encoder(4, 1)
        # hold out whole scans for validation and the threshold
        scans = np.asarray(data.scans)
        held = np.isin(scans, data.scan_names()[: max(self.n_scans // 5, 2)])
        tensors = [torch.from_numpy(x), torch.from_numpy(y)]
        positive = float(y.mean())
        weight = torch.tensor((1 - positive) / max(positive, 1e-3))
        config = TrainingConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                patience=8, max_seconds=self.max_seconds, seed=self.seed, progress=False)
        device = resolve_device(self.device)
        loss = torch.nn.BCEWithLogitsLoss(pos_weight=weight).to(device)
        self.history_ = train(self.net_, lambda net, b: loss(net(b[0]), b[1]), [t[~held] for t in tensors],
                              [t[held] for t in tensors], config, device=device, description="transient detector")
        scores = self._scores(x[held])
        clean_scores = np.sort(scores[~corrupted[held]])
        k = min(int(np.ceil((1 - self.target_fpr) * clean_scores.size)), clean_scores.size - 1)
        self.threshold_ = float(clean_scores[k]) if clean_scores.size else 0.5
        return self

    def _scores(self, x: np.ndarray) -> np.ndarray:
        logits = predict_batches(self.net_, x, device=resolve_device(self.device), modules=[self.net_])
        return 1 / (1 + np.exp(-logits[:, 0]))

    def score(self, data: MRSData) -> np.ndarray:
        """P(corrupted) per transient of aligned data."""
        data.check_acquisition(self.axis_, what="the transient detector")
        return self._scores(detector_input(data, self.ppm_range))

    def predict(self, data: MRSData) -> np.ndarray:
        return self.score(data) > self.threshold_

    def _saved_parts(self) -> dict:
        return {"extra": {"threshold": self.threshold_, "history": self.history_.as_dict()},
                "arrays": module_arrays(self.net_)}

    def _restore_saved(self, saved: SavedModel) -> None:
        self.threshold_ = float(saved.extra["threshold"])
        self.net_ = load_module_arrays(Encoder(4, 1), saved.arrays)
