"""Instrument parameters (issue 9): simulated matrix effects, parameter-aware quantifiers, `--params` CLI."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from speclearn.core.errors import InputError
from speclearn.io import write_spectra, write_table_csv
from speclearn.models import load
from speclearn.quantify import Quantifier
from speclearn.quantify.paramcorrection import ParameterCorrectedWNNLS
from speclearn.quantify.twohead import TwoHeadQuantifier
from speclearn.simulate.icpms import (PROCESS_PARAMETERS, ICPMSConfig, ICPMSInstrument, ProcessConfig,
                                      simulate_icpms)

ANALYTES = ("Co", "Zn", "As", "Se", "Cd")
INSTRUMENT = ICPMSInstrument(mz_min=50.0, mz_max=125.0, n_channels=1200)


def _config(process: ProcessConfig | None = ProcessConfig()) -> ICPMSConfig:
    return ICPMSConfig(analytes=ANALYTES, interferents=("Fe", "Sn"), instrument=INSTRUMENT, process=process)


@pytest.fixture(scope="module")
def matrix():
    train = simulate_icpms(90, seed=11, config=_config(), workers=1)
    test = simulate_icpms(40, seed=12, config=_config(), workers=1)
    return train, test


def _params(sim) -> pd.DataFrame:
    return sim.params[list(PROCESS_PARAMETERS)]


def _median_relative_error(predicted: pd.DataFrame, true: pd.DataFrame) -> float:
    return float(np.median(np.abs(predicted.to_numpy() - true.to_numpy()) / true.to_numpy()))


# --- simulator ---------------------------------------------------------------------------------------
def test_process_effects_follow_the_physics():
    config = _config()
    process = config.process
    draws = pd.DataFrame({"rf_power_w": [1450.0, 1550.0, 1650.0, 1550.0, 1550.0],
                          "nebuliser_flow_l_min": [1.0, 1.0, 1.0, 1.1, 1.0],
                          "tds_g_l": [0.0, 0.0, 0.0, 0.0, 5.0], "sample_temperature_c": [20.0] * 5,
                          "conductivity_ms_cm": [0.0] * 5})
    temperature = process.plasma_temperature(draws, config.ionisation_temperature)
    assert temperature[0] < temperature[1] < temperature[2]  # more power, hotter plasma
    assert temperature[3] < temperature[1] and temperature[4] < temperature[1]  # more gas / solids, cooler
    as_fraction, in_fraction = config.ionised_fraction("As", temperature), config.ionised_fraction("In", temperature)
    assert np.all(np.diff(as_fraction[:3]) > 0)
    # a cooler plasma costs As (9.8 eV) far more than In (5.8 eV): the internal standard cannot follow
    assert as_fraction[4] / as_fraction[1] < 0.9 < 0.99 < in_fraction[4] / in_fraction[1]
    space = process.space_charge(draws, np.array([59.0, 115.0, 238.0]), INSTRUMENT.reference_mz)
    assert np.allclose(space[1], 1.0) and space[4, 0] < space[4, 1] < space[4, 2] < 1.0  # light ions lost most
    oxide, doubly = process.ratio_factors(draws)
    assert oxide[3] > oxide[1] > oxide[2] and doubly[2] > doubly[1] > doubly[3]


def test_simulated_sensitivity_moves_with_the_parameters(matrix):
    train, _ = matrix
    peaks = train.peaks[(train.peaks["kind"] == "analyte") & (train.peaks["element"] == "As")]
    as_signal = peaks.groupby("id", observed=True)["amplitude"].sum() / train.targets["As"]
    conductivity = train.params["conductivity_ms_cm"]
    corrected = as_signal / train.params["is_recovery"]  # what is left after the internal standard
    assert spearmanr(conductivity, train.params["is_recovery"]).statistic < -0.5
    assert spearmanr(conductivity, corrected.loc[conductivity.index]).statistic < -0.5
    assert spearmanr(train.params["nebuliser_flow_l_min"], train.params["oxide_ratio"]).statistic > 0.5
    chloride = train.params["chloride_level"]
    assert spearmanr(conductivity, chloride).statistic > 0.3  # matrix polyatomics grow with the matrix


def test_default_config_has_no_matrix_effects():
    plain = simulate_icpms(5, seed=3, config=_config(None), workers=1)
    assert not set(PROCESS_PARAMETERS) & set(plain.params.columns)
    with_process = simulate_icpms(5, seed=3, config=_config(), workers=1)
    pd.testing.assert_frame_equal(plain.targets, with_process.targets)  # same draws, only the effects added
    assert not np.allclose(plain.clean, with_process.clean)


# --- quantifiers --------------------------------------------------------------------------------------
def test_parameter_correction_beats_internal_standard_alone(matrix, tmp_path):
    train, test = matrix
    plain = ParameterCorrectedWNNLS().fit(train.spectra, train.targets)
    corrected = ParameterCorrectedWNNLS().fit(train.spectra, train.targets, params=_params(train))
    error_plain = _median_relative_error(plain.predict(test.spectra), test.targets)
    predicted = corrected.predict(test.spectra, _params(test))
    error_corrected = _median_relative_error(predicted, test.targets)
    assert error_corrected < 0.75 * error_plain, (error_corrected, error_plain)
    corrected.save(tmp_path / "model")
    again = load(tmp_path / "model", Quantifier)
    np.testing.assert_allclose(again.predict(test.spectra, _params(test)).to_numpy(), predicted.to_numpy(), rtol=1e-6)


def test_two_headed_model_uses_the_parameters(matrix, tmp_path):
    train, test = matrix
    settings = dict(epochs=150, patience=30, max_seconds=20, progress=False)
    without = TwoHeadQuantifier(**settings).fit(train.spectra, train.targets)
    with_params = TwoHeadQuantifier(**settings).fit(train.spectra, train.targets, params=_params(train))
    error_without = _median_relative_error(without.predict(test.spectra), test.targets)
    predicted = with_params.predict(test.spectra, _params(test))
    error_with = _median_relative_error(predicted, test.targets)
    assert error_with < error_without, (error_with, error_without)
    with_params.save(tmp_path / "model")
    again = load(tmp_path / "model", Quantifier)
    np.testing.assert_allclose(again.predict(test.spectra, _params(test)).to_numpy(), predicted.to_numpy(),
                               rtol=1e-5, atol=1e-9)
    with pytest.raises(InputError, match="trained with instrument parameters"):
        again.predict(test.spectra)
    with pytest.raises(InputError, match="trained without"):
        without.predict(test.spectra, _params(test))
    with pytest.raises(InputError, match="no row"):
        with_params.predict(test.spectra, _params(test).iloc[1:])
    with pytest.raises(InputError, match="missing"):
        with_params.predict(test.spectra, _params(test).drop(columns="rf_power_w"))
    gap = _params(test).copy()
    gap.iloc[3, 1] = np.nan
    with pytest.raises(InputError, match="finite"):
        with_params.predict(test.spectra, gap)


# --- CLI ------------------------------------------------------------------------------------------------
def test_cli_params_train_predict_and_bad_inputs(cli, matrix, tmp_path):
    train, test = matrix
    write_spectra(train.spectra, tmp_path / "train.csv")
    write_spectra(test.spectra, tmp_path / "test.csv")
    write_table_csv(train.targets, tmp_path / "targets.csv")
    write_table_csv(_params(train), tmp_path / "train_params.csv")
    write_table_csv(_params(test), tmp_path / "params.csv")
    common = ("--spectra", tmp_path / "train.csv", "--targets", tmp_path / "targets.csv")
    code, _, err = cli("quantify", "train", *common, "--params", tmp_path / "train_params.csv", "--method", "wnnls_params",
                       "--out", tmp_path / "model")
    assert code == 0, err
    predict = ("quantify", "predict", "--model", tmp_path / "model", "--spectra", tmp_path / "test.csv")
    code, _, err = cli(*predict, "--params", tmp_path / "params.csv", "--out", tmp_path / "pred.csv")
    assert code == 0, err
    predicted = pd.read_csv(tmp_path / "pred.csv", index_col="id")
    assert list(predicted.columns) == list(ANALYTES) and len(predicted) == 40
    assert _median_relative_error(predicted.loc[test.targets.index], test.targets) < 0.2

    code, _, err = cli(*predict, "--out", tmp_path / "pred2.csv")  # trained with parameters, none given
    assert code == 2 and "--params" in err
    write_table_csv(_params(test).iloc[:-1], tmp_path / "short.csv")  # one spectrum has no parameters
    code, _, err = cli(*predict, "--params", tmp_path / "short.csv", "--out", tmp_path / "pred3.csv")
    assert code == 2 and "short.csv" in err and "no row" in err
    lines = (tmp_path / "train_params.csv").read_text().splitlines()
    cells = lines[5].split(",")
    cells[2] = ""
    (tmp_path / "gap.csv").write_text("\n".join([*lines[:5], ",".join(cells), *lines[6:]]) + "\n")
    code, _, err = cli("quantify", "train", *common, "--params", tmp_path / "gap.csv", "--method", "wnnls_params",
                       "--out", tmp_path / "model_gap")
    assert code == 2 and "gap.csv" in err
    code, _, err = cli("quantify", "train", *common, "--params", tmp_path / "train_params.csv", "--method", "pls",
                       "--out", tmp_path / "model_pls")
    assert code == 2 and "does not use instrument parameters" in err


def test_cli_simulate_writes_process_parameters(cli, tmp_path):
    code, _, err = cli("simulate", "icpms", "--n", 4, "--channels", 400, "--mz-min", 50, "--mz-max", 125,
                       "--analytes", "As,Cd", "--interferents", "", "--matrix-effects", "--no-preview",
                       "--out", tmp_path / "sim")
    assert code == 0, err
    process = pd.read_csv(tmp_path / "sim" / "process.csv", index_col="id")
    assert list(process.columns) == list(PROCESS_PARAMETERS) and len(process) == 4
    assert np.isfinite(process.to_numpy()).all()
