"""Deep ensembles: several copies of a quantifier trained with different seeds; mean and spread.

Members are the base method with `seed = seed + i` (methods without a seed parameter are trained on
bootstrap resamples instead, so they still differ). Saved like any quantifier (method "ensemble"):
each member's state is stored under the prefix `m<i>.`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.quantify.base import FitContext, Quantifier
from speclearn.models.conformal import check_level
from speclearn.models.estimator import methods


class DeepEnsemble(Quantifier):
    """n_members copies of `base_method` (hyperparameters `base_params`), predictions averaged."""

    method = "ensemble"

    def __init__(self, base_method: str = "caemmt", base_params: dict | None = None, n_members: int = 5,
                 seed: int = 0):
        store_params(self, locals())

    def _member(self, i: int) -> Quantifier:
        known = methods("quantify")
        if self.base_method not in known:
            raise InputError(f"unknown quantification method {self.base_method!r}; known: {', '.join(sorted(known))}")
        cls = known[self.base_method]
        params = dict(self.base_params or {})
        if "seed" in cls().get_params():
            params["seed"] = self.seed + i
        return cls(**params)

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> None:
        if self.n_members < 2:
            raise InputError(f"an ensemble needs at least 2 members, got {self.n_members}")
        spectra = context.spectra
        clean = None if context.clean is None else spectra.with_intensity(context.clean)
        self.members_ = []
        for i in range(self.n_members):
            member = self._member(i)
            if "seed" in member.get_params():
                part, extra = spectra, {"clean": clean, "peaks": context.peaks}
            else:  # bootstrap resample; duplicated spectra get unique ids
                rows = np.random.default_rng(self.seed + i).integers(0, len(X), len(X))
                ids = pd.Index([f"{spectra.ids[r]}#{k}" for k, r in enumerate(rows)], name="id")
                part, extra = replace(spectra, intensity=X[rows], meta=pd.DataFrame(index=ids)), {}
            targets = pd.DataFrame(Y if part is spectra else Y[rows], index=part.meta.index, columns=self.targets_)
            self.members_.append(member.fit(part, targets, **extra))

    def draws(self, X: np.ndarray) -> np.ndarray:
        """(members, n, targets) predictions of every member."""
        return np.stack([m._predict(X) for m in self.members_])

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self.draws(X).mean(axis=0)

    # --- persistence -----------------------------------------------------------------------------
    def _state(self):
        extra, arrays, estimators = {"members": []}, {}, {}
        for i, member in enumerate(self.members_):
            e, a, s = member._state()
            extra["members"].append(e)
            arrays |= {f"m{i}.{k}": v for k, v in a.items()}
            estimators |= {f"m{i}_{k}": v for k, v in s.items()}
        return extra, arrays, estimators

    def _restore(self, extra: dict[str, Any], arrays, estimators) -> None:
        self.members_ = []
        for i, member_extra in enumerate(extra["members"]):
            member = self._member(i)
            member.axis_, member.targets_ = self.axis_, self.targets_
            member._restore(member_extra, {k[len(f"m{i}."):]: v for k, v in arrays.items() if k.startswith(f"m{i}.")},
                            {k[len(f"m{i}_"):]: v for k, v in estimators.items() if k.startswith(f"m{i}_")})
            self.members_.append(member)


class EnsembleSpread:
    """Gaussian intervals mean -/+ z sd over the members of a `DeepEnsemble`."""

    name = "ensemble"

    @staticmethod
    def check(model) -> None:
        if not isinstance(model, DeepEnsemble):
            raise InputError(f"ensemble intervals need a model trained as an ensemble (method 'ensemble'), "
                             f"not {getattr(model, 'method', type(model).__name__)!r}")

    def sigma(self, model, X: np.ndarray) -> np.ndarray:
        self.check(model)
        return model.draws(X).std(axis=0, ddof=1)

    def interval(self, p: np.ndarray, level: float, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = norm.ppf(0.5 + check_level(level) / 2)
        return p - z * sigma, p + z * sigma

    def state(self):
        return {}, {}

    @classmethod
    def restore(cls, extra, arrays) -> "EnsembleSpread":
        return cls()
