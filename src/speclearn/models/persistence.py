"""The one on-disk model format: a folder with `config.json`, `weights.safetensors` and `*.skops`.

config.json holds the model type, speclearn version, hyperparameters, the training axis, the
preprocessing spec and the target names. Arrays (torch weights, fitted statistics) go to
safetensors; scikit-learn estimators go to skops files that load only trusted types. Nothing is
pickled, so loading a model never executes code from the file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io.atomic import atomic_path

FORMAT = "speclearn-model"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "speclearn.", "builtins.", "collections.", "pybaselines.")


@dataclass
class SavedModel:
    """A model folder's contents: config, named arrays and named scikit-learn estimators."""

    model_type: str
    params: dict[str, Any]
    axis: dict[str, Any]
    targets: list[str] = field(default_factory=list)
    preprocessing: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    estimators: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    path: str | None = None

    def check_spectra(self, spectra: Spectra) -> None:
        """Refuse spectra measured on another axis than the training data's."""
        spectra.check_axis_matches(self.axis, what=f"the model {self.path or ''}".strip())


def _version() -> str:
    from speclearn import __version__
    return __version__


def save_model(model: SavedModel, directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write `model` to `directory` atomically (a half-written model never appears)."""
    from safetensors.numpy import save_file
    import skops.io as sio

    directory = Path(directory)
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "speclearn_version": _version(),
        "model_type": model.model_type, "params": model.params, "axis": model.axis,
        "targets": list(model.targets), "preprocessing": model.preprocessing, "extra": model.extra,
        "estimators": sorted(model.estimators),
    }
    with atomic_path(directory, overwrite=overwrite, directory=True) as tmp:
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, default=_json_default))
        if model.arrays:
            save_file({k: np.ascontiguousarray(v) for k, v in model.arrays.items()}, str(tmp / WEIGHTS))
        for name, estimator in model.estimators.items():
            sio.dump(estimator, tmp / f"{name}.skops")
    return directory


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def load_model(directory: str | Path, *, expected_types: tuple[str, ...] | None = None) -> SavedModel:
    """Read a model folder; `expected_types` restricts which model types this caller accepts."""
    from safetensors.numpy import load_file
    import skops.io as sio

    directory = Path(directory)
    config_path = directory / CONFIG
    if not directory.is_dir() or not config_path.exists():
        raise InputError(f"not a speclearn model folder (no {CONFIG})", file=directory)
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"config is not valid JSON ({err})", file=config_path) from None
    if config.get("format") != FORMAT:
        raise InputError("not a speclearn model config", file=config_path)
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(f"model format {config['format_version']} is newer than this speclearn "
                         f"understands ({FORMAT_VERSION}); upgrade speclearn", file=config_path)
    if expected_types is not None and config["model_type"] not in expected_types:
        raise InputError(f"this is a {config['model_type']!r} model; expected one of "
                         f"{', '.join(expected_types)}", file=directory)
    arrays = load_file(str(directory / WEIGHTS)) if (directory / WEIGHTS).exists() else {}
    estimators = {}
    for name in config.get("estimators", []):
        path = directory / f"{name}.skops"
        untrusted = sio.get_untrusted_types(file=path)
        refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if refused:
            raise InputError(f"refusing to load untrusted type {refused[0]}", file=path)
        estimators[name] = sio.load(path, trusted=untrusted)
    return SavedModel(model_type=config["model_type"], params=config.get("params", {}), axis=config["axis"],
                      targets=config.get("targets", []), preprocessing=config.get("preprocessing", []),
                      extra=config.get("extra", {}), arrays=arrays, estimators=estimators,
                      version=config.get("speclearn_version", ""), path=str(directory))
