"""`denoise train --method auto`: pick a denoiser without clean data.

Candidates: identity ("do nothing", always first, so it wins ties), Savitzky-Golay smoothing
(window searched), PCA reconstruction (components searched) and the network denoisers the data allow
(the blind-spot U-Net always, the replicate-trained U-Net and SpectroscopyNet with groups, the
supervised U-Net with clean pairs). The criterion needs no clean spectra:

- with groups of replicates (spectra sharing a group id): held-out replicate disagreement, the mean
  RMS distance of each denoised replicate to the mean of the other *raw* replicates of its group,
  computed on groups held out of training (GroupKFold). Replicate noise is independent, so this is
  the true error plus a constant: lower means closer to the noise-free spectrum;
- without groups: a J-invariant (blind-spot) loss: every 4th channel is hidden (replaced by the
  mean of its neighbours), the denoiser's output there is compared with the hidden raw value.

A candidate must beat identity by more than `TIE_TOLERANCE` to be chosen.
"""
from __future__ import annotations

import numpy as np

from speclearn.core.spectra import Spectra
from speclearn.denoise.base import Denoiser
from speclearn.models import methods
from speclearn.models.selection import DEFAULT_BUDGET_S, Candidate, Ranking, folds, rank

TIE_TOLERANCE = 0.01
BLIND_SPOT_STRIDE = 4


def candidates(n_train: int, n_channels: int, *, groups: bool, clean: bool, seed: int = 0,
               network_params: dict | None = None) -> list[Candidate]:
    out = [Candidate("identity", {"method": "classical", "baseline": None, "window_length": 0})]
    for window in (5, 9, 15, 25, 41):
        if window < n_channels:
            out.append(Candidate(f"savgol-w{window}", {"method": "classical", "baseline": None,
                                                        "window_length": window, "polyorder": 2}))
    for k in (1, 2, 4, 8, 16, 32):
        if k < min(n_train, n_channels):
            out.append(Candidate(f"pca-{k}", {"method": "classical", "baseline": None, "window_length": 0,
                                              "n_components": k, "seed": seed}))
    network = {"seed": seed, **(network_params or {})}  # max_seconds: set by select_denoiser from the budget
    if groups:
        out.append(Candidate("noise2noise", {"method": "noise2noise", **network}))
        out.append(Candidate("siamese", {"method": "siamese", **network}))
    out.append(Candidate("blindspot", {"method": "blindspot", **network}))
    if clean:
        out.append(Candidate("supervised", {"method": "supervised", **network}))
    return out


def make(candidate: Candidate) -> Denoiser:
    params = dict(candidate.params)
    return methods("denoise")[params.pop("method")](**params)


def replicate_disagreement(denoised: np.ndarray, raw: np.ndarray, codes: np.ndarray) -> float:
    """Mean RMS distance of each denoised spectrum to the mean of the other raw spectra of its group
    (groups with one spectrum are skipped; NaN when no group has two)."""
    distances = []
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        if len(members) < 2:
            continue
        total = raw[members].sum(axis=0)
        for i in members:
            others = (total - raw[i]) / (len(members) - 1)
            distances.append(np.sqrt(np.mean((denoised[i] - others) ** 2)))
    return float(np.mean(distances)) if distances else float("nan")


def blind_spot_loss(denoiser: Denoiser, spectra: Spectra) -> float:
    """RMS error at hidden channels: each channel is hidden once (replaced by the mean of its two
    neighbours) and predicted from the rest."""
    X = spectra.values().astype(float)
    predicted = np.empty_like(X)
    for offset in range(BLIND_SPOT_STRIDE):
        hidden = np.arange(offset, X.shape[1], BLIND_SPOT_STRIDE)
        masked = X.copy()
        left, right = np.clip(hidden - 1, 0, X.shape[1] - 1), np.clip(hidden + 1, 0, X.shape[1] - 1)
        masked[:, hidden] = 0.5 * (X[:, left] + X[:, right])
        predicted[:, hidden] = denoiser.transform(spectra.with_intensity(masked)).values()[:, hidden]
    return float(np.sqrt(np.mean((predicted - X) ** 2)))


def select_denoiser(spectra: Spectra, *, groups: list[str] | None = None, clean: Spectra | None = None,
                    seed: int = 0, budget_s: float | None = DEFAULT_BUDGET_S, network_params: dict | None = None
                    ) -> tuple[Denoiser, Ranking]:
    """(winner refitted on all spectra, ranking)."""
    ids = np.asarray(spectra.ids)
    codes = None if groups is None else np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1]
    splits = folds(spectra.n_spectra, groups, n_splits=5, seed=seed)
    n_train = min(len(train) for train, _ in splits[1])

    def evaluate(candidate: Candidate, train: np.ndarray, test: np.ndarray):
        denoiser = make(candidate).fit(spectra.select(list(ids[train])),
                                       groups=None if groups is None else [groups[i] for i in train],
                                       clean=None if clean is None else clean.select(list(ids[train])))
        test_spectra = spectra.select(list(ids[test]))
        if codes is None:
            return blind_spot_loss(denoiser, test_spectra), None
        raw = test_spectra.values().astype(float)
        return replicate_disagreement(denoiser.transform(test_spectra).values(), raw, codes[test]), None

    metric = ("held-out replicate disagreement (RMS to the mean of the other raw replicates)" if codes is not None
              else "blind-spot RMS error at hidden channels")
    network_params = {"max_seconds": None if budget_s is None else budget_s / (2 * len(splits[1])),
                      **(network_params or {})}
    ranking = rank(candidates(n_train, spectra.n_channels, groups=codes is not None, clean=clean is not None,
                              seed=seed, network_params=network_params),
                   evaluate, splits, metric=metric, budget_s=budget_s, tie_tolerance=TIE_TOLERANCE)
    winner = make(ranking.candidate(ranking.winner)).fit(spectra, groups=groups, clean=clean)
    winner.selection_ = ranking.as_dict()
    return winner, ranking
