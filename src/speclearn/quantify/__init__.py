"""ICP-MS deconvolution and quantification: CAEM-MT and five classical baselines.

Every method is a `Quantifier` (fit(spectra, targets, clean=, peaks=) / predict(spectra) -> table);
`METHODS` maps the CLI's --method names to the classes; `save_quantifier` / `load_quantifier` use the
shared model folder format.
"""
from __future__ import annotations

from pathlib import Path

from speclearn.models import load_model, save_model
from speclearn.quantify.base import Quantifier
from speclearn.quantify.bss import BlindSourceSeparation
from speclearn.quantify.caemmt import CAEMMT
from speclearn.quantify.cnn import CNNRegressor
from speclearn.quantify.gd import GaussianDeconvolution
from speclearn.quantify.paramcorrection import ParameterCorrectedWNNLS
from speclearn.quantify.pls import PLS
from speclearn.quantify.rf import RandomForest
from speclearn.quantify.twohead import TwoHeadQuantifier
from speclearn.quantify.wnnls import WNNLS

METHODS: dict[str, type[Quantifier]] = {"caemmt": CAEMMT, "gd": GaussianDeconvolution, "bss": BlindSourceSeparation,
                                        "rf": RandomForest, "pls": PLS, "wnnls": WNNLS, "cnn": CNNRegressor,
                                        # with per-spectrum instrument parameters (--params)
                                        "twohead": TwoHeadQuantifier, "wnnls_params": ParameterCorrectedWNNLS}
#: The method with the lowest mean and median relative error in benchmarks/results/icpms_quantification.md
#: (both settings, quick scale): the physics inversion. CAEM-MT (physics) is far faster but less accurate.
#: `quantify train` itself defaults to `--method auto`, which ranks it against the others by CV.
DEFAULT_METHOD = "wnnls"


def save_quantifier(quantifier: Quantifier, directory: str | Path, *, overwrite: bool = False) -> Path:
    return save_model(quantifier.to_saved_model(), directory, overwrite=overwrite)


def load_quantifier(directory: str | Path) -> Quantifier:
    model = load_model(directory, expected_types=tuple(f"quantify.{name}" for name in METHODS))
    quantifier = METHODS[model.model_type.split(".", 1)[1]].from_saved_model(model)
    quantifier.path_ = str(directory)
    return quantifier


__all__ = ["DEFAULT_METHOD", "METHODS", "Quantifier", "load_quantifier", "save_quantifier"]
