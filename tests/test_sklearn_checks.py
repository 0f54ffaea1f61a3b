"""scikit-learn's own estimator checks on the array-level adapters of every method.

`speclearn.models.arrays` wraps each estimator as a plain scikit-learn regressor, classifier or
transformer. scikit-learn's checks feed toy data: 2-5 features, negative targets, NaN. The failures
below are expected, listed by reason, and strict (a check that starts passing must be removed):

- FEW_CHANNELS: the data have 2-5 features; a spectrum needs at least 3 channels (and a
  Savitzky-Golay window, a CNN kernel or a PLS model with several components needs more).
- NEGATIVE_TARGETS: the regressor checks use centred (negative) targets; quantifiers predict
  concentrations, which cannot be negative, and refuse them with a one-line error.
- SMOOTHING: the classical denoiser's Savitzky-Golay window (7) exceeds the toy data's channels.
- GROUPS: the siamese denoiser's weak-label loss needs at least 3 groups (the checks give y with 2).
- blind source separation: NMF's transform solves all rows to one joint tolerance, so a subset of
  rows differs from the full batch by about that tolerance (1e-6, the check allows 1e-7).

Not run here, for a reason each (all of them pass the full contract of test_contract.py on data
they are made for):
- the ICP-MS physics quantifiers (gd, wnnls, wnnls_params, twohead, vpro) need an m/z axis and element
  targets; on toy data they refuse everything (tested below);
- transfer models map spectra to spectra (y: the paired primary spectra); the regressor checks use a
  scalar y;
- the supervised and replicate denoisers need clean spectra or at least 3 replicate groups (the
  checks give 2 classes as y);
- the gamma estimators read an energy axis in keV (they rebin to their own grid and fit line
  libraries), the MRS estimators complex FIDs with a dwell time and field strength: toy features are
  neither;
- unmix fits a spectrum image (pixels x pixels x channels; HyperSpy's decomposition uses it through
  `speclearn.interop`), generate maps compositions to spectra and trust's QA model scores whole runs:
  none is a regressor, classifier or transformer of a feature table.

The torch networks run with 2 epochs: the checks test the interface, not the fit.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from speclearn.core.errors import InputError
from speclearn.models import methods
from speclearn.models.arrays import ArrayClassifier, ArrayRegressor, ArrayTransformer

PHYSICS = ("gd", "wnnls", "wnnls_params", "twohead", "vpro")
FAST = {"cnn": {"epochs": 2}, "rf": {"n_estimators": 10}, "caemmt": {"epochs": 2}, "siamese": {"epochs": 2, "device": "cpu"}, "noise2noise": {"epochs": 2, "device": "cpu"},
        "blindspot": {"epochs": 2, "device": "cpu"},
        "mlp": {"epochs": 2, "device": "cpu"}, "ensemble": {"n_members": 2, "base_params": {"epochs": 2}}, "vae-mlp": {"vae_epochs": 2, "mlp_epochs": 2, "device": "cpu"}}
ADAPTERS = {"quantify": ArrayRegressor, "classify": ArrayClassifier, "denoise": ArrayTransformer}
NOT_RUN = {"denoise.supervised", "denoise.noise2noise", *(f"quantify.{name}" for name in PHYSICS)}


def _estimators():
    found = []
    for system, adapter in ADAPTERS.items():
        for name, cls in methods(system).items():
            if f"{system}.{name}" in NOT_RUN:
                continue
            params = {"epochs": 2, "pretrain": False, "device": "cpu"} if (system, name) == ("classify", "cnn") \
                else FAST.get(name, {})
            found.append(adapter(cls(**params)))
    return found


FEW_CHANNELS = ("check_estimators_overwrite_params", "check_estimators_fit_returns_self", "check_readonly_memmap_input",
                "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in")
FEW_CHANNELS_CLASSIFIER = ("check_classifier_data_not_an_array", "check_classifiers_classes", "check_classifiers_train",
                           "check_estimators_unfitted")
NEGATIVE_TARGETS = ("check_n_features_in_after_fitting", "check_regressors_train", "check_regressor_data_not_an_array",
                    "check_regressors_no_decision_function", "check_regressor_multioutput")


SMOOTHING = ("check_n_features_in_after_fitting", "check_fit_score_takes_y", "check_dont_overwrite_parameters",
             "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_pipeline_consistency",
             "check_estimators_nan_inf", "check_methods_sample_order_invariance", "check_methods_subset_invariance",
             "check_estimators_pickle", "check_dict_unchanged", "check_f_contiguous_array_estimator",
             "check_transformer_data_not_an_array", "check_fit2d_predict1d", "check_transformer_general",
             "check_transformer_preserve_dtypes")


GROUPS = ("check_estimators_dtypes", "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
          "check_transformer_data_not_an_array", "check_transformer_general", "check_transformer_preserve_dtypes")


def expected_failures(adapter) -> dict[str, str]:
    failures = dict.fromkeys(FEW_CHANNELS, "toy data with 2-5 features; a spectrum needs at least 3 channels")
    system = adapter.estimator.system
    if system == "classify":
        failures |= dict.fromkeys(FEW_CHANNELS_CLASSIFIER, "toy data with 2 features")
    if system == "quantify":
        failures |= dict.fromkeys(NEGATIVE_TARGETS, "negative targets; concentrations cannot be negative")
    if adapter.estimator.model_type() == "quantify.bss":
        failures["check_methods_subset_invariance"] = "NMF's transform solves all rows to one joint tolerance"
    if adapter.estimator.model_type() == "denoise.siamese":
        failures |= dict.fromkeys(GROUPS, "the weak-label loss needs at least 3 groups; the checks give 2 classes")
    if system == "denoise" and adapter.estimator.method in ("classical", "blindspot"):
        failures |= dict.fromkeys(SMOOTHING, "a smoothing window (7) or blind-spot masks (8 channels) on 3-5 channels")
    return failures


@parametrize_with_checks(_estimators(), expected_failed_checks=expected_failures, xfail_strict=True)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("name", PHYSICS)
def test_physics_quantifiers_refuse_data_without_an_mz_axis(name):
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 10, (20, 30)), rng.uniform(1, 2, 20)
    with pytest.raises(InputError):
        ArrayRegressor(methods("quantify")[name]()).fit(X, y)
