"""Fitted components as a speclearn model: save them, and unmix new maps on the same axis."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.models import SavedModel, load_model, save_model
from speclearn.unmix._base import CubeUnmixer

MODEL_TYPE = "unmix-components"


def component_names(k: int) -> list[str]:
    return [f"component_{i}" for i in range(k)]


def save_unmixing(estimator: CubeUnmixer, axis: dict, directory: str | Path, *, overwrite: bool = False,
                  extra: dict | None = None) -> Path:
    """Save a fitted estimator's spectra with the axis they were fitted on and its parameters."""
    params = {k: v for k, v in estimator.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}
    model = SavedModel(MODEL_TYPE, {"estimator": type(estimator).__name__, **params}, axis,
                       targets=component_names(estimator.components_.shape[0]), extra=extra or {},
                       arrays={"components": np.asarray(estimator.components_, dtype=np.float64)})
    return save_model(model, directory, overwrite=overwrite)


class FixedSpectraUnmixer(CubeUnmixer):
    """Unmix with given spectra (K, channels): the Poisson/KL abundance fit of `CubeUnmixer.transform`."""

    def __init__(self, components: np.ndarray, *, sum_to_one: bool = True):
        self.components = components
        self.sum_to_one = sum_to_one
        self.components_ = np.asarray(components, dtype=float)
        self.n_components = self.components_.shape[0]


def load_unmixing(directory: str | Path) -> tuple[SavedModel, FixedSpectraUnmixer]:
    """The saved model (accepts the model folder or an `unmix` output folder holding `model/`)."""
    directory = Path(directory)
    if not (directory / "config.json").exists() and (directory / "model" / "config.json").exists():
        directory = directory / "model"
    model = load_model(directory, expected_types=(MODEL_TYPE,))
    return model, FixedSpectraUnmixer(model.arrays["components"], sum_to_one=bool(model.params.get("sum_to_one", True)))


def apply_unmixing(directory: str | Path, data: Spectra | Any, *, progress: bool = False) -> np.ndarray:
    """Abundances (K, y, x) of a new cube; refuses a cube on another axis than the model's."""
    model, unmixer = load_unmixing(directory)
    if isinstance(data, Spectra):
        model.check_spectra(data)
    elif np.shape(data)[-1] != unmixer.components_.shape[1]:
        raise InputError(f"{np.shape(data)[-1]} channels, the model expects {unmixer.components_.shape[1]}")
    return unmixer.transform(data, progress=progress)
