"""What every denoiser shares: the fit/transform/noise API, weak-label checks, persistence.

A denoiser maps measured spectra y to cleaned spectra (an estimate of the line signal u_x) and,
where meaningful, to the removed part y - u_x (`noise`). Each concrete estimator lives in its own
module; `speclearn.models.methods("denoise")` lists them by CLI method name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.models import SavedModel, load_module_arrays, module_arrays, predict_batches, resolve_device
from speclearn.models.estimator import SpectralEstimator


def group_codes(groups: pd.Series | np.ndarray | list, *, n_spectra: int, minimum: int = 1,
                file: str | Path | None = None) -> np.ndarray:
    """Integer group codes (0..G-1) for weak labels; refuses fewer than `minimum` distinct groups."""
    values = pd.Series(np.asarray(groups, dtype=object)).astype(str)
    if len(values) != n_spectra:
        raise InputError(f"{len(values)} group labels for {n_spectra} spectra", file=file)
    codes, names = pd.factorize(values)
    if len(names) < minimum:
        raise InputError(f"{len(names)} distinct group(s) ({', '.join(map(str, names[:5]))}); "
                         f"at least {minimum} are needed", file=file)
    return codes.astype(np.int64)


def intensity_scale(X: np.ndarray) -> float:
    """One global scale (root mean square) so networks see O(1) inputs; no per-channel centring,
    which would itself remove the mean spectrum the siamese model has to split."""
    scale = float(np.sqrt(np.mean(np.square(X))))
    return scale if np.isfinite(scale) and scale > 0 else 1.0


class Denoiser(SpectralEstimator):
    """Base class: `fit(spectra, groups=, clean=)`, `transform(spectra)`, `noise(spectra)`."""

    system: ClassVar[str] = "denoise"
    needs_groups: ClassVar[bool] = False
    needs_clean: ClassVar[bool] = False

    # --- public API ----------------------------------------------------------------------
    def fit(self, spectra: Spectra, *, groups=None, clean=None) -> "Denoiser":
        """Learn from `spectra`; `groups` (one label per spectrum) and `clean` (array or Spectra)
        are required by the methods that say so."""
        spectra.check_trainable()
        X = spectra.values().astype(np.float64)
        if self.needs_groups and groups is None:
            raise InputError(f"the {self.method} denoiser needs groups (weak labels: which spectra share a target)")
        if self.needs_clean and clean is None:
            raise InputError(f"the {self.method} denoiser needs clean spectra (pairs of noisy and clean)")
        clean_values = None
        if clean is not None:
            clean_values = np.asarray(clean.values() if isinstance(clean, Spectra) else clean, dtype=np.float64)
            if clean_values.shape != X.shape:
                raise InputError(f"clean spectra have shape {clean_values.shape}, noisy ones {X.shape}")
        codes = None
        if groups is not None:
            codes = group_codes(groups, n_spectra=len(X), minimum=3 if self.needs_groups else 1)
        self.axis_ = spectra.axis_spec()
        self._fit(X, groups=codes, clean=clean_values)
        self.learn_domain(X)
        return self

    def transform(self, spectra: Spectra) -> Spectra:
        """The cleaned spectra (same ids, metadata and axis)."""
        self.check_spectra(spectra)
        return spectra.with_intensity(self._clean(spectra.values().astype(np.float64)))

    def noise(self, spectra: Spectra) -> Spectra:
        """What the denoiser removes: spectra - transform(spectra) unless a method models it itself."""
        self.check_spectra(spectra)
        X = spectra.values().astype(np.float64)
        return spectra.with_intensity(X - self._clean(X))

    # --- persistence ---------------------------------------------------------------------
    def _saved_parts(self) -> dict[str, Any]:
        arrays, estimators, extra = self._state()
        return {"arrays": arrays, "estimators": estimators, "extra": extra}

    def _restore_saved(self, saved: SavedModel) -> None:
        self._restore(saved.arrays, saved.estimators, saved.extra)

    # --- for subclasses ------------------------------------------------------------------
    def _fit(self, X: np.ndarray, *, groups: np.ndarray | None, clean: np.ndarray | None) -> None:
        raise NotImplementedError

    def _clean(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
        """(arrays, sklearn estimators, JSON extras) that `_restore` needs."""
        raise NotImplementedError

    def _restore(self, arrays: dict[str, np.ndarray], estimators: dict[str, Any], extra: dict[str, Any]) -> None:
        raise NotImplementedError


class NetworkDenoiser(Denoiser):
    """A torch network `module_` (built by `_module()`) on spectra divided by one global scale `scale_`."""

    def _module(self) -> Any:
        raise NotImplementedError

    def _apply(self, fn, X: np.ndarray) -> np.ndarray:
        """`fn` (the network or one of its parts) on the spectra X, back in their units."""
        self.module_.eval()
        out = predict_batches(fn, X / self.scale_, batch_size=64, device=resolve_device(self.device),
                              modules=(self.module_,))
        return (out * self.scale_).astype(np.float64)

    def _clean(self, X: np.ndarray) -> np.ndarray:
        return self._apply(self.module_, X)

    def _state(self):
        return module_arrays(self.module_), {}, {"scale": self.scale_, "history": getattr(self, "history_", {})}

    def _restore(self, arrays, estimators, extra) -> None:
        self.scale_ = float(extra["scale"])
        self.history_ = extra.get("history", {})
        self.module_ = load_module_arrays(self._module(), arrays)
