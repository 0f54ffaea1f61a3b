"""`quantify train --method auto`: candidates filtered by the data, ranked by cross-validation.

ICP-MS data (every target an element symbol, an m/z axis, non-negative counts) get the physics
inversion (with the internal standard given or found) beside PLS and a random forest; any other
data (property targets: water, fat, octane, glucose...) get PLS with a searched preprocessing
(none, SNV, MSC, Savitzky-Golay 1st / 2nd derivative at two windows; components by inner CV) and a
random forest (and a 1-D CNN from 200 spectra on); when PLS wins, its preprocessing is tried again on parts of the axis (halves, the
middle half, three quarters: interval PLS), the full axis winning ties. Candidates are scored by the mean over targets of RMSE / sd(target) on held-out
folds (5-fold, repeated 3 times up to 100 spectra and twice up to 400: small sets rank noisily);
near-constant out-of-fold predictions lose as "collapsed". The out-of-fold predictions of the
winner calibrate its conformal intervals.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.models.selection import DEFAULT_BUDGET_S, Candidate, Collapsed, Ranking, folds, rank
from speclearn.quantify.base import Quantifier, collapse_reason

#: Elements commonly added as internal standards, tried by `--internal-standard auto`.
COMMON_INTERNAL_STANDARDS = ("Sc", "Ge", "Y", "Rh", "In", "Tb", "Ho", "Lu", "Re", "Bi", "Ga", "Ir", "Tm", "Li", "Cs")
#: sd of log signal above which an element is not "at a constant level"
MAX_LOG_SD = 1.0


def single_element(name: str) -> bool:
    from speclearn.physics.icpms import parse_species

    try:
        counts, charge = parse_species(name)
    except InputError:
        return False
    return charge == 1 and len(counts) == 1 and next(iter(counts.values())) == 1 and name in counts


def is_icpms(spectra: Spectra, targets: list[str]) -> bool:
    """Element-symbol targets on an m/z axis (or on a 1..300 axis of non-negative counts)."""
    if not targets or not all(single_element(t) for t in targets):
        return False
    if spectra.axis_kind == "mz":
        return True
    axis, X = spectra.axis, spectra.values()
    return bool(axis.min() >= 1 and axis.max() <= 300 and np.nanmin(X) >= 0
                and np.allclose(X[: min(len(X), 20)], np.round(X[: min(len(X), 20)])))


def element_signal(spectra: Spectra, element: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(net signal, background) of `element`'s most abundant isotope per spectrum (a +/-0.3 m/z window
    minus the median of 0.6..1.0 m/z either side), or None when it is not on the axis."""
    from speclearn.physics.icpms import ion_pattern

    mz = max(ion_pattern(element), key=lambda p: p[1])[0]
    axis, X = spectra.axis, spectra.values().astype(float)
    if not axis.min() + 1 < mz < axis.max() - 1:
        return None
    peak = np.abs(axis - mz) <= 0.3
    side = (np.abs(axis - mz) >= 0.6) & (np.abs(axis - mz) <= 1.0)
    if peak.sum() < 1 or side.sum() < 2:
        return None
    background = np.median(X[:, side], axis=1)
    return X[:, peak].sum(axis=1) - background * peak.sum(), background * peak.sum()


def detect_internal_standard(spectra: Spectra, targets: list[str]) -> tuple[str | None, dict[str, float]]:
    """(element, {candidate: sd of log signal}) for `--internal-standard auto`: among common internal
    standards not in the targets and with no target isotope within 0.6 m/z, the one visible in every
    spectrum (net signal > 5 sqrt(background + 1)) whose signal is the most constant (sd of log signal
    <= `MAX_LOG_SD`); None when no element qualifies."""
    from speclearn.physics.icpms import ion_pattern

    target_masses = np.array([m for t in targets for m, _, _ in ion_pattern(t)])
    spreads: dict[str, float] = {}
    for element in COMMON_INTERNAL_STANDARDS:
        if element in targets:
            continue
        main = max(ion_pattern(element), key=lambda p: p[1])[0]
        if target_masses.size and np.min(np.abs(target_masses - main)) < 0.6:
            continue
        measured = element_signal(spectra, element)
        if measured is None:
            continue
        net, background = measured
        if np.all(net > 5 * np.sqrt(np.maximum(background, 0) + 1)):
            spreads[element] = float(np.std(np.log(net)))
    constant = {k: v for k, v in spreads.items() if v <= MAX_LOG_SD}
    return (min(constant, key=constant.get) if constant else None), spreads


def candidates(kind: str, n_channels: int, *, internal_standard: str = "", seed: int = 0,
               n_spectra: int | None = None) -> list[Candidate]:
    """The candidate methods for ICP-MS (`kind` 'icpms') or property data ('property')."""
    out = []
    if kind == "icpms":
        out.append(Candidate("wnnls", {"method": "wnnls", "internal_standard": internal_standard}))
        out.append(Candidate("pls", {"method": "pls", "seed": seed}))
    else:
        windows = sorted({max(5, (n_channels // 60) | 1), max(9, (n_channels // 20) | 1)})
        out += [Candidate(f"pls-{p}", {"method": "pls", "preprocess": p, "seed": seed})
                for p in ("none", "snv", "msc")]
        out += [Candidate(f"pls-{p}-w{w}", {"method": "pls", "preprocess": p, "window": w, "seed": seed})
                for p in ("sg1", "sg2", "snv+sg1") for w in windows]
    out.append(Candidate("rf", {"method": "rf", "seed": seed, "log_targets": kind == "icpms"}))
    if kind != "icpms":
        from speclearn.quantify.cnn import MIN_SPECTRA
        few = n_spectra is not None and n_spectra < MIN_SPECTRA
        out.append(Candidate("cnn", {"method": "cnn", "seed": seed},
                             excluded=f"{n_spectra} spectra; the CNN is tried from {MIN_SPECTRA} on" if few else None))
    return out


#: Spectral ranges tried around the best PLS preprocessing, as fractions of the axis span.
RANGES = ((0.0, 0.5), (0.5, 1.0), (0.25, 0.75), (0.0, 0.75), (0.25, 1.0))
MIN_CHANNELS_FOR_RANGES = 24


def range_candidates(best: Candidate, axis: np.ndarray) -> list[Candidate]:
    """The winning PLS preprocessing restricted to parts of the axis (interval PLS, second stage)."""
    low, span = float(axis.min()), float(axis.max() - axis.min())
    out = []
    for a, b in RANGES:
        start, stop = low + a * span, low + b * span
        out.append(Candidate(f"{best.name}-range{start:.4g}-{stop:.4g}",
                             {**best.params, "start": start, "stop": stop}))
    return out


def make(candidate: Candidate) -> Quantifier:
    from speclearn.quantify import METHODS

    params = dict(candidate.params)
    return METHODS[params.pop("method")](**params)


def normalised_rmse(Y: np.ndarray, P: np.ndarray, scale: np.ndarray) -> float:
    """Mean over targets of RMSE / scale."""
    return float(np.mean(np.sqrt(np.mean((Y - P) ** 2, axis=0)) / scale))


def select_quantifier(spectra: Spectra, targets: pd.DataFrame, *, kind: str, internal_standard: str = "",
                      groups=None, seed: int = 0, budget_s: float | None = DEFAULT_BUDGET_S,
                      extra_candidates: list[Candidate] | None = None) -> tuple[Quantifier, Ranking, np.ndarray]:
    """(winner refitted on all data, ranking, out-of-fold predictions of the winner (n, targets))."""
    Y = targets.to_numpy(float)
    scale = np.where(Y.std(axis=0) > 0, Y.std(axis=0), 1.0)
    names = list(targets.columns)
    n = spectra.n_spectra
    splits = folds(n, groups, n_splits=5 if n <= 400 else 3, seed=seed, n_repeats=3 if n <= 100 else 2 if n <= 400 else 1)
    ids = np.asarray(spectra.ids)

    def evaluate(candidate: Candidate, train: np.ndarray, test: np.ndarray):
        model = make(candidate).fit(spectra.select(list(ids[train])), targets.iloc[train])
        P = model.predict(spectra.select(list(ids[test]))).to_numpy(float)
        return normalised_rmse(Y[test], P, scale), (test, P)

    def check(candidate: Candidate, payloads: list) -> None:
        P = np.empty_like(Y)
        for test, predicted in payloads:
            P[test] = predicted
        reason = collapse_reason(Y, P, names)
        if reason is None and np.all(1 - np.sum((Y - P) ** 2, axis=0) / np.sum((Y - Y.mean(0)) ** 2, axis=0) <= 0):
            reason = "R^2 <= 0 on every target (no better than the training mean)"
        if reason:
            raise Collapsed(reason)

    start = time.perf_counter()
    ranking = rank([*candidates(kind, spectra.n_channels, internal_standard=internal_standard, seed=seed,
                                n_spectra=n),
                    *(extra_candidates or [])], evaluate, splits,
                   metric="RMSE / sd(target)", budget_s=budget_s, check=check)
    best = ranking.candidate(ranking.winner)
    if kind != "icpms" and best.params.get("method") == "pls" and spectra.n_channels >= MIN_CHANNELS_FOR_RANGES:
        refined = rank([best, *range_candidates(best, spectra.axis)], evaluate, splits, metric="RMSE / sd(target)",
                       budget_s=None if budget_s is None else max(budget_s - (time.perf_counter() - start), 1.0),
                       check=check)
        ranking = Ranking(ranking.metric, ranking.splitter, ranking.n_folds, [*ranking.rows, *refined.rows[1:]],
                          refined.winner, budget_s, {**ranking.payloads, **refined.payloads})
    oof = np.empty_like(Y)
    for test, predicted in ranking.payloads[ranking.winner]:
        oof[test] = predicted
    winner = make(ranking.candidate(ranking.winner)).fit(spectra, targets)
    winner.selection_ = ranking.as_dict()
    return winner, ranking, oof


def cross_coverage(Y: np.ndarray, oof: np.ndarray, payload_tests: list[np.ndarray], level: float, score: str) -> float:
    """Coverage at `level` of conformal intervals calibrated on the other folds' out-of-fold residuals."""
    from speclearn.models.conformal import SplitConformal

    covered = []
    for test in payload_tests:
        rest = np.setdiff1d(np.arange(len(Y)), test)
        if len(rest) < 2:
            continue
        lo, hi = SplitConformal(score).calibrate(Y[rest], oof[rest]).interval(oof[test], level)
        covered.append((Y[test] >= lo) & (Y[test] <= hi))
    return float(np.mean(np.concatenate(covered))) if covered else float("nan")
