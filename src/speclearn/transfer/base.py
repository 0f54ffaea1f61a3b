"""The shared base of every transfer estimator: fit on paired spectra, predict primary spectra.

A subclass implements `_fit_scaled` / `_predict_scaled` on preprocessed arrays (each instrument
baseline-removed and standard-scaled with its own training statistics) and `_state` / `_restore`
for persistence. The base handles pairing by id, validation splits, axes, scaling back and saving.
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from speclearn.core.errors import InputError
from speclearn.core.memory import iter_blocks
from speclearn.core.spectra import Spectra
from speclearn.models import SavedModel
from speclearn.models import domain
from speclearn.models.estimator import SpectralEstimator
from speclearn.models.selection import holdout
from speclearn.transfer import data

DEFAULT_SECONDARY = "secondary"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InputError(f"secondary name {name!r} must be 1-64 letters, digits, '_' or '-'")
    return name


class TransferModel(SpectralEstimator):
    """Map spectra of a secondary instrument onto the axis and intensity scale of a primary one
    (`axis_` is the primary's axis)."""

    system: ClassVar[str] = "transfer"
    #: fewest paired spectra the method can be fitted on (a validation split included)
    min_pairs: ClassVar[int] = 10

    # --- fitting --------------------------------------------------------------------------
    def fit(self, primary: Spectra, secondary: Spectra, *, validation: tuple[Spectra, Spectra] | None = None,
            name: str = DEFAULT_SECONDARY) -> "TransferModel":
        """Fit on spectra paired by id; `validation` (primary, secondary) defaults to a seeded split."""
        check_name(name)
        primary.check_trainable()
        secondary.check_trainable()
        primary, secondary, validation = self._paired_split(primary, secondary, validation)
        start = time.perf_counter()
        self.axis_ = primary.axis_spec()
        self.secondary_axes_ = {name: secondary.axis_spec()}
        self.n_train_ = primary.n_spectra
        self.primary_pipe_ = data.fit_pipeline(primary, self.baseline_window, self.baseline_sigma)
        self.secondary_pipes_ = {name: data.fit_pipeline(secondary, self.baseline_window, self.baseline_sigma)}
        with tempfile.TemporaryDirectory(prefix="speclearn-transfer-") as spool:
            Xp, Xs, Xp_val, Xs_val = data.scaled_arrays(
                [(self.primary_pipe_, primary), (self.secondary_pipes_[name], secondary),
                 (self.primary_pipe_, validation[0]), (self.secondary_pipes_[name], validation[1])], Path(spool))
            self._fit_scaled(Xs, Xp, Xs_val, Xp_val, name=name)
            del Xp, Xs, Xp_val, Xs_val
        self.learn_domain(secondary.evenly(domain.SAMPLE).values())  # of the first secondary only
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _paired_split(self, primary: Spectra, secondary: Spectra, validation: tuple[Spectra, Spectra] | None
                      ) -> tuple[Spectra, Spectra, tuple[Spectra, Spectra]]:
        """Pair by id, check there are enough pairs and finite values, split off validation if not given."""
        primary, secondary = data.pair(primary, secondary)
        if primary.n_spectra < self.min_pairs:
            raise InputError(f"only {primary.n_spectra} paired spectra; the {self.method} method needs at "
                             f"least {self.min_pairs}", file=primary.source)
        data.check_finite(primary)
        data.check_finite(secondary)
        if validation is None:
            fit, val = holdout(primary.n_spectra, self.validation_fraction, self.seed, min_size=0)
            train_ids, val_ids = [primary.ids[i] for i in fit], [primary.ids[i] for i in val]
            return (primary.select(train_ids), secondary.select(train_ids),
                    (primary.select(val_ids), secondary.select(val_ids)))
        validation = data.pair(*validation)
        validation[0].check_axis_matches(primary.axis_spec(), what="the training primary")
        validation[1].check_axis_matches(secondary.axis_spec(), what="the training secondary")
        return primary, secondary, validation

    def _fit_scaled(self, Xs: np.ndarray, Xp: np.ndarray, Xs_val: np.ndarray, Xp_val: np.ndarray, *,
                    name: str) -> None:
        raise NotImplementedError

    def _validation_error(self, predicted_scaled: np.ndarray, Xp_val: np.ndarray, columns=slice(None)) -> float:
        """Mean squared error in the unscaled primary space (what tuning minimises), over `columns`."""
        scale = self.primary_pipe_.named_steps["scale"].scale_[columns]
        return float(np.mean(((np.asarray(predicted_scaled) - np.asarray(Xp_val)) * scale) ** 2))

    def _tune(self, candidates: list, errors) -> tuple[Any, dict]:
        """The candidate with the lowest validation error; `errors(candidates)` returns one error per candidate."""
        scores = dict(zip(candidates, (float(e) for e in errors(candidates))))
        return min(scores, key=scores.get), {str(k): v for k, v in scores.items()}

    # --- prediction -----------------------------------------------------------------------
    @property
    def secondaries(self) -> list[str]:
        return list(self.secondary_axes_)

    def resolve_secondary(self, name: str | None) -> str:
        if name is None:
            if len(self.secondary_axes_) > 1:
                raise InputError(f"the model knows several secondaries ({', '.join(self.secondaries)}); "
                                 "name one")
            return self.secondaries[0]
        if name not in self.secondary_axes_:
            raise InputError(f"no secondary named {name!r} in the model (known: {', '.join(self.secondaries)})")
        return name

    def predict(self, secondary: Spectra, name: str | None = None) -> Spectra:
        """Primary spectra (baseline removed, unscaled) predicted from secondary spectra."""
        name = self.resolve_secondary(name)
        secondary.check_axis_matches(self.secondary_axes_[name], what=f"the model's secondary {name!r}")
        pipe = self.secondary_pipes_[name]
        blocks = [data.unscale(self.primary_pipe_, self._predict_scaled(pipe.transform(block), name=name))
                  for _, _, _, block in iter_blocks(secondary.flat(), data.BLOCK_ROWS)]
        values = np.concatenate(blocks) if blocks else np.empty((0, len(self.axis_["values"])))
        return data.as_output(secondary, values.astype(np.float32), self.axis_)

    def _predict_scaled(self, Xs: np.ndarray, *, name: str) -> np.ndarray:
        raise NotImplementedError

    def reference(self, primary: Spectra) -> Spectra:
        """Measured primary spectra in the space predictions are reported in (baseline removed)."""
        primary.check_axis_matches(self.axis_, what="the model's primary")
        return data.baseline_removed(self.primary_pipe_, primary)

    # --- persistence ----------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
        """(arrays, estimators, extra) describing the fitted model beyond the shared parts."""
        raise NotImplementedError

    def _restore(self, arrays: dict[str, np.ndarray], estimators: dict[str, Any], extra: dict[str, Any]) -> None:
        raise NotImplementedError

    def _saved_parts(self) -> dict[str, Any]:
        arrays, estimators, extra = self._state()
        estimators = {"primary_prep": self.primary_pipe_, **estimators,
                      **{f"secondary_prep.{n}": p for n, p in self.secondary_pipes_.items()}}
        extra = {"secondary_axes": self.secondary_axes_, "n_train": self.n_train_,
                 "fit_seconds": getattr(self, "fit_seconds_", None), **extra}
        return {"preprocessing": [{"baseline": {"method": "rolling_min", "window": self.baseline_window,
                                                "sigma": self.baseline_sigma}}, {"scale": {}}],
                "extra": extra, "arrays": arrays, "estimators": estimators}

    def _restore_saved(self, saved: SavedModel) -> None:
        self.secondary_axes_ = saved.extra["secondary_axes"]
        self.n_train_ = saved.extra["n_train"]
        self.fit_seconds_ = saved.extra.get("fit_seconds")
        self.primary_pipe_ = saved.estimators["primary_prep"]
        self.secondary_pipes_ = {n: saved.estimators[f"secondary_prep.{n}"] for n in self.secondary_axes_}
        self._restore(saved.arrays, saved.estimators, saved.extra)
