"""Vrábel et al. (JAAS 2023) §4.4 evaluation: Euclidean and cosine per spectrum, RSE, k-score, and spatial error maps.

Conventions: `cosine` is the cosine *similarity* (+1 = identical shape); the seed's Table 1 prints
its negative (-1 = identical), reported here as `cosine_seed_sign`. RSE = sum (x - x_hat)^2 /
sum (x - x_bar)^2 with x_bar the mean *measured* test spectrum (the seed's eq. 4 prints x_hat in
the denominator, which contradicts its own text; we use the text's naive-baseline form).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from speclearn.core.params import store_params
from speclearn.metrics import cosine_similarity, euclidean, k_score, relative_squared_error
from speclearn.report import save_figure

K_GRID = (3, 4, 5, 6, 7, 8, 9, 10, 15, 20)


def unit_norm(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, float)
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norm > 0, norm, 1.0)


class ClusterScorer:
    """k-means fitted on primary training spectra; k chosen by the best silhouette on validation spectra.

    With `normalize` (default) spectra are clustered by shape (unit Euclidean norm), so the
    shot-to-shot total intensity does not decide the clusters. (The seed writes "minimize the
    silhouette score"; a higher silhouette is the better clustering, so the maximum is taken.)
    """

    def __init__(self, grid=K_GRID, seed: int = 0, silhouette_sample: int = 5000, normalize: bool = True):
        store_params(self, locals())

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        return unit_norm(X) if self.normalize else np.asarray(X, float)

    def fit(self, train: np.ndarray, validation: np.ndarray) -> "ClusterScorer":
        train, validation = self._prepare(train), self._prepare(validation)
        self.silhouettes_ = {}
        models = {}
        for k in (k for k in self.grid if k < min(len(train), len(validation))):
            models[k] = KMeans(n_clusters=k, n_init=4, random_state=self.seed).fit(train)
            labels = models[k].predict(validation)
            self.silhouettes_[k] = float(silhouette_score(validation, labels, random_state=self.seed,
                                                          sample_size=min(self.silhouette_sample, len(validation)))
                                         if len(set(labels)) > 1 else -1.0)
        self.k_ = max(self.silhouettes_, key=self.silhouettes_.get)
        self.kmeans_ = models[self.k_]
        return self

    def labels(self, X: np.ndarray) -> np.ndarray:
        return self.kmeans_.predict(self._prepare(X))

    def score(self, true: np.ndarray, predicted: np.ndarray) -> float:
        return k_score(self.labels(true), self.labels(predicted))


def transfer_scores(true: np.ndarray, predicted: np.ndarray, clusters: ClusterScorer | None = None) -> dict[str, float]:
    """Table 1 of Vrábel et al., JAAS 2023 for one method: means over spectra of Euclid and cosine, RSE, k-score."""
    true, predicted = np.asarray(true, float), np.asarray(predicted, float)
    cosine = float(np.nanmean(cosine_similarity(true, predicted)))
    scores = {"euclid": float(np.mean(euclidean(true, predicted))), "cosine": cosine,
              "cosine_seed_sign": -cosine, "rse": relative_squared_error(predicted, true)}
    if clusters is not None:
        scores["k_score"] = clusters.score(true, predicted)
    return scores


def error_maps(true: np.ndarray, predicted: np.ndarray, shape: tuple[int, int], path: str | Path,
               title: str = "") -> Path:
    """PNG of the per-pixel Euclidean distance and cosine similarity (colours clipped to the 1-99 % quantiles)."""
    from speclearn.report import pyplot
    plt = pyplot()

    maps = {"Euclidean distance": euclidean(true, predicted).reshape(shape),
            "cosine similarity": cosine_similarity(true, predicted).reshape(shape)}
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (name, values) in zip(axes, maps.items()):
        low, high = np.nanquantile(values, [0.01, 0.99])
        image = ax.imshow(values, vmin=low, vmax=high, cmap="viridis")
        ax.set_title(name)
        ax.set_axis_off()
        fig.colorbar(image, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
