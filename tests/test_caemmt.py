"""CAEM-MT physics architecture: fitted instrument peak shape, mass-bias correction, peak-shape option."""
from __future__ import annotations

import numpy as np
import pytest

from speclearn.core.errors import InputError
from speclearn.quantify import METHODS
from speclearn.quantify.physics import shape_design, template_matrix
from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms

FAST = {"epochs": 20, "max_seconds": 10, "progress": False}
#: a pseudo-Voigt peak with a low-mass tail: far from the Gaussian WNNLS assumes
VOIGT = ICPMSInstrument(mz_min=20.0, mz_max=130.0, n_channels=2200, shape="pseudo_voigt", eta=0.3, tail_fraction=0.05)
CONFIG = ICPMSConfig(analytes=("Cu", "As", "Mo", "Cd", "Zn"), interferents=("Zr",), mass_bias_sd=0.1, instrument=VOIGT)


@pytest.fixture(scope="module")
def data():
    return simulate_icpms(60, seed=5, config=CONFIG, workers=1), simulate_icpms(20, seed=6, config=CONFIG, workers=1)


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    return METHODS["caemmt"](**FAST).fit(train.spectra, train.targets)


def test_fitted_shape_templates_fit_the_clean_spectrum_better_than_gaussians(data, fitted):
    train, _ = data
    assert fitted.peak_shape_ == "fitted"
    assert abs(fitted.shape_["eta"] - VOIGT.eta) < 0.1
    assert abs(fitted.shape_["fwhm_intercept"] + 75 * fitted.shape_["fwhm_slope"] - VOIGT.fwhm(75.0)) < 0.01
    axis, species = train.spectra.axis, fitted.extra_["species"]
    clean = train.clean.mean(axis=0)
    x = (axis - axis.min()) / np.ptp(axis)

    def residual(templates: np.ndarray) -> float:
        design = np.concatenate([templates, np.stack([1 - x, x])]).T
        return float(np.linalg.norm(design @ np.linalg.lstsq(design, clean, rcond=None)[0] - clean))

    fitted_residual = residual(shape_design(species, axis, fitted.shape_, fitted.offset_)[0])
    gaussian_residual = residual(template_matrix(species, axis, fitted.peaks_))
    assert fitted_residual < 0.5 * gaussian_residual, (fitted_residual, gaussian_residual)


def test_caemmt_corrects_the_mass_bias(data, fitted):
    """The plasma-gas ions give each spectrum's mass bias; without that correction (WNNLS) the analytes
    far in mass from the internal standard are off by (m/z ratio)^bias."""
    train, test = data
    group = {fitted.extra_["species"][j] for j in fitted.bias_group_}
    assert {"N2", "O2", "ArH"} <= group
    X = test.spectra.values().astype(float)
    bias = fitted._outputs(X, 2)[:, 2]
    assert np.corrcoef(bias, test.params["mass_bias"])[0, 1] > 0.9
    wnnls = METHODS["wnnls"]().fit(train.spectra, train.targets)
    errors = {name: np.median(np.abs(model.predict(test.spectra) / test.targets - 1).to_numpy())
              for name, model in (("caemmt", fitted), ("wnnls", wnnls))}
    assert errors["caemmt"] < 0.7 * errors["wnnls"], errors


def test_gaussian_peak_shape_is_an_option_and_does_worse_on_voigt_peaks(data, fitted):
    train, test = data
    model = METHODS["caemmt"](peak_shape="gaussian", **FAST).fit(train.spectra, train.targets)
    assert model.peak_shape_ == "gaussian" and not hasattr(model, "shape_")
    peaks = model.peak_parameters(train.spectra.values()[:3].astype(float))
    assert peaks.shape == (3, 5, 3) and np.isfinite(peaks).all()
    errors = {name: np.median(np.abs(m.predict(test.spectra) / test.targets - 1).to_numpy())
              for name, m in (("fitted", fitted), ("gaussian", model))}
    assert errors["fitted"] < errors["gaussian"], errors
    with pytest.raises(InputError, match="peak_shape"):
        METHODS["caemmt"](peak_shape="lorentz", epochs=1, progress=False).fit(train.spectra, train.targets)


def test_resampling_is_linear_interpolation_at_the_shifted_mass(data, fitted):
    train, _ = data
    X = train.spectra.values()[:12].astype(np.float32)
    axis = train.spectra.axis
    step = float(fitted.axis_step_)
    shift = np.linspace(-3.2, 3.7, len(X)) * step  # whole-channel groups of one and several spectra
    shift[:4] = 0.4 * step
    positions = axis[fitted.region_]
    expected = np.stack([np.interp(positions + s, axis, row) for row, s in zip(X, shift)])
    inside = (positions + shift.min() >= axis[0]) & (positions + shift.max() <= axis[-1])  # no extrapolation
    assert inside.mean() > 0.99
    np.testing.assert_allclose((fitted._resampled(X, shift) * fitted.input_scale_)[:, inside], expected[:, inside],
                               rtol=1e-4, atol=1e-4 * np.abs(X).max())
