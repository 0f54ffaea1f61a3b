"""`transfer train --method auto`: the transfer that best predicts held-out primary spectra.

Candidates, cheapest first: none (the secondary resampled onto the primary axis), direct
standardisation (rank tuned), piecewise DS (window tuned), PLS, kNN, then the networks (one-step MLP,
VAE + MLP). Each is fitted on the training folds of the pairs (its own tuning split inside them) and
scored by the RMSE between transferred secondary and measured primary spectra (baseline removed) of
the held-out pairs; "none" comes first and wins ties, so a network is chosen only when CV says so.
"""
from __future__ import annotations

import numpy as np

from speclearn.core.spectra import Spectra
from speclearn.models.selection import DEFAULT_BUDGET_S, Candidate, Ranking, folds, rank
from speclearn.transfer.base import TransferModel
from speclearn.transfer.data import pair

ORDER = ("none", "ds", "pds", "pls", "knn", "mlp", "vae-mlp")
NETWORKS = ("mlp", "vae-mlp")


def make(candidate: Candidate) -> TransferModel:
    from speclearn.transfer import METHODS

    params = dict(candidate.params)
    return METHODS[params.pop("method")](**params)


def select_transfer(primary: Spectra, secondary: Spectra, *, name: str, seed: int = 0,
                    budget_s: float | None = DEFAULT_BUDGET_S, shared: dict | None = None,
                    network: dict | None = None) -> tuple[TransferModel, Ranking]:
    """(winner refitted on all pairs, ranking). `shared`: parameters of every method (baseline);
    `network`: extra parameters of the networks (device, epochs)."""
    from speclearn.transfer import METHODS

    primary, secondary = pair(primary, secondary)
    ids = np.asarray(primary.ids)
    splits = folds(primary.n_spectra, None, n_splits=5, seed=seed)
    n_train = min(len(train) for train, _ in splits[1])
    candidates = []
    for method in ORDER:
        extra = dict(network or {}) if method in NETWORKS else {}
        if method == "vae-mlp" and "epochs" in extra:
            extra["vae_epochs"] = extra["mlp_epochs"] = extra.pop("epochs")
        params = {"method": method, "seed": seed, **(shared or {}), **extra}
        too_few = n_train < METHODS[method].min_pairs
        candidates.append(Candidate(method, params, excluded=f"needs >= {METHODS[method].min_pairs} training pairs"
                                    if too_few else None))

    def evaluate(candidate: Candidate, train: np.ndarray, test: np.ndarray):
        model = make(candidate).fit(primary.select(list(ids[train])), secondary.select(list(ids[train])), name=name)
        predicted = model.predict(secondary.select(list(ids[test])), name).values()
        measured = model.reference(primary.select(list(ids[test]))).values()
        return float(np.sqrt(np.mean((np.asarray(predicted, float) - np.asarray(measured, float)) ** 2))), None

    ranking = rank(candidates, evaluate, splits, metric="RMSE transferred secondary vs primary (held-out pairs)",
                   budget_s=budget_s)
    winner = make(ranking.candidate(ranking.winner)).fit(primary, secondary, name=name)
    winner.selection_ = ranking.as_dict()
    return winner, ranking
