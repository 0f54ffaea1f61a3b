"""The one on-disk model format: a folder with `config.json`, `weights.safetensors` and `*.skops`.

config.json holds the model type, speclearn version, hyperparameters, the training axis, the
preprocessing spec and the target names. Arrays (torch weights, fitted statistics) go to
safetensors; scikit-learn estimators go to skops files that load only trusted types. Nothing is
pickled, so loading a model never executes code from the file.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speclearn.core.errors import InputError, note_read
from speclearn.core.spectra import Spectra
from speclearn.io.atomic import atomic_path
from speclearn.models._allowed import ALLOWED_SKOPS_TYPES

FORMAT = "speclearn-model"
FORMAT_VERSION = 2
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
#: The exact types a `.skops` file may contain (classes only: no function, no module prefix is
#: trusted). Anything else, `builtins.exec` or `numpy.load` included, is refused before loading.
ALLOWED_TYPES = frozenset(ALLOWED_SKOPS_TYPES)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,120}$")
_CONFIG_KEYS = {"model_type": str, "params": dict, "axis": dict, "targets": list, "preprocessing": list,
                "extra": dict, "estimators": list, "files": dict}


class _Entries(dict):
    """A section of a loaded model (extra, arrays, estimators): a missing key is an InputError."""

    def __init__(self, items: dict, section: str, where: str):
        super().__init__(items)
        self.section, self.where = section, where

    def __missing__(self, key: str):
        raise InputError(f"damaged model: no {self.section} entry {str(key)[:40]!r}", file=self.where)


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

    def construct(self, cls: type) -> Any:
        """`cls(**params)` from config.json, refusing parameters `cls` does not take. JSON has no
        tuples: a list is given back as a tuple where the parameter's default is one."""
        import inspect
        accepted = inspect.signature(cls).parameters
        unknown = sorted(set(self.params) - set(accepted))
        where = Path(self.path or ".") / CONFIG
        if unknown:
            raise InputError(f"unknown parameter {unknown[0][:40]!r} for {cls.__name__} in 'params'", file=where)
        params = {name: tuple(value) if isinstance(value, list) and isinstance(accepted[name].default, tuple)
                  else value for name, value in self.params.items()}
        try:
            return cls(**params)
        except (TypeError, ValueError) as err:
            raise InputError(f"invalid 'params' for {cls.__name__} ({str(err)[:80]})", file=where) from None

    def check_spectra(self, spectra: Spectra) -> None:
        """Refuse spectra measured on another axis than the training data's."""
        spectra.check_axis_matches(self.axis, what=f"the model {self.path or ''}".strip())


def _version() -> str:
    from speclearn import __version__
    return __version__


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _estimator_file(name: str, directory: Path) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InputError(f"estimator name {str(name)[:60]!r} is not a plain file name", file=directory / CONFIG)
    return f"{name}.skops"


def save_model(model: SavedModel, directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write `model` to `directory` atomically (a half-written model never appears).

    config.json records the SHA-256 of every other file, so a modified model is refused on load.
    """
    from safetensors.numpy import save_file
    import skops.io as sio

    directory = Path(directory)
    with atomic_path(directory, overwrite=overwrite, directory=True, kind="model") as tmp:
        files = []
        if model.arrays:
            save_file({k: np.ascontiguousarray(v) for k, v in model.arrays.items()}, str(tmp / WEIGHTS))
            files.append(WEIGHTS)
        for name, estimator in model.estimators.items():
            files.append(_estimator_file(name, directory))
            sio.dump(estimator, tmp / files[-1])
        config = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "speclearn_version": _version(),
            "model_type": model.model_type, "params": model.params, "axis": model.axis,
            "targets": list(model.targets), "preprocessing": model.preprocessing, "extra": model.extra,
            "estimators": sorted(model.estimators), "files": {f: _sha256(tmp / f) for f in files},
        }
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, default=_json_default))
    return directory


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _inside(directory: Path, name: str) -> Path:
    """`directory/name`, refused if it is a link or resolves outside the model folder."""
    path = directory / name
    if path.is_symlink() or not path.resolve().is_relative_to(directory.resolve()):
        raise InputError(f"{name} is a link or lies outside the model folder; refusing it", file=directory)
    return path


def _read_config(directory: Path) -> dict[str, Any]:
    config_path = _inside(directory, CONFIG)
    if not config_path.is_file():
        raise InputError(f"not a speclearn model folder (no {CONFIG})", file=directory)
    if config_path.stat().st_size > 64 * 2**20:
        raise InputError("config is larger than 64 MiB; not a speclearn model config", file=config_path)
    try:
        config = json.loads(config_path.read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"config is not valid JSON ({str(err)[:80]})", file=config_path) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise InputError("not a speclearn model config", file=config_path)
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        hint = "upgrade speclearn" if isinstance(version, int) and version > FORMAT_VERSION else \
            "retrain it with this speclearn (older folders carry no checksums)"
        raise InputError(f"model format {str(version)[:20]} is not the format {FORMAT_VERSION} this "
                         f"speclearn reads; {hint}", file=config_path)
    for key, kind in _CONFIG_KEYS.items():
        if not isinstance(config.get(key), kind):
            raise InputError(f"config entry {key!r} is missing or not a {kind.__name__}", file=config_path)
    axis = config["axis"]  # a spectral axis (kind, unit, values) or another system's acquisition record
    values = axis.get("values")
    if "values" in axis and not (isinstance(axis.get("kind"), str) and isinstance(axis.get("unit", ""), str)
                                 and isinstance(values, list) and values
                                 and all(isinstance(v, (int, float)) for v in values)):
        raise InputError("config entry 'axis' needs 'kind', 'unit' and a list of numbers 'values'",
                         file=config_path)
    return config


def _verify_files(directory: Path, config: dict[str, Any]) -> None:
    expected = {WEIGHTS} if (directory / WEIGHTS).exists() else set()
    expected |= {_estimator_file(name, directory) for name in config["estimators"]}
    if set(config["files"]) != expected:
        raise InputError("modified model: the files listed in config.json are not the files of the folder",
                         file=directory)
    for name, digest in config["files"].items():
        path = _inside(directory, name)
        if not path.is_file():
            raise InputError(f"modified model: {name} is missing", file=directory)
        if _sha256(path) != digest:
            raise InputError(f"modified model: {name} does not match the checksum recorded at save",
                             file=directory)


def _load_skops(path: Path) -> Any:
    import skops.io as sio
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as err:  # noqa: BLE001 - a damaged file, whatever the parser says
        raise InputError(f"damaged estimator file ({type(err).__name__})", file=path) from None
    refused = sorted(t for t in untrusted if t not in ALLOWED_TYPES)
    if refused:
        raise InputError(f"refusing to load type {refused[0][:80]} (not on speclearn's allow-list)", file=path)
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as err:  # noqa: BLE001
        raise InputError(f"damaged estimator file ({type(err).__name__}: {str(err)[:80]})", file=path) from None


def read_model_type(directory: str | Path) -> str:
    """The model type recorded in a model folder's config (the config is validated, nothing else read)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("model folder not found" if not directory.exists() else
                         "is a file; a model is a folder", file=directory)
    return _read_config(directory)["model_type"]


def load_model(directory: str | Path, *, expected_types: tuple[str, ...] | None = None) -> SavedModel:
    """Read a model folder; `expected_types` restricts which model types this caller accepts.

    Nothing in the folder can run code: config.json is plain JSON, arrays are safetensors, and
    estimator files may hold only the types in `ALLOWED_TYPES`. Files are read only from inside the
    folder (no links, no `..`) and must match the checksums recorded at save.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    directory = Path(directory)
    note_read(directory)
    if not directory.is_dir():
        raise InputError("model folder not found" if not directory.exists() else
                         "is a file; a model is a folder", file=directory)
    config = _read_config(directory)
    if expected_types is not None and config["model_type"] not in expected_types:
        raise InputError(f"this is a {config['model_type'][:60]!r} model; expected one of "
                         f"{', '.join(expected_types)}", file=directory)
    _verify_files(directory, config)
    try:
        arrays = load_file(str(directory / WEIGHTS)) if WEIGHTS in config["files"] else {}
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"damaged weights file ({str(err)[:80]})", file=directory / WEIGHTS) from None
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise InputError(f"array {name[:60]!r} holds NaN or infinite values (did training diverge?)",
                             file=directory / WEIGHTS)
    estimators = {name: _load_skops(directory / _estimator_file(name, directory))
                  for name in config["estimators"]}
    where = str(directory)
    return SavedModel(model_type=config["model_type"], params=config["params"], axis=config["axis"],
                      targets=config["targets"], preprocessing=config["preprocessing"],
                      extra=_Entries(config["extra"], "extra", where), arrays=_Entries(arrays, "array", where),
                      estimators=_Entries(estimators, "estimator", where),
                      version=str(config.get("speclearn_version", "")), path=str(directory))
