"""Learned multi-label nuclide identification (PyRIID's task): an MLP with one sigmoid per nuclide.

Spectra from any detector are rebinned from their energy calibration onto one grid uniform in
sqrt(E) (30-3000 keV); the input is the square root of each bin's share of the counts plus
log10(total counts). Trained on simulated mixtures across detectors (`simulate_training_set`).
An optional line check (`MLPIdentifier.fit_line_check`) rescores chosen nuclides (the natural
background by default) from the MLP's scores and the significance of their strongest lines in the
spectrum's own channels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra
from speclearn.gamma.grid import counts_below, energy_axis, energy_spectra, model_input, sqrt_grid
from speclearn.gamma.lines import DECAY_LINES, NATURAL, decay_lines
from speclearn.gamma.peaksearch import long_table
from speclearn.gamma.response import bin_edges
from speclearn.models import SavedModel, SpectralEstimator, load, resolve_device
from speclearn.models.training import TrainingConfig, load_module_arrays, module_arrays, predict_batches, train

DEFAULT_MODEL = Path(__file__).parent / "default_model"
#: training detectors: the four types plus a poor-resolution NaI (x1.5 FWHM, like becquerel's NaI sample)
DETECTORS = ("nai", "labr3", "csi", "hpge", ("nai", 1.5))


def _net(n_in: int, n_out: int, hidden: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden // 2, n_out))


def _widened(state: dict, net: nn.Module) -> dict:
    """`state` of a narrower `_net` placed into `net`'s layers (Net2WiderNet, Chen et al. 2016): the
    extra hidden units keep their fresh incoming weights and get zero outgoing weights, so the wider
    network starts computing what the narrower one did."""
    out = {name: value.clone() for name, value in net.state_dict().items()}
    for name, value in state.items():
        if name.endswith("weight"):
            out[name][:, value.shape[1]:] = 0.0
        out[name][tuple(slice(0, n) for n in value.shape)] = value
    return out


def _check_net(n_in: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))


#: half-widths (keV at 662 keV, growing as sqrt(E)) of the windows in which `line_significance` counts a
#: line: about one FWHM of HPGe, LaBr3, NaI and a poor NaI
LINE_WINDOWS = (1.5, 5.0, 20.0, 50.0)


def strongest_lines(nuclide: str, k: int = 3) -> np.ndarray:
    """Energies (keV) of the nuclide's `k` lines with the most detected photons (yield x E^-0.8) in
    40-3000 keV, padded with zeros (no line)."""
    lines = decay_lines(nuclide)
    lines = lines[(lines[:, 0] > 40.0) & (lines[:, 0] < 3000.0)]
    order = np.argsort(lines[:, 1] * (lines[:, 0] / 661.657) ** -0.8)[::-1][:k]
    return np.concatenate([lines[order, 0], np.zeros(k - len(order))])


def line_significance(spectra: Spectra, energies: np.ndarray) -> np.ndarray:
    """(spectra, energies, `LINE_WINDOWS`) net counts of a peak at each energy over the continuum of
    the side bands (1.5-3 half-widths away), in standard deviations; 0 where the bands leave the range
    (and for energy 0: no line)."""
    spectra = energy_spectra(spectra)
    edges = bin_edges(spectra.axis)
    e = np.asarray(energies, dtype=float)
    out = np.zeros((spectra.n_spectra, e.size, len(LINE_WINDOWS)))
    for k, width in enumerate(LINE_WINDOWS):
        w = width * np.sqrt(np.maximum(e, 1.0) / 661.657)
        ends = np.concatenate([e + f * w for f in (-3.0, -1.5, -1.0, 1.0, 1.5, 3.0)])
        b = counts_below(spectra.values(), spectra.axis, ends).reshape(-1, 6, e.size)
        peak = b[:, 3] - b[:, 2]
        continuum = (b[:, 1] - b[:, 0] + b[:, 5] - b[:, 4]) * 2 / 3  # side bands 1.5-3 half-widths away
        inside = (e - 3 * w > edges[0]) & (e + 3 * w < edges[-1])
        out[:, :, k] = np.where(inside, (peak - continuum) / np.sqrt(peak + continuum + 1.0), 0.0)
    return out


def _bce(module: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return nn.functional.binary_cross_entropy_with_logits(module(x), y)


def label_matrix(labels, nuclides: list[str]) -> np.ndarray:
    """';'-joined label strings -> (n, nuclides) 0/1 matrix."""
    out = np.zeros((len(labels), len(nuclides)), dtype=np.float32)
    index = {name: j for j, name in enumerate(nuclides)}
    for i, text in enumerate(labels):
        for name in str(text).split(";"):
            name = name.strip()
            if name and name.lower() != "nan":
                if name not in index:
                    raise InputError(f"unknown nuclide label {name!r}; known: {', '.join(nuclides)}")
                out[i, index[name]] = 1.0
    return out


class MLPIdentifier(SpectralEstimator):
    """Multi-label nuclide identifier: a nuclide is reported when its sigmoid output reaches `threshold`,
    or, when `threshold` is None, its own threshold chosen on validation mixtures (0.5 if none were)."""

    system, method = "gamma", "identifier"

    def __init__(self, n_bins: int = 1024, hidden: int = 512, dropout: float = 0.2, epochs: int = 40,
                 learning_rate: float = 1e-3, batch_size: int = 128, weight_decay: float = 1e-5,
                 threshold: float | None = None, max_seconds: float | None = None, seed: int = 0,
                 progress: bool = False, device: str = "auto"):
        store_params(self, locals())

    def _features(self, spectra: Spectra | list[Spectra]) -> np.ndarray:
        parts = spectra if isinstance(spectra, list) else [spectra]
        return np.vstack([model_input(s, self.grid_) for s in parts])

    def fit(self, spectra: Spectra | list[Spectra], labels, *, init: "MLPIdentifier | None" = None) -> "MLPIdentifier":
        """`labels`: ';'-joined nuclide names per spectrum (a Series aligned with the spectra, or a list);
        `init`: a fitted identifier with the same grid and nuclides, as wide or narrower, whose weights
        training starts from (widened by `_widened`)."""
        self.grid_ = sqrt_grid(n=self.n_bins)
        self.axis_ = energy_axis(self.grid_)
        labels = list(labels)
        names = sorted({n.strip() for text in labels for n in str(text).split(";") if n.strip()})
        self.nuclides_ = sorted(set(names) | set(DECAY_LINES)) if set(names) <= set(DECAY_LINES) else names
        X = torch.as_tensor(self._features(spectra))
        y = torch.as_tensor(label_matrix(labels, self.nuclides_))
        if len(X) != len(y):
            raise InputError(f"{len(X)} spectra but {len(y)} label rows")
        torch.manual_seed(self.seed)
        self.check_ = None  # a line check belongs to the MLP it was trained on
        self.net_ = _net(X.shape[1], len(self.nuclides_), self.hidden, self.dropout)
        if init is not None:
            if list(init.nuclides_) != list(self.nuclides_) or len(init.grid_) != len(self.grid_):
                raise InputError("init identifier has other nuclides or another grid")
            if init.hidden > self.hidden:
                raise InputError(f"init identifier is wider ({init.hidden} hidden units) than this one ({self.hidden})")
            self.net_.load_state_dict(_widened(init.net_.state_dict(), self.net_))
        rng = np.random.default_rng(self.seed)
        val = rng.random(len(X)) < 0.1
        config = TrainingConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                weight_decay=self.weight_decay, patience=8, max_seconds=self.max_seconds,
                                seed=self.seed, progress=self.progress)
        self.history_ = train(self.net_, _bce, [X[~val], y[~val]], [X[val], y[val]], config,
                              device=resolve_device(self.device), description="nuclide identifier")
        return self

    def _mlp_scores(self, spectra: Spectra) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise InputError("the identifier is not fitted")
        self.net_.eval()
        return predict_batches(lambda b: torch.sigmoid(self.net_(b)), self._features(spectra),
                               device=resolve_device(self.device), modules=(self.net_,))

    def _check_inputs(self, spectra: Spectra, scores: np.ndarray) -> np.ndarray:
        """(spectra x nuclides, features) rows of the line check: the nuclide's MLP logit, the signed
        log significance of its strongest lines in each window, log10(total counts), the nuclide
        (one-hot) and every nuclide's squashed logit (what else the MLP sees)."""
        n, m = scores.shape
        logit = np.log(np.clip(scores, 1e-6, 1.0) / np.clip(1.0 - scores, 1e-6, 1.0))
        z = line_significance(spectra, self.line_energies_.ravel()).reshape(n, m, -1)
        total = np.log10(np.maximum(energy_spectra(spectra).values().sum(axis=1), 1.0)) - 4.0
        parts = [logit[:, :, None] / 4.0, np.sign(z) * np.log1p(np.abs(z)),
                 np.broadcast_to(total[:, None, None], (n, m, 1)), np.broadcast_to(np.eye(m), (n, m, m)),
                 np.broadcast_to(np.tanh(logit / 4.0)[:, None, :], (n, m, m))]
        return np.concatenate(parts, axis=2).reshape(n * m, -1).astype(np.float32)

    def fit_line_check(self, spectra: Spectra | list[Spectra], labels, *, nuclides: tuple[str, ...] = NATURAL,
                       epochs: int = 20, seed: int = 0) -> "MLPIdentifier":
        """Train the line check on labelled spectra the MLP was not trained on: a second network that
        rescores `nuclides` (default: the natural background) from the MLP's scores and the
        significance of each nuclide's strongest lines (`strongest_lines`, `LINE_WINDOWS`) in the
        spectrum's own channels; it learns from every nuclide's rows. Per-nuclide thresholds are
        reset (0.5 until chosen again)."""
        unknown = sorted(set(nuclides) - set(self.nuclides_))
        if unknown:
            raise InputError(f"the identifier does not know {', '.join(unknown)}")
        parts = spectra if isinstance(spectra, list) else [spectra]
        self.line_energies_ = np.stack([strongest_lines(name) for name in self.nuclides_])
        X = torch.as_tensor(np.vstack([self._check_inputs(s, self._mlp_scores(s)) for s in parts]))
        y = torch.as_tensor(label_matrix(list(labels), self.nuclides_).reshape(-1, 1))
        if len(X) != len(y):
            raise InputError(f"{len(X) // len(self.nuclides_)} spectra but {len(y) // len(self.nuclides_)} label rows")
        torch.manual_seed(seed)
        self.check_ = _check_net(X.shape[1])
        self.checked_ = [name for name in self.nuclides_ if name in nuclides]
        val = np.random.default_rng(seed).random(len(X) // len(self.nuclides_)) < 0.1
        val = np.repeat(val, len(self.nuclides_))
        config = TrainingConfig(epochs=epochs, batch_size=512, learning_rate=2e-3, weight_decay=1e-5, patience=5,
                                seed=seed, progress=self.progress)
        self.check_history_ = train(self.check_, _bce, [X[~val], y[~val]], [X[val], y[val]], config,
                                    device=resolve_device(self.device), description="line check")
        self.thresholds_ = None
        return self

    def decision_function(self, spectra: Spectra) -> pd.DataFrame:
        """(spectra x nuclides) scores: the MLP's sigmoids, those of the line check's nuclides rescored
        by it when the identifier has one."""
        proba = self._mlp_scores(spectra)
        if getattr(self, "check_", None) is not None:
            self.check_.eval()
            columns = [self.nuclides_.index(name) for name in self.checked_]
            rows = self._check_inputs(spectra, proba).reshape(proba.shape + (-1,))[:, columns]
            checked = predict_batches(lambda b: torch.sigmoid(self.check_(b)), rows.reshape(-1, rows.shape[2]),
                                      device=resolve_device(self.device), modules=(self.check_,))
            proba[:, columns] = checked.reshape(len(proba), len(columns))
        return pd.DataFrame(proba, index=spectra.meta.index, columns=self.nuclides_)

    def decision_thresholds(self) -> dict[str, float]:
        """nuclide -> the score at which it is reported."""
        if self.threshold is not None:
            return dict.fromkeys(self.nuclides_, float(self.threshold))
        chosen = getattr(self, "thresholds_", None) or {}
        return {name: float(chosen.get(name, 0.5)) for name in self.nuclides_}

    def predict(self, spectra: Spectra) -> pd.DataFrame:
        """Long table (id, nuclide, score): one row per nuclide at or above its threshold."""
        return long_table(self.decision_function(spectra), self.decision_thresholds())

    def _saved_parts(self) -> dict:
        extra = dict(getattr(self, "extra_", None) or {})
        if getattr(self, "thresholds_", None):
            extra["nuclide_thresholds"] = dict(self.thresholds_)
        arrays = module_arrays(self.net_)
        if getattr(self, "check_", None) is not None:
            extra["line_check_nuclides"] = list(self.checked_)
            arrays |= module_arrays(self.check_, "check.") | {"line_energies": self.line_energies_}
        return {"targets": list(self.nuclides_), "extra": extra, "arrays": arrays}

    def _restore_saved(self, model: SavedModel) -> None:
        self.grid_ = np.asarray(model.axis["values"], dtype=float)
        self.nuclides_ = list(model.targets)
        self.net_ = load_module_arrays(_net(len(self.grid_) + 1, len(self.nuclides_), self.hidden, self.dropout),
                                       model.arrays)
        self.check_ = None
        if "line_energies" in model.arrays:
            self.line_energies_ = np.asarray(model.arrays["line_energies"], dtype=float)
            n = len(self.nuclides_)
            if self.line_energies_.shape[0] != n:
                raise InputError(f"the model's line table has {self.line_energies_.shape[0]} rows for {n} nuclides")
            if "check.0.weight" not in model.arrays:
                raise InputError("the model has a line table but no line-check weights")
            self.check_ = load_module_arrays(_check_net(model.arrays["check.0.weight"].shape[1]), model.arrays,
                                             "check.")
        self.extra_ = dict(model.extra)
        self.thresholds_ = self.extra_.pop("nuclide_thresholds", None)
        self.checked_ = self.extra_.pop("line_check_nuclides", [])
        if self.check_ is not None and not set(self.checked_) <= set(self.nuclides_):
            raise InputError("the model's line check names nuclides it does not know")

    @classmethod
    def load(cls, directory: str | Path | None = None) -> "MLPIdentifier":
        """A saved identifier (the one shipped with speclearn when `directory` is None)."""
        return load(directory or DEFAULT_MODEL, cls)


def micro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Micro-averaged F1 of 0/1 label matrices."""
    tp = float((truth * predicted).sum())
    return 2 * tp / max(float(truth.sum() + predicted.sum()), 1.0)


#: the thresholds `validation_thresholds` tries
THRESHOLD_GRID = np.round(np.arange(0.1, 0.91, 0.05), 2)


def choose_thresholds(scores: np.ndarray, truth: np.ndarray, *, grid: np.ndarray = THRESHOLD_GRID,
                      slack: float = 4.0) -> np.ndarray:
    """Per-column thresholds maximising micro-F1 of `scores` against 0/1 `truth` (coordinate ascent from
    0.5 over `grid`, two passes). Of the thresholds within `slack` label errors of the best F1 (no
    better within validation noise) the middle one is taken: the widest margin on either side."""
    limits = np.full(scores.shape[1], 0.5)
    tolerance = slack / (2.0 * max(float(truth.sum()), 1.0)) + 1e-12  # one error moves micro-F1 by ~1 / (2 TP)
    for _ in range(2):
        for j in range(len(limits)):
            f1 = []
            for value in grid:
                limits[j] = value
                f1.append(micro_f1(truth, (scores >= limits).astype(float)))
            near = np.flatnonzero(np.asarray(f1) >= max(f1) - tolerance)
            limits[j] = grid[near[len(near) // 2]]
    return limits


def validation_thresholds(model: MLPIdentifier, *, seed: int, n_per_detector: int = 400,
                          grid: np.ndarray = THRESHOLD_GRID, slack: float = 4.0, **simulation) -> dict[str, float]:
    """Per-nuclide thresholds (`choose_thresholds`) on validation mixtures simulated with `seed` and the
    `simulation` options of `simulate_training_set`."""
    spectra, labels = simulate_training_set(n_per_detector, seed=seed, **simulation)
    scores = np.vstack([model.decision_function(s).to_numpy() for s in spectra])
    limits = choose_thresholds(scores, label_matrix(labels, model.nuclides_), grid=grid, slack=slack)
    return {name: round(float(v), 2) for name, v in zip(model.nuclides_, limits)}


def truncated(spectra: Spectra, e_max: float) -> Spectra:
    """The spectra as a detector whose range ends at `e_max` keV records them."""
    keep = spectra.axis <= e_max
    return spectra.with_intensity(spectra.values()[:, keep], axis=spectra.axis[keep])


def simulate_training_set(n_per_detector: int, *, seed: int = 0, detectors=DETECTORS,
                          counts=(1e3, 1e6), gain_drift: float = 0.01, truncate_share: float = 0.3,
                          background_only: float = 0.0, scatter_shapes: bool = False,
                          radon: tuple[float, float] = (1.0, 1.0)) -> tuple[list[Spectra], list[str]]:
    """Simulated mixtures (1-3 nuclides with natural background) on every detector, with their labels.

    `detectors`: names or (name, resolution factor) pairs; `truncate_share` of each detector's spectra
    end at a random 1.4-2.8 MeV (short-range detectors such as becquerel's NaI sample end near 2 MeV);
    `background_only` adds that share of natural-background-only spectra (no source) per detector;
    `scatter_shapes`: random scattered-continuum shapes, `radon`: range of the natural U-238 series'
    radon daughters retained (`simulate_nuclides`).
    """
    from speclearn.gamma.response import broadened, get_detector
    from speclearn.gamma.simulate import simulate_nuclides
    rng = np.random.default_rng(seed)
    spectra, labels = [], []
    n_background = int(round(background_only * n_per_detector))
    for k, entry in enumerate(detectors):
        name, factor = (entry, 1.0) if isinstance(entry, str) else entry
        detector = broadened(get_detector(name), factor)
        options = dict(counts=counts, gain_drift=gain_drift, scatter_shapes=scatter_shapes, radon=radon)
        runs = [simulate_nuclides(detector, n_per_detector, seed=seed + 101 * k, **options)]
        if n_background:
            runs.append(simulate_nuclides(detector, n_background, seed=seed + 101 * k + 50, background=(1.0, 1.0),
                                          **options))
        for sim in runs:
            ids = sim.spectra.meta.index
            cut = int(round(truncate_share * len(ids)))
            for part in np.array_split(np.arange(cut), 4):
                if part.size:
                    spectra.append(truncated(sim.spectra.select(ids[part]), float(rng.uniform(1400.0, 2800.0))))
            spectra.append(sim.spectra.select(ids[cut:]))
            labels += sim.truth["labels"].tolist()
    return spectra, labels
