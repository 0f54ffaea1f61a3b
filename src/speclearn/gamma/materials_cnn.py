"""Material classification from neutron-induced gamma spectra: a 1-D CNN with transfer learning.

`MaterialCNN` first learns on simulated spectra of every material of `materials.MATERIALS`
(`simulate_materials`; with `randomise`, each sixth of them under a random detector/source setting:
resolution, inelastic-line weight, background, gain drift, composition spread, so that the features
carry over to a setting the simulation does not match exactly), then fine-tunes the whole network,
with a head for the user's classes (started from the pretrained head's rows when every class was
pretrained), on the (small) measured set. Spectra are rebinned from their energy calibration onto
a grid uniform in sqrt(E) (150 keV - 11 MeV) and enter as the square root of each bin's share
of the counts. `material_classifier` also builds the classical baselines (speclearn.classify's
PLS-DA, SVM, RF and kNN) on the same input.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from torch import nn

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra
from speclearn.gamma.grid import energy_axis, energy_spectra, rebin, sqrt_grid
from speclearn.models import SavedModel, SpectralEstimator, resolve_device
from speclearn.models.training import TrainingConfig, load_module_arrays, module_arrays, predict_batches, train

GRID = (150.0, 11000.0, 512)
#: ranges of the simulation settings drawn for randomised pretraining
RANDOM_SETTINGS = {"resolution": (0.9, 1.35), "inelastic": (0.5, 1.2), "background": (0.05, 0.35),
                   "gain_drift": (0.002, 0.015), "composition_jitter": (0.03, 0.12)}


def randomised_materials(detector: str, n: int, *, seed: int, parts: int = 6) -> tuple[np.ndarray, Spectra]:
    """`n` simulated material spectra in `parts` chunks, each under settings drawn from `RANDOM_SETTINGS`;
    returns (material labels, spectra)."""
    from speclearn.gamma.simulate import simulate_materials
    rng = np.random.default_rng(seed)
    sims = [simulate_materials(detector, len(chunk), seed=seed + 7 * i,
                               **{k: float(rng.uniform(*r)) for k, r in RANDOM_SETTINGS.items()})
            for i, chunk in enumerate(np.array_split(np.arange(n), parts)) if len(chunk)]
    labels = np.concatenate([s.truth["material"].to_numpy() for s in sims])
    X = np.vstack([s.spectra.values() for s in sims])
    return labels, Spectra(X, sims[0].spectra.axis, axis_kind="energy", axis_unit="keV")


def material_features(spectra: Spectra, grid: np.ndarray | None = None) -> np.ndarray:
    """sqrt of each bin's share of the counts on the materials grid, (n, bins) float32."""
    spectra = energy_spectra(spectra)
    grid = sqrt_grid(*GRID) if grid is None else grid
    counts = np.clip(rebin(spectra.values(), spectra.axis, grid), 0.0, None)
    return np.sqrt(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)).astype(np.float32)


class _Net(nn.Module):
    def __init__(self, n_classes: int, n_bins: int, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_bins))
        self.register_buffer("scale", torch.ones(()))

        def block(a, b):
            return nn.Sequential(nn.Conv1d(a, b, 7, padding=3), nn.BatchNorm1d(b), nn.ReLU(), nn.MaxPool1d(2))
        self.features = nn.Sequential(block(1, width), block(width, 2 * width), block(2 * width, 4 * width),
                                      nn.AdaptiveAvgPool1d(16), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(4 * width * 16, n_classes))

    def forward(self, x):
        return self.head(self.features(((x - self.mean) / self.scale).unsqueeze(1)))


def _ce(module, batch):
    return nn.functional.cross_entropy(module(batch[0]), batch[1])


class MaterialCNN(SpectralEstimator):
    """1-D CNN; `pretrain_n` simulated spectra on `detector` (nominal or, with `randomise`, randomised
    settings) before fine-tuning."""

    system, method = "gamma", "material-cnn"

    def __init__(self, pretrain: bool = True, pretrain_n: int = 1800, pretrain_epochs: int = 30,
                 detector: str = "nai", randomise: bool = True, epochs: int = 60, width: int = 16, learning_rate: float = 1e-3,
                 batch_size: int = 32, max_seconds: float | None = None, seed: int = 0, progress: bool = False,
                 device: str = "auto"):
        store_params(self, locals())

    def _config(self, epochs: int, lr: float, seed: int) -> TrainingConfig:
        return TrainingConfig(epochs=epochs, batch_size=self.batch_size, learning_rate=lr, weight_decay=1e-4,
                              patience=15, max_seconds=self.max_seconds, seed=seed, progress=self.progress)

    def pretrained_features(self) -> dict[str, np.ndarray]:
        """Weights learnt on simulated spectra of every library material (and their `classes`)."""
        from speclearn.gamma.simulate import simulate_materials
        if self.randomise:
            labels, spectra = randomised_materials(self.detector, self.pretrain_n, seed=self.seed + 1)
        else:
            sim = simulate_materials(self.detector, self.pretrain_n, seed=self.seed + 1)
            labels, spectra = sim.truth["material"].to_numpy(), sim.spectra
        X = torch.as_tensor(material_features(spectra, self.grid_))
        classes = np.array(sorted(set(labels)))
        y = torch.as_tensor(np.searchsorted(classes, labels))
        torch.manual_seed(self.seed + 1)
        net = _Net(len(classes), X.shape[1], self.width)
        net.mean.copy_(X.mean(0))
        net.scale.copy_((X - X.mean(0)).std())
        train(net, _ce, [X, y], None, self._config(self.pretrain_epochs, self.learning_rate, self.seed + 1),
              device=resolve_device(self.device), description="pretraining")
        return {**module_arrays(net), "classes": classes.astype(str)}

    def fit(self, spectra: Spectra, labels, *, features: dict[str, np.ndarray] | None = None) -> "MaterialCNN":
        """Fit on labelled spectra; `features` (from `pretrained_features`) skips pretraining again."""
        labels = pd.Series(list(labels), dtype=str)
        if len(labels) != spectra.n_spectra:
            raise InputError(f"{spectra.n_spectra} spectra but {len(labels)} labels", file=spectra.source)
        self.grid_ = sqrt_grid(*GRID)
        self.axis_ = energy_axis(self.grid_)
        self.classes_ = np.array(sorted(labels.unique()), dtype=object)
        X = torch.as_tensor(material_features(spectra, self.grid_))
        y = torch.as_tensor(np.searchsorted(self.classes_.astype(str), labels.to_numpy()))
        torch.manual_seed(self.seed)
        self.net_ = _Net(len(self.classes_), X.shape[1], self.width)
        lr = self.learning_rate
        if self.pretrain:
            state = dict(features if features is not None else self.pretrained_features())
            known = [str(c) for c in state.pop("classes", [])]
            head = {k: state.pop(k) for k in list(state) if k.startswith("net.head.")}
            own = self.net_.state_dict()
            own.update({k[4:]: torch.from_numpy(np.array(v)) for k, v in state.items()})
            if head and set(self.classes_.astype(str)) <= set(known):
                # the user's materials were all pretrained: start from their rows of the pretrained head
                rows = [known.index(c) for c in self.classes_.astype(str)]
                own.update({k[4:]: torch.from_numpy(np.array(v)[rows]) for k, v in head.items()})
            self.net_.load_state_dict(own)
            lr = self.learning_rate / 3
        else:
            self.net_.mean.copy_(X.mean(0))
            self.net_.scale.copy_((X - X.mean(0)).std())
        self.history_ = train(self.net_, _ce, [X, y], None, self._config(self.epochs, lr, self.seed),
                              device=resolve_device(self.device),
                              description="fine-tuning" if self.pretrain else "training")
        return self

    def predict_proba(self, spectra: Spectra) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise InputError("the material classifier is not fitted")
        self.net_.eval()
        X = material_features(spectra, self.grid_)
        return predict_batches(lambda b: torch.softmax(self.net_(b), dim=1), X, device=resolve_device(self.device),
                               modules=(self.net_,))

    def predict(self, spectra: Spectra) -> pd.DataFrame:
        """Per id: label and probability."""
        proba = self.predict_proba(spectra)
        best = proba.argmax(axis=1)
        return pd.DataFrame({"label": self.classes_[best], "probability": proba[np.arange(len(best)), best]},
                            index=spectra.meta.index)

    def _saved_parts(self) -> dict:
        return {"targets": [str(c) for c in self.classes_], "arrays": module_arrays(self.net_)}

    def _restore_saved(self, model: SavedModel) -> None:
        self.grid_ = np.asarray(model.axis["values"], dtype=float)
        self.classes_ = np.array(model.targets, dtype=object)
        self.net_ = load_module_arrays(_Net(len(self.classes_), len(self.grid_), self.width), model.arrays)


class ClassicalMaterialClassifier(BaseEstimator):
    """A speclearn.classify estimator (plsda, svm, rf, knn) on the gamma materials input."""

    def __init__(self, method: str = "svm", seed: int = 0):
        self.method = method
        self.seed = seed

    def _spectra(self, spectra: Spectra) -> Spectra:
        X = material_features(spectra)
        return Spectra(X, sqrt_grid(*GRID), axis_kind="energy", meta=spectra.meta[[]])

    def fit(self, spectra: Spectra, labels) -> "ClassicalMaterialClassifier":
        from speclearn.models import methods
        types = methods("classify")
        if self.method not in types or self.method == "cnn":
            raise InputError(f"unknown classical method {self.method!r}; choose plsda, svm, rf or knn")
        data = self._spectra(spectra)
        self.estimator_ = types[self.method](seed=self.seed).fit(data, pd.Series(list(labels), index=data.meta.index))
        self.classes_ = self.estimator_.classes_
        return self

    def predict(self, spectra: Spectra) -> pd.DataFrame:
        table = self.estimator_.predict(self._spectra(spectra))
        return table.rename(columns={"class": "label"})

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        return self.estimator_.save(directory, overwrite=overwrite)


def material_classifier(method: str, *, epochs: int = 60, seed: int = 0, device: str = "auto"):
    """cnn (MaterialCNN with pretraining, on `device`) or a classical baseline: plsda, svm, rf, knn."""
    if method == "cnn":
        return MaterialCNN(epochs=epochs, seed=seed, progress=True, device=device)
    return ClassicalMaterialClassifier(method, seed=seed)


def as_material_classifier(estimator):
    """A loaded MaterialCNN as it is; a classifier saved through speclearn.classify (plsda, svm, rf, knn)
    wrapped to take gamma spectra; anything else refused."""
    if isinstance(estimator, MaterialCNN):
        return estimator
    if estimator.system != "classify" or estimator.method == "cnn":
        raise InputError(f"a {estimator.model_type()} model is not a gamma model (identifier, material "
                         "classifier or composition)", file=getattr(estimator, "path_", None))
    wrapper = ClassicalMaterialClassifier(estimator.method)
    wrapper.estimator_ = estimator
    wrapper.classes_ = wrapper.estimator_.classes_
    return wrapper
