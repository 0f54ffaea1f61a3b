"""What every quantifier shares: input checks, the fit/predict protocol, saving through `SavedModel`.

A quantifier maps spectra to a table of concentrations (one column per target, any names). Subclasses
implement `_fit(X, Y, context)` / `_predict(X)` on numpy arrays and `_state()` / `_restore()` for
persistence; this base does the validation, id bookkeeping and the model folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import align_table
from speclearn.models import SavedModel
from speclearn.models.estimator import SpectralEstimator


@dataclass
class FitContext:
    """Optional training information beside spectra and targets."""

    spectra: Spectra
    clean: np.ndarray | None = None  # (n, channels) noise-free spectra aligned with the training spectra
    peaks: pd.DataFrame | None = None  # per-spectrum peak table: id, species, mass_number, centre, width, amplitude
    params: np.ndarray | None = None  # (n, P) per-spectrum instrument/process parameters (`Quantifier.uses_params`)


#: Largest target magnitude accepted: beyond it squared errors overflow float64.
MAX_TARGET = 1e100


def check_counts(spectra: Spectra) -> None:
    """Counting methods model Poisson counts: refuse spectra whose values go clearly negative
    (below -5 % of the largest magnitude; noise around a zero baseline is accepted)."""
    values = spectra.values()
    low, high = float(values.min()), float(np.abs(values).max())
    if low < -0.05 * high:
        row = int(np.argmin(values.min(axis=1)))
        raise InputError(f"negative value {low:g}: this method models detector counts, which cannot be "
                         "negative (background-subtracted data? use --method pls)", file=spectra.source,
                         row=f"{row + 1} (id {spectra.ids[row]!r})")


def check_targets(targets: pd.DataFrame, spectra: Spectra, *, file: str | None = None) -> pd.DataFrame:
    """Targets aligned with the spectra (same ids), numeric, finite and non-negative."""
    if targets.shape[1] == 0:
        raise InputError("the targets table has no target column", file=file)
    targets = align_table(targets, spectra, file=file)
    values = targets.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = (int(x[0]) for x in np.nonzero(bad))
        raise InputError("concentration is missing or not a finite number", file=file,
                         row=f"id {targets.index[r]!r}", column=f"{c + 2} ({targets.columns[c]})")
    if np.abs(values).max() > MAX_TARGET:
        r, c = (int(x[0]) for x in np.nonzero(np.abs(values) > MAX_TARGET))
        raise InputError(f"value {values[r, c]:.3g} is too large to fit (rescale the unit)", file=file,
                         row=f"id {targets.index[r]!r}", column=f"{c + 2} ({targets.columns[c]})")
    negative = values < 0
    if negative.any():
        r, c = (int(x[0]) for x in np.nonzero(negative))
        raise InputError(f"negative concentration {values[r, c]:g}", file=file, row=f"id {targets.index[r]!r}",
                         column=f"{c + 2} ({targets.columns[c]})")
    return pd.DataFrame(values, index=targets.index, columns=[str(c) for c in targets.columns])


def check_params(params: pd.DataFrame, spectra: Spectra, *, columns: list[str] | None = None,
                 file: str | None = None) -> np.ndarray:
    """Per-spectrum parameters as (n, P) floats in the spectra's order: every spectrum needs a row and every
    value must be a finite number; `columns` (those a model was trained with) must all be present."""
    if params.shape[1] == 0:
        raise InputError("the parameters table has no parameter column", file=file)
    params = align_table(params, spectra, file=file)
    if columns is not None:
        missing = [c for c in columns if c not in params.columns]
        if missing:
            raise InputError(f"parameter column(s) {', '.join(map(repr, missing))} missing; the model was trained "
                             f"with {', '.join(columns)}", file=file)
        params = params[columns]
    values = params.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = (int(x[0]) for x in np.nonzero(bad))
        raise InputError("parameter is missing or not a finite number", file=file, row=f"id {params.index[r]!r}",
                         column=f"{c + 2} ({params.columns[c]})")
    return values


def align_clean(clean: Spectra | None, spectra: Spectra) -> np.ndarray | None:
    """Clean spectra as an array in the training spectra's order, on the same axis."""
    if clean is None:
        return None
    clean.check_axis_matches(spectra.axis_spec(), what="the training spectra")
    order = align_table(pd.DataFrame(index=clean.meta.index), spectra, file=clean.source)
    return clean.select(order.index).values()


class Quantifier(SpectralEstimator):
    """Base of every quantification method (scikit-learn style; hyperparameters are __init__ args)."""

    system: ClassVar[str] = "quantify"
    uses_params: ClassVar[bool] = False  # accepts per-spectrum instrument parameters (then `_predict(X, P)`)
    models_counts: ClassVar[bool] = False  # a physics model of detector counts: predict refuses negative
    # values (its `_fit` calls `check_counts` once the targets are known to be elements)

    def fit(self, spectra: Spectra, targets: pd.DataFrame, *, clean: Spectra | None = None,
            peaks: pd.DataFrame | None = None, params: pd.DataFrame | None = None) -> "Quantifier":
        targets = check_targets(targets, spectra)
        spectra.check_trainable()
        if spectra.n_spectra < 3:
            raise InputError(f"{spectra.n_spectra} training spectra; at least 3 are needed", file=spectra.source)
        if params is not None and not self.uses_params:
            raise InputError(f"the {self.method} method does not use instrument parameters")
        self.axis_ = spectra.axis_spec()
        self.targets_ = list(targets.columns)
        self.param_columns_ = None if params is None else [str(c) for c in params.columns]
        context = FitContext(spectra=spectra, clean=align_clean(clean, spectra), peaks=peaks,
                             params=None if params is None else check_params(params, spectra))
        X = spectra.values().astype(float)
        self._fit(X, targets.to_numpy(float), context)
        self.learn_domain(X)
        return self

    def predict(self, spectra: Spectra, params: pd.DataFrame | None = None) -> pd.DataFrame:
        """Concentrations: one row per spectrum (indexed by id), one column per training target.
        `params`: the per-spectrum parameters, required exactly when the model was trained with them."""
        self.check_spectra(spectra)
        columns = getattr(self, "param_columns_", None)
        if columns and params is None:
            raise InputError(f"the model was trained with instrument parameters ({', '.join(columns)}); "
                             "give them for these spectra too (--params)")
        if params is not None and not columns:
            raise InputError("the model was trained without instrument parameters; leave them out (--params)")
        if self.models_counts:
            check_counts(spectra)
        X = spectra.values().astype(float)
        values = self._predict(X, check_params(params, spectra, columns=columns)) if columns else self._predict(X)
        if not np.isfinite(values).all():
            row = int(np.argmin(np.isfinite(values).all(axis=1)))
            raise InputError(f"the {self.method} model produced a non-finite concentration for spectrum "
                             f"{row + 1} (id {spectra.ids[row]!r})", file=spectra.source)
        return pd.DataFrame(values, index=spectra.meta.index, columns=self.targets_)

    # --- to implement ------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        raise NotImplementedError

    def _predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
        """(JSON-able extra, named arrays, named sklearn estimators) that `_restore` rebuilds from."""
        raise NotImplementedError

    def _restore(self, extra: dict[str, Any], arrays: dict[str, np.ndarray], estimators: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- optional outputs (methods that model the physics override these) ------------------------
    def reconstruct(self, X: np.ndarray) -> np.ndarray | None:
        """Denoised spectra, or None when the method does not model the spectrum."""
        return None

    def peak_parameters(self, X: np.ndarray) -> np.ndarray | None:
        """(n, K, 3) centre (m/z), FWHM and height of each analyte's main isotope, or None."""
        return None

    def main_isotopes(self) -> dict[str, int]:
        """Mass number of the isotope `peak_parameters` describes, per analyte."""
        from speclearn.physics.icpms import ion_pattern

        known = getattr(self, "isotopes_", None) or {}
        return {k: known.get(k) or max(ion_pattern(k), key=lambda p: p[1])[2] for k in self.targets_}

    def internal_standard_recovery(self, X: np.ndarray) -> np.ndarray | None:
        """Internal-standard signal relative to the training median (1.0 = 100 %), or None."""
        return None

    # --- persistence ---------------------------------------------------------------------------
    def _saved_parts(self) -> dict[str, Any]:
        extra, arrays, estimators = self._state()
        limits = getattr(self, "limits_", None)
        extra = {**extra, "unit": getattr(self, "unit_", ""), "param_columns": getattr(self, "param_columns_", None),
                 "limits": None if limits is None else limits.reset_index(names="analyte").to_dict("list"),
                 "data_kind": getattr(self, "data_kind_", "icpms")}
        return {"targets": self.targets_, "extra": extra, "arrays": arrays, "estimators": estimators}

    def _restore_saved(self, saved: SavedModel) -> None:
        self.targets_ = list(saved.targets)
        self.unit_ = saved.extra.get("unit", "")
        self.param_columns_ = saved.extra.get("param_columns")
        self.data_kind_ = saved.extra.get("data_kind", "icpms")
        limits = saved.extra.get("limits")
        self.limits_ = None if limits is None else pd.DataFrame(limits).set_index("analyte")
        self._restore(saved.extra, saved.arrays, saved.estimators)


def collapse_reason(Y: np.ndarray, P: np.ndarray, names: list[str]) -> str | None:
    """Why predictions `P` of targets `Y` (n, targets) learned nothing, or None: near-constant predictions
    (sd < 1e-3 sd of the targets) or non-finite values for any target."""
    Y, P = np.asarray(Y, float), np.asarray(P, float)
    if not np.isfinite(P).all():
        return "non-finite predictions"
    for k, name in enumerate(names):
        spread = float(np.std(Y[:, k]))
        if spread > 0 and float(np.std(P[:, k])) < 1e-3 * spread:
            return (f"near-constant predictions for {name} (sd {np.std(P[:, k]):.3g} vs target sd {spread:.3g}; "
                    f"mean {np.mean(P[:, k]):.5g})")
    return None


def relative_loss_floor(Y: np.ndarray) -> np.ndarray:
    """Per-target concentration floor for relative errors/weights: 1 % of the median positive value."""
    floors = []
    for column in Y.T:
        positive = column[column > 0]
        floors.append(0.01 * np.median(positive) if positive.size else 1.0)
    return np.asarray(floors)


def calibrate(signal: np.ndarray, Y: np.ndarray, floors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-target calibration line concentration = slope * signal + intercept, weighted by
    1 / (concentration + floor) so that it minimises relative rather than absolute errors."""
    slope, intercept = np.empty(Y.shape[1]), np.empty(Y.shape[1])
    for k in range(Y.shape[1]):
        w = 1.0 / (Y[:, k] + floors[k])
        A = np.stack([signal[:, k], np.ones(len(Y))], axis=1) * w[:, None]
        slope[k], intercept[k] = np.linalg.lstsq(A, Y[:, k] * w, rcond=None)[0]
    return slope, intercept
