"""Prediction intervals stored in a quantifier's model folder, and `<target>_lo` / `<target>_hi` columns.

`fit_calibrated` trains a quantifier on all but `calibration_fraction` of the training spectra and
calibrates split-conformal scores on the rest; `TrustedQuantifier.save` writes the model folder with the
calibration inside (config `extra["uncertainty"]`, arrays `uncertainty.*`); `TrustedQuantifier.load` reads it
back and `predict_with_intervals` adds the columns. Interval methods:

- conformal: split-conformal (any method; needs a calibration stored at training time);
- counting: counting statistics of the WNNLS physics inversion (always available for wnnls);
- ensemble: Gaussian mean -/+ z sd over a deep ensemble's members (method "ensemble");
- dropout: Gaussian from Monte Carlo dropout (neural methods);
- auto: conformal when stored, else counting / ensemble, else an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.models import save_model
from speclearn.models.estimator import MODEL_TYPES, read
from speclearn.models.selection import holdout
from speclearn.quantify.base import Quantifier, check_targets
from speclearn.models.conformal import SplitConformal, check_level
from speclearn.quantify.counting import CountingStatistics
from speclearn.quantify.dropout import MCDropout
from speclearn.quantify.ensemble import EnsembleSpread

SPREADS = {"counting": CountingStatistics, "dropout": MCDropout, "ensemble": EnsembleSpread}
METHODS = ("auto", "conformal", *SPREADS)
KEY, PREFIX = "uncertainty", "uncertainty."


@dataclass
class TrustedQuantifier:
    """A fitted quantifier plus its optional conformal calibration (and the spread it was scaled by)."""

    quantifier: Quantifier
    conformal: SplitConformal | None = None
    spread: str | None = None  # name in SPREADS for the 'scaled' conformal score
    calibration_fraction: float = 0.0

    def _spread(self, name: str):
        estimator = SPREADS[name]()
        estimator.check(self.quantifier)
        return estimator

    def available(self) -> list[str]:
        """Interval methods this model supports."""
        out = ["conformal"] if self.conformal is not None else []
        for name, cls in SPREADS.items():
            try:
                cls.check(self.quantifier)
                out.append(name)
            except InputError:
                pass
        return out

    def resolve(self, method: str) -> str:
        if method not in METHODS:
            raise InputError(f"unknown interval method {method!r}; choose one of {', '.join(METHODS)}")
        available = self.available()
        if method == "auto":
            method = next((m for m in ("conformal", "counting", "ensemble") if m in available), "")
        if method in SPREADS and method not in available:
            SPREADS[method].check(self.quantifier)  # raises with the reason
        if method not in available:
            name = getattr(self.quantifier, "method", "")
            raise InputError(f"this {name} model has no {'' if method == '' else method + ' '}uncertainty support"
                             f"{'' if not available else ' (it has: ' + ', '.join(available) + ')'}; "
                             "retrain it with a calibration fraction (quantify train --calibration-fraction 0.2)")
        return method

    def predict_intervals(self, spectra: Spectra, level: float, method: str = "auto"
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(predictions, lo, hi) frames indexed by id, one column per target."""
        check_level(level)
        method = self.resolve(method)
        predictions = self.quantifier.predict(spectra)
        X, p = spectra.values().astype(float), predictions.to_numpy(float)
        if method == "conformal":
            sigma = self._spread(self.spread).sigma(self.quantifier, X) if self.spread else None
            lo, hi = self.conformal.interval(p, level, sigma)
        else:
            estimator = self._spread(method)
            lo, hi = estimator.interval(p, level, estimator.sigma(self.quantifier, X))
        frame = lambda a: pd.DataFrame(a, index=predictions.index, columns=predictions.columns)  # noqa: E731
        return predictions, frame(lo), frame(hi)

    # --- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """The quantifier's model folder with the calibration inside."""
        model = self.quantifier.to_saved()
        if self.conformal is not None:
            extra, arrays = self.conformal.state()
            model.extra[KEY] = {"conformal": extra, "spread": self.spread,
                                "calibration_fraction": self.calibration_fraction}
            model.arrays |= {PREFIX + k: v for k, v in arrays.items()}
        return save_model(model, directory, overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | Path) -> "TrustedQuantifier":
        """A quantifier folder with its calibration (none if it was saved without)."""
        saved = read(directory, Quantifier)
        quantifier = MODEL_TYPES[saved.model_type].from_saved(saved)
        info = saved.extra.get(KEY)
        if not info:
            return cls(quantifier)
        conformal = SplitConformal.restore(info["conformal"], {k[len(PREFIX):]: v for k, v in saved.arrays.items()
                                                               if k.startswith(PREFIX)})
        return cls(quantifier, conformal, info.get("spread"), float(info.get("calibration_fraction", 0.0)))


def split_ids(ids: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training ids, calibration ids): a seeded random `fraction` held out for calibration."""
    if not 0 < fraction < 1:
        raise InputError(f"calibration fraction must be between 0 and 1, got {fraction:g}")
    fit, calibration = holdout(len(ids), fraction, seed, min_size=0)
    if len(calibration) < 2 or len(fit) < 3:
        raise InputError(f"{len(ids)} training spectra are too few to hold out a calibration fraction of "
                         f"{fraction:g} (need >= 2 calibration and >= 3 training spectra)")
    return [ids[i] for i in fit], [ids[i] for i in calibration]


def fit_calibrated(quantifier: Quantifier, spectra: Spectra, targets: pd.DataFrame, *,
                   calibration_fraction: float = 0.2, score: str = "log", spread: str | None = None,
                   seed: int = 0, **fit_kwargs) -> TrustedQuantifier:
    """Fit on the training part and calibrate split-conformal scores on the held-out part.

    spread: with score='scaled', the spread estimator (counting, dropout or ensemble) dividing the
    residuals. fit_kwargs (clean=, peaks=) go to `quantifier.fit`.
    """
    targets = check_targets(targets, spectra)
    train_ids, cal_ids = split_ids(spectra.ids, calibration_fraction, seed)
    clean = fit_kwargs.pop("clean", None)
    if clean is not None:
        clean = clean.select(train_ids)
    peaks = fit_kwargs.pop("peaks", None)
    if peaks is not None and "id" in peaks:
        peaks = peaks[peaks["id"].astype(str).isin(set(train_ids))]
    quantifier.fit(spectra.select(train_ids), targets.loc[train_ids], clean=clean, peaks=peaks, **fit_kwargs)
    trusted = TrustedQuantifier(quantifier, SplitConformal(score), spread, calibration_fraction)
    if (score == "scaled") != (spread is not None):
        raise InputError("the 'scaled' conformal score needs a spread estimator, and only it uses one")
    calibration = spectra.select(cal_ids)
    p = quantifier.predict(calibration).to_numpy(float)
    sigma = trusted._spread(spread).sigma(quantifier, calibration.values().astype(float)) if spread else None
    trusted.conformal.calibrate(targets.loc[cal_ids].to_numpy(float), p, sigma)
    return trusted


def interval_columns(predictions: pd.DataFrame, lo: pd.DataFrame, hi: pd.DataFrame) -> pd.DataFrame:
    """Predictions with `<target>_lo` and `<target>_hi` after each target column."""
    columns = {}
    for name in predictions.columns:
        columns[name] = predictions[name]
        columns[f"{name}_lo"] = lo[name]
        columns[f"{name}_hi"] = hi[name]
    return pd.DataFrame(columns, index=predictions.index)


def add_intervals(model_dir: str | Path, quantifier: Quantifier, spectra: Spectra, level: float,
                  method: str = "auto", scale: np.ndarray | None = None) -> pd.DataFrame:
    """Hook for `quantify predict --interval`: predictions (times `scale`, e.g. dilution factors) with
    `<target>_lo` and `<target>_hi` after each target column. Raises InputError (before anything is
    written) when the model has no uncertainty support of that kind."""
    trusted = TrustedQuantifier.load(model_dir)
    trusted.quantifier = quantifier
    predictions, lo, hi = trusted.predict_intervals(spectra, level, method)
    factor = np.ones(len(predictions)) if scale is None else np.asarray(scale, float)
    return interval_columns(*(frame * factor[:, None] for frame in (predictions, lo, hi)))
