"""`gamma train --method auto`: candidate methods ranked by cross-validation on the training data.

Materials: the CNN pretrained on simulated spectra and fine-tuned, the same CNN trained on the
labelled spectra alone, PLS-DA, SVM, RF and kNN, scored by the error rate on held-out folds
(StratifiedKFold, up to 5 folds). The pretrained features are learnt once: they come from
simulation only (no user spectra), so sharing them across folds leaks nothing.
Composition: the physics-decoder autoencoder and NNLS on the line library, scored by the mean
absolute error of the atom fractions (KFold, up to 5 folds).
The winner is refitted on every spectrum and keeps the ranking in its config (`extra["selection"]`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from speclearn.core.spectra import Spectra
from speclearn.models.selection import DEFAULT_BUDGET_S, Candidate, Ranking, folds, rank

MATERIAL_METHODS = ("cnn", "cnn-scratch", "plsda", "svm", "rf", "knn")


def _material_model(name: str, *, epochs: int, seed: int, device: str):
    from speclearn.gamma.materials_cnn import ClassicalMaterialClassifier, MaterialCNN
    if name.startswith("cnn"):
        return MaterialCNN(pretrain=name == "cnn", epochs=epochs, seed=seed, device=device)
    return ClassicalMaterialClassifier(name, seed=seed)


def select_material_classifier(spectra: Spectra, labels, *, epochs: int = 60, seed: int = 0,
                               budget_s: float = DEFAULT_BUDGET_S, methods: tuple[str, ...] = MATERIAL_METHODS,
                               features: dict[str, np.ndarray] | None = None,
                               device: str = "auto") -> tuple[object, Ranking]:
    """(winner refitted on all spectra, ranking) among `methods`; `features`: pretrained CNN weights
    to reuse (else they are learnt once here when "cnn" is a candidate); `device`: the CNNs'."""
    from speclearn.gamma.grid import sqrt_grid
    from speclearn.gamma.materials_cnn import GRID, MaterialCNN
    labels = pd.Series(list(labels), dtype=str)
    if features is None and "cnn" in methods:
        base = MaterialCNN(seed=seed, device=device)
        base.grid_ = sqrt_grid(*GRID)
        features = base.pretrained_features()
    ids = np.asarray(spectra.ids)
    y = labels.to_numpy()

    def evaluate(candidate: Candidate, train: np.ndarray, test: np.ndarray):
        model = _material_model(candidate.name, epochs=epochs, seed=seed, device=device)
        extra = {"features": features} if candidate.name == "cnn" else {}
        model.fit(spectra.select(list(ids[train])), y[train], **extra)
        predicted = model.predict(spectra.select(list(ids[test])))["label"].to_numpy()
        return float(np.mean(predicted != y[test])), None

    splits = folds(len(y), classes=y, n_splits=5, seed=seed)
    ranking = rank([Candidate(m, {"method": m}) for m in methods], evaluate, splits,
                   metric="error rate", budget_s=budget_s)
    winner = _material_model(ranking.winner, epochs=epochs, seed=seed, device=device)
    winner.fit(spectra, y, **({"features": features} if ranking.winner == "cnn" else {}))
    _attach(winner, ranking)
    return winner, ranking


def select_composition(spectra: Spectra, targets: pd.DataFrame, *, epochs: int = 150, seed: int = 0,
                       budget_s: float = DEFAULT_BUDGET_S, device: str = "auto") -> tuple[object, Ranking]:
    """(winner refitted on all spectra, ranking) among the autoencoder (on `device`) and NNLS."""
    from speclearn.gamma.composition import composition_types
    types = composition_types()
    ids = np.asarray(spectra.ids)

    def make(name: str):
        return types[name](epochs=epochs, seed=seed, device=device) if name == "ae" else types[name]()

    def evaluate(candidate: Candidate, train: np.ndarray, test: np.ndarray):
        model = make(candidate.name).fit(spectra.select(list(ids[train])), targets.iloc[train])
        predicted = model.predict(spectra.select(list(ids[test])))[list(targets.columns)].to_numpy(float)
        return float(np.mean(np.abs(predicted - targets.iloc[test].to_numpy(float)))), None

    splits = folds(spectra.n_spectra, n_splits=5, seed=seed)
    ranking = rank([Candidate(m, {"method": m}) for m in ("ae", "nnls")], evaluate, splits,
                   metric="atom-fraction MAE", budget_s=budget_s)
    winner = make(ranking.winner).fit(spectra, targets)
    _attach(winner, ranking)
    return winner, ranking


def _attach(model, ranking: Ranking) -> None:
    """Keep the ranking on the model (a classical wrapper keeps it on the estimator it saves)."""
    target = getattr(model, "estimator_", model)
    target.selection_ = ranking.as_dict()
