"""The contract every speclearn model follows, and the one way to save and load it.

A model is a `SpectralEstimator`: scikit-learn style (hyperparameters are `__init__` arguments,
fitted state ends in `_`), it records the axis of its training spectra in `axis_` and refuses
spectra on another axis, and it saves to and loads from the one model folder format. Each system
(quantify, classify, denoise, ...) has one base class that names the `system`; each method subclasses
it, names its `method`, and is registered under the model type `system.method`.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from sklearn.base import BaseEstimator

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.models.domain import TrainingDomain
from speclearn.models.persistence import SavedModel, load_model, read_model_type, save_model

#: model type (`system.method`) -> class; filled as the system packages are imported
MODEL_TYPES: dict[str, type["SpectralEstimator"]] = {}
#: each system and the modules holding its estimators, which `load` imports on demand (nothing else)
SYSTEMS = {name: (f"speclearn.{name}",) for name in ("quantify", "classify", "denoise", "transfer", "unmix",
                                                      "generate", "trust")} | {
    "mrs": ("speclearn.mrs.align_cnn", "speclearn.mrs.artifacts", "speclearn.mrs.quantifier"),
    "gamma": ("speclearn.gamma.learned", "speclearn.gamma.materials_cnn", "speclearn.gamma.composition",
              "speclearn.gamma.generate")}
#: model types written before the one naming scheme -> today's name (such folders still load)
RENAMED = {**{old: f"classify.{old}" for old in ("cnn", "knn", "svm", "rf", "plsda")},
           **{f"denoise-{m}": f"denoise.{m}" for m in ("classical", "siamese", "supervised", "noise2noise")},
           **{f"transfer-{m}": f"transfer.{m}" for m in ("vae-mlp", "mlp", "ds", "pds", "pls", "knn", "none")},
           "cvae": "generate.cvae", "unmix-components": "unmix.components", "qa.run": "trust.qa",
           "mrs-dl-quantifier": "mrs.dl-quantifier", "mrs-transient-detector": "mrs.transient-detector",
           "mrs-cnn-aligner": "mrs.cnn-aligner", "gamma-material-cnn": "gamma.material-cnn",
           "gamma-identifier": "gamma.identifier", "gamma-composition-ae": "gamma.composition-ae",
           "gamma-composition-nnls": "gamma.composition-nnls"}

E = TypeVar("E", bound="SpectralEstimator")
#: prefix of the training domain's arrays in a model's weights
DOMAIN = "domain."


class SpectralEstimator(BaseEstimator):
    """Base of every speclearn model: axis check, registry and persistence.

    A subclass provides `_saved_parts()` (the `SavedModel` fields beyond type, params and axis:
    `targets`, `preprocessing`, `extra`, `arrays`, `estimators`) and `_restore_saved(saved)`.
    """

    #: the system (package) the estimator belongs to, set once by each system's base class
    system: ClassVar[str] = ""
    #: the `--method` name, set by each concrete estimator
    method: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("method") and cls.system:
            name = f"{cls.system}.{cls.method}"
            known = MODEL_TYPES.get(name)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"model type {name} is taken by {known.__qualname__}")
            MODEL_TYPES[name] = cls

    @classmethod
    def model_type(cls) -> str:
        return f"{cls.system}.{cls.method}"

    # --- axis ----------------------------------------------------------------------------
    def check_spectra(self, spectra: Spectra) -> None:
        """Refuse use before fitting and spectra on another axis than the training spectra's."""
        if not hasattr(self, "axis_"):
            raise InputError(f"this {self.method} model is not fitted yet")
        spectra.check_axis_matches(self.axis_, what=f"the {self.method} model")

    # --- applicability domain -------------------------------------------------------------
    def learn_domain(self, X: np.ndarray) -> None:
        """Keep a `TrainingDomain` of the training spectra X (n, channels; from 3 on), for `domain_distance`."""
        self.domain_ = TrainingDomain().fit(X) if len(X) >= 3 else None

    def domain_distance(self, spectra: Spectra) -> np.ndarray | None:
        """How unlike the training spectra each spectrum is (`TrainingDomain.distance`: above
        `models.domain.OUTSIDE` it is outside them); None for a model without a domain."""
        domain = getattr(self, "domain_", None)
        return None if domain is None else domain.distance(spectra.values())

    # --- persistence ---------------------------------------------------------------------
    def _saved_parts(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore_saved(self, saved: SavedModel) -> None:
        raise NotImplementedError

    def to_saved(self) -> SavedModel:
        """The fitted model as a `SavedModel` (what `save` writes)."""
        if not hasattr(self, "axis_"):
            raise InputError(f"this {self.method} model is not fitted yet; nothing to save")
        parts = self._saved_parts()
        if getattr(self, "domain_", None) is not None:
            parts["arrays"] = {**parts.get("arrays", {}),
                               **{f"{DOMAIN}{k}": v for k, v in self.domain_.arrays().items()}}
        if getattr(self, "selection_", None):
            parts["extra"] = {**parts.get("extra", {}), "selection": self.selection_}
        return SavedModel(model_type=self.model_type(), params=self.get_params(), axis=self.axis_, **parts)

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model folder atomically; `overwrite` replaces only a model speclearn wrote."""
        return save_model(self.to_saved(), directory, overwrite=overwrite)

    @classmethod
    def from_saved(cls: type[E], saved: SavedModel) -> E:
        """Rebuild the estimator from a loaded folder (parameters checked against `__init__`)."""
        estimator = saved.construct(cls)
        estimator.axis_ = saved.axis
        estimator.selection_ = saved.extra.get("selection")
        estimator.path_ = saved.path
        domain = {k[len(DOMAIN):]: v for k, v in saved.arrays.items() if k.startswith(DOMAIN)}
        estimator.domain_ = TrainingDomain.from_arrays(domain) if domain else None
        estimator._restore_saved(saved)
        return estimator


def _import_system(name: str) -> None:
    for module in SYSTEMS.get(name, ()):
        importlib.import_module(module)


def methods(system: str) -> dict[str, type[SpectralEstimator]]:
    """`--method` name -> estimator class of one system (its package is imported to register them)."""
    _import_system(system)
    return {name.split(".", 1)[1]: cls for name, cls in MODEL_TYPES.items() if name.startswith(f"{system}.")}


def read(directory: str | Path, kind: type[SpectralEstimator] = SpectralEstimator) -> SavedModel:
    """The checked contents of a model folder of `kind` (its model type in today's name), unbuilt."""
    directory = Path(directory)
    model_type = RENAMED.get(read_model_type(directory), read_model_type(directory))
    _import_system(kind.system or model_type.split(".", 1)[0])
    accepted = {name for name, cls in MODEL_TYPES.items() if issubclass(cls, kind)}
    old_names = tuple(old for old, new in RENAMED.items() if new in accepted)
    saved = load_model(directory, expected_types=tuple(accepted) + old_names)
    saved.model_type = RENAMED.get(saved.model_type, saved.model_type)
    return saved


def load(directory: str | Path, kind: type[E] = SpectralEstimator) -> E:
    """Load any speclearn model folder as the estimator that wrote it; `kind` (a system's base class,
    e.g. `Quantifier`) refuses models of other kinds with a one-line error."""
    saved = read(directory, kind)
    return MODEL_TYPES[saved.model_type].from_saved(saved)
