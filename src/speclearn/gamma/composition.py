"""Atomic composition from neutron-induced gamma spectra: NNLS on the line library vs an autoencoder.

Both explain a spectrum (rebinned onto the materials grid) as a non-negative sum of element
templates (`simulate.element_templates`: capture + inelastic lines through the detector response,
per unit atom fraction) plus natural-background and scattered-continuum templates; the atom
fractions are the element weights normalised to sum 1.

`NNLSComposition` solves that with Poisson-weighted non-negative least squares, spectrum by spectrum.
`AEComposition` is an autoencoder whose encoder (an MLP) outputs the atom fractions (softmax) and
background weights, and whose decoder is the fixed physics model above; it is trained on spectra
with known composition (reconstruction + fraction loss) and then needs no fitting per spectrum.
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import torch
from scipy.optimize import nnls
from torch import nn

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra
from speclearn.gamma.grid import energy_axis, energy_spectra, rebin, sqrt_grid
from speclearn.gamma.lines import ELEMENTS
from speclearn.gamma.materials_cnn import GRID
from speclearn.models import SavedModel, SpectralEstimator, resolve_device
from speclearn.models.training import TrainingConfig, load_module_arrays, module_arrays, predict_batches, train


def library(detector: str = "nai", resolution: float = 1.0) -> tuple[np.ndarray, list[str]]:
    """(components, bins) templates on the materials grid (sum 1 each): elements, then background."""
    from speclearn.gamma.response import broadened, get_detector
    from speclearn.gamma.simulate import MATERIALS_E_MAX, background_templates, element_templates
    det = broadened(get_detector(detector), resolution)
    axis = det.axis(MATERIALS_E_MAX, 2048)
    grid = sqrt_grid(*GRID)
    elements = element_templates(det, n_channels=2048)
    bg = background_templates(det, n_channels=2048, e_max=MATERIALS_E_MAX)
    natural = 0.4 * bg["K-40"] + 0.3 * bg["U-238"] + 0.3 * bg["Th-232"]
    rows = np.vstack([elements, natural, bg["scatter"]])
    rows = rebin(rows, axis, grid)
    scale = rows.sum(axis=1, keepdims=True)
    return rows / scale, list(ELEMENTS) + ["natural", "scatter"]


def _counts(spectra: Spectra) -> np.ndarray:
    spectra = energy_spectra(spectra)
    return np.clip(rebin(spectra.values(), spectra.axis, sqrt_grid(*GRID)), 0.0, None)


def _fractions(weights: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Template weights (templates normalised to 1) -> atom fractions (templates per atom fraction)."""
    atoms = weights[:, :len(ELEMENTS)] / scale[None, :len(ELEMENTS)]
    return atoms / np.maximum(atoms.sum(axis=1, keepdims=True), 1e-300)


class NNLSComposition(SpectralEstimator):
    """Poisson-weighted NNLS on the line library of `detector` (resolution scaled by `resolution`)."""

    system, method = "gamma", "composition-nnls"

    def __init__(self, detector: str = "nai", resolution: float = 1.0):
        self.detector = detector
        self.resolution = resolution

    def fit(self, spectra: Spectra | None = None, targets: pd.DataFrame | None = None) -> "NNLSComposition":
        """Builds the library (nothing is learnt from data)."""
        self.templates_, self.components_ = library(self.detector, self.resolution)
        self.scale_ = _element_scale(self.detector, self.resolution)
        self.axis_ = energy_axis(sqrt_grid(*GRID))
        return self

    def predict(self, spectra: Spectra) -> pd.DataFrame:
        """Atom fractions per id, one column per element."""
        if not hasattr(self, "templates_"):
            self.fit()
        counts = _counts(spectra)
        weights = np.zeros((len(counts), len(self.components_)))
        for i, y in enumerate(counts):
            w = 1.0 / np.sqrt(np.maximum(y, 1.0))
            weights[i], _ = nnls(self.templates_.T * w[:, None], y * w)
        return pd.DataFrame(_fractions(weights, self.scale_), index=spectra.meta.index, columns=list(ELEMENTS))

    def _saved_parts(self) -> dict:
        return {"targets": list(ELEMENTS)}

    def _restore_saved(self, model: SavedModel) -> None:
        self.fit()


def _element_scale(detector: str, resolution: float) -> np.ndarray:
    """Counts on the grid per unit atom fraction of each element (the templates' normalisation)."""
    from speclearn.gamma.response import broadened, get_detector
    from speclearn.gamma.simulate import MATERIALS_E_MAX, element_templates
    det = broadened(get_detector(detector), resolution)
    rows = rebin(element_templates(det, n_channels=2048), det.axis(MATERIALS_E_MAX, 2048), sqrt_grid(*GRID))
    return np.concatenate([rows.sum(axis=1), [1.0, 1.0]])


class _AE(nn.Module):
    def __init__(self, templates: np.ndarray, scale: np.ndarray, hidden: int):
        super().__init__()
        n_comp, n_bins = templates.shape
        self.register_buffer("templates", torch.as_tensor(templates, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.encoder = nn.Sequential(nn.Linear(n_bins, hidden), nn.ReLU(), nn.Linear(hidden, hidden // 2), nn.ReLU(),
                                     nn.Linear(hidden // 2, n_comp + 1))
        self.n_el = len(ELEMENTS)

    def encode(self, x):
        out = self.encoder(x)
        fractions = torch.softmax(out[:, :self.n_el], dim=1)
        background = torch.softmax(out[:, self.n_el:], dim=1)  # share of signal vs natural vs scatter
        return fractions, background

    def decode(self, fractions, background):
        signal = (fractions * self.scale[:self.n_el]) @ self.templates[:self.n_el]
        signal = signal / signal.sum(dim=1, keepdim=True)
        share = background[:, :1] * signal + background[:, 1:] @ self.templates[self.n_el:]
        return torch.sqrt(share.clamp_min(0.0) + 1e-12)


class AEComposition(SpectralEstimator):
    """Autoencoder: MLP encoder -> atom fractions, physics decoder = the line library.

    fit(spectra, targets): targets holds atom fractions for some or all of `lines.ELEMENTS`; the
    loss is the reconstruction error of sqrt count shares plus `fraction_weight` x the fraction error.
    """

    system, method = "gamma", "composition-ae"

    def __init__(self, detector: str = "nai", hidden: int = 256, epochs: int = 150, learning_rate: float = 1e-3,
                 batch_size: int = 64, fraction_weight: float = 10.0, max_seconds: float | None = None,
                 seed: int = 0, progress: bool = False, device: str = "auto"):
        store_params(self, locals())

    def _features(self, spectra: Spectra) -> np.ndarray:
        counts = _counts(spectra)
        return np.sqrt(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)).astype(np.float32)

    def fit(self, spectra: Spectra, targets: pd.DataFrame) -> "AEComposition":
        known = [c for c in targets.columns if c in ELEMENTS]
        if not known:
            raise InputError(f"targets need atom-fraction columns named after elements ({', '.join(ELEMENTS)})")
        self.known_ = known
        self.axis_ = energy_axis(sqrt_grid(*GRID))
        templates, _ = library(self.detector)
        scale = _element_scale(self.detector, 1.0)
        torch.manual_seed(self.seed)
        self.net_ = _AE(templates, scale, self.hidden)
        X = torch.as_tensor(self._features(spectra))
        columns = [ELEMENTS.index(c) for c in known]
        Y = torch.as_tensor(np.array(targets[known], dtype=np.float32))
        weight = self.fraction_weight

        def loss(module, batch):
            x, y = batch
            fractions, background = module.encode(x)
            recon = ((module.decode(fractions, background) - x) ** 2).sum(dim=1).mean()
            return recon + weight * ((fractions[:, columns] - y) ** 2).sum(dim=1).mean()

        config = TrainingConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                patience=20, max_seconds=self.max_seconds, seed=self.seed, progress=self.progress)
        self.history_ = train(self.net_, loss, [X, Y], None, config, device=resolve_device(self.device),
                              description="composition autoencoder")
        return self

    def predict(self, spectra: Spectra) -> pd.DataFrame:
        """Atom fractions per id, one column per element."""
        if not hasattr(self, "net_"):
            raise InputError("the composition autoencoder is not fitted")
        X = self._features(spectra)
        fractions = predict_batches(lambda b: self.net_.encode(b)[0], X, device=resolve_device(self.device),
                                    modules=(self.net_,))
        return pd.DataFrame(fractions, index=spectra.meta.index, columns=list(ELEMENTS))

    def _saved_parts(self) -> dict:
        return {"targets": list(ELEMENTS), "extra": {"known": self.known_}, "arrays": module_arrays(self.net_)}

    def _restore_saved(self, model: SavedModel) -> None:
        templates, _ = library(self.detector)
        self.known_ = model.extra.get("known", [])
        self.net_ = load_module_arrays(_AE(templates, _element_scale(self.detector, 1.0), self.hidden), model.arrays)


def composition_types() -> dict[str, type]:
    return {"ae": AEComposition, "nnls": NNLSComposition}
