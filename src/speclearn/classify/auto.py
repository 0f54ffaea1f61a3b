"""`classify train --method auto`: the classifier with the lowest cross-validated error rate.

Candidates: kNN, SVM, random forest, PLS-DA, then the CNN (the slowest, skipped when the time
budget is spent). Folds are stratified by class and, when groups (sample ids) are given, keep every
group on one side (StratifiedGroupKFold), so replicates of one sample never score each other.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from speclearn.core.spectra import Spectra
from speclearn.models.selection import DEFAULT_BUDGET_S, Candidate, Ranking, folds, rank

ORDER = ("knn", "svm", "rf", "plsda", "cnn")


def select_classifier(spectra: Spectra, labels: pd.Series, *, groups: list[str] | None = None, seed: int = 0,
                      budget_s: float | None = DEFAULT_BUDGET_S, cnn: dict | None = None):
    """(winner refitted on all spectra, ranking)."""
    from speclearn.classify.base import check_labels
    from speclearn.models import methods

    types = methods("classify")
    labels = check_labels(labels, spectra, file=spectra.source)
    ids = np.asarray(spectra.ids)
    truth = labels.loc[ids].astype(str).to_numpy()
    splits = folds(len(ids), groups, seed=seed, classes=truth)
    candidates = [Candidate(m, {"method": m, "seed": seed, **((cnn or {}) if m == "cnn" else {})}) for m in ORDER]

    def make(candidate: Candidate):
        params = dict(candidate.params)
        return types[params.pop("method")](**params)

    def evaluate(candidate: Candidate, train: np.ndarray, test: np.ndarray):
        model = make(candidate).fit(spectra.select(list(ids[train])), labels.loc[ids[train]])
        predicted = model.predict(spectra.select(list(ids[test])))["class"].astype(str).to_numpy()
        return float(np.mean(predicted != truth[test])), None

    ranking: Ranking = rank(candidates, evaluate, splits, metric="error rate", budget_s=budget_s)
    winner = make(ranking.candidate(ranking.winner)).fit(spectra, labels)
    winner.selection_ = ranking.as_dict()
    return winner, ranking
