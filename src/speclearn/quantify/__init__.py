"""ICP-MS deconvolution and quantification: CAEM-MT and five classical baselines.

Every method is a `Quantifier` (fit(spectra, targets, clean=, peaks=) / predict(spectra) -> table);
`METHODS` maps the CLI's --method names to the classes. Save with `quantifier.save(folder)`, load with
`speclearn.models.load(folder, Quantifier)`.
"""
from __future__ import annotations

from speclearn.models.estimator import methods
from speclearn.quantify.base import Quantifier
from speclearn.quantify.bss import BlindSourceSeparation
from speclearn.quantify.caemmt import CAEMMT
from speclearn.quantify.cnn import CNNRegressor
from speclearn.quantify.ensemble import DeepEnsemble
from speclearn.quantify.gd import GaussianDeconvolution
from speclearn.quantify.paramcorrection import ParameterCorrectedWNNLS
from speclearn.quantify.pls import PLS
from speclearn.quantify.rf import RandomForest
from speclearn.quantify.twohead import TwoHeadQuantifier
from speclearn.quantify.vpro import VarProQuantifier
from speclearn.quantify.wnnls import WNNLS

#: `--method` name -> class (the registry's quantify methods; `twohead` and `wnnls_params` take --params;
#: the deep ensemble is built by the interval options, not chosen as a method)
METHODS: dict[str, type[Quantifier]] = {name: cls for name, cls in methods("quantify").items() if name != "ensemble"}
#: The physics inversion: in benchmarks/results/icpms_quantification.md (both settings, full scale) only
#: vpro has lower mean and median relative errors, at ~100x its predict time; CAEM-MT (physics) is faster
#: but less accurate. `quantify train` itself defaults to `--method auto`, which ranks it against the
#: others by CV.
DEFAULT_METHOD = "wnnls"


__all__ = ["CAEMMT", "DEFAULT_METHOD", "METHODS", "PLS", "WNNLS", "BlindSourceSeparation", "CNNRegressor", "DeepEnsemble",
           "GaussianDeconvolution", "ParameterCorrectedWNNLS", "Quantifier", "RandomForest", "TwoHeadQuantifier",
           "VarProQuantifier"]
