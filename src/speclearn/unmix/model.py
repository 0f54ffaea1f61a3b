"""Fitted components as a speclearn model: save them, and unmix new maps on the same axis."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.models import SavedModel, SpectralEstimator, load
from speclearn.unmix._base import CubeUnmixer


def component_names(k: int) -> list[str]:
    return [f"component_{i}" for i in range(k)]


class FixedSpectraUnmixer(CubeUnmixer, SpectralEstimator):
    """Unmix with given spectra (K, channels): the Poisson/KL abundance fit of `CubeUnmixer.transform`.

    `fit(components, axis)` takes the spectra and the axis they lie on (e.g. a fitted PSNMF's
    `components_` and its cube's `axis_spec()`); the model saves and loads like every other.
    """

    system, method = "unmix", "components"

    def __init__(self, *, sum_to_one: bool = True):
        self.sum_to_one = sum_to_one

    def fit(self, components: np.ndarray, axis: dict, *, fitted_with: dict | None = None) -> "FixedSpectraUnmixer":
        self.components_ = np.asarray(components, dtype=float)
        if self.components_.ndim != 2 or self.components_.shape[1] != len(axis["values"]):
            raise InputError(f"components of shape {self.components_.shape} do not match an axis of "
                             f"{len(axis['values'])} channels")
        self.n_components = self.components_.shape[0]
        self.axis_ = axis
        self.fitted_with_ = dict(fitted_with or {})
        return self

    def _saved_parts(self) -> dict[str, Any]:
        return {"targets": component_names(self.n_components), "extra": self.fitted_with_,
                "arrays": {"components": self.components_}}

    def _restore_saved(self, saved: SavedModel) -> None:
        self.components_ = np.asarray(saved.arrays["components"], dtype=float)
        self.n_components = self.components_.shape[0]
        self.fitted_with_ = dict(saved.extra)


def load_unmixing(directory: str | Path) -> FixedSpectraUnmixer:
    """The saved model (accepts the model folder or an `unmix` output folder holding `model/`)."""
    directory = Path(directory)
    if not (directory / "config.json").exists() and (directory / "model" / "config.json").exists():
        directory = directory / "model"
    return load(directory, FixedSpectraUnmixer)


def apply_unmixing(directory: str | Path, data: Spectra | Any, *, progress: bool = False) -> np.ndarray:
    """Abundances (K, y, x) of a new cube; refuses a cube on another axis than the model's."""
    unmixer = load_unmixing(directory)
    if isinstance(data, Spectra):
        unmixer.check_spectra(data)
    elif np.shape(data)[-1] != unmixer.components_.shape[1]:
        raise InputError(f"{np.shape(data)[-1]} channels, the model expects {unmixer.components_.shape[1]}")
    return unmixer.transform(data, progress=progress)
