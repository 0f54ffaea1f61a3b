"""Variable-projection ICP-MS inversion: per-spectrum mass bias from the background-ion reference group."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speclearn.io import write_spectra, write_table_csv

from speclearn.quantify import METHODS
from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms

CONFIG = ICPMSConfig(analytes=("Cu", "As", "Mo", "Cd", "Zn"), interferents=("Zr",), mass_bias_sd=0.1,
                     instrument=ICPMSInstrument(mz_min=20.0, mz_max=130.0, n_channels=2200))


@pytest.fixture(scope="module")
def data():
    return simulate_icpms(60, seed=5, config=CONFIG, workers=1), simulate_icpms(20, seed=6, config=CONFIG, workers=1)


@pytest.fixture(scope="module")
def fitted(data):
    train, test = data
    return METHODS["vpro"]().fit(train.spectra, train.targets), METHODS["wnnls"]().fit(train.spectra, train.targets), test


def test_vpro_tracks_mass_bias_and_beats_wnnls(fitted):
    vpro, wnnls, test = fitted
    assert {"N2", "O2", "ArH"} <= {vpro.species_[j] for j in vpro.group_}  # the plasma-gas ions move together
    errors = {name: np.median(np.abs(model.predict(test.spectra) - test.targets).to_numpy() / test.targets.to_numpy())
              for name, model in (("vpro", vpro), ("wnnls", wnnls))}
    assert np.corrcoef(vpro.last_biases_, test.params["mass_bias"])[0, 1] > 0.9
    assert errors["vpro"] < 0.7 * errors["wnnls"], errors


def test_vpro_fits_the_instrument_peak_shape(fitted):
    vpro, wnnls, test = fitted
    inst = CONFIG.instrument
    assert abs(vpro.shape_["fwhm_intercept"] + 75 * vpro.shape_["fwhm_slope"] - inst.fwhm(75.0)) < 0.01
    X = test.spectra.values().astype(float)
    error = {name: np.abs(model.reconstruct(X)[:, vpro.region_] - test.clean[:, vpro.region_]).sum()
             for name, model in (("vpro", vpro), ("wnnls", wnnls))}
    assert error["vpro"] < error["wnnls"], error  # the instrument shape fits the clean signal better


def test_cli_train_predict_vpro(cli, data, tmp_path):
    train, test = data
    ids, test_ids = train.spectra.ids[:30], test.spectra.ids[:8]
    write_spectra(train.spectra.select(ids), tmp_path / "train.csv")
    write_spectra(test.spectra.select(test_ids), tmp_path / "test.csv")
    write_table_csv(train.targets.loc[ids], tmp_path / "targets.csv")
    code, _, err = cli("quantify", "train", "--spectra", tmp_path / "train.csv", "--targets", tmp_path / "targets.csv",
                       "--out", tmp_path / "model", "--method", "vpro")
    assert code == 0, err
    code, _, err = cli("quantify", "predict", "--model", tmp_path / "model", "--spectra", tmp_path / "test.csv",
                       "--out", tmp_path / "pred.csv", "--peaks-out", tmp_path / "peaks.csv")
    assert code == 0, err
    pred = pd.read_csv(tmp_path / "pred.csv", index_col="id")
    assert float(np.median(np.abs(pred.to_numpy() / test.targets.loc[test_ids].to_numpy() - 1))) < 0.05
    peaks = pd.read_csv(tmp_path / "peaks.csv")
    np.testing.assert_allclose(peaks["width"], CONFIG.instrument.fwhm(peaks["centre"].to_numpy()), rtol=0.05)
    flags = pd.read_csv(tmp_path / "pred.flags.csv", index_col="id")
    assert flags["internal_standard_recovery"].between(0.7, 1.3).all()
    assert flags["unexplained_peak_mz"].isna().all()


def test_vpro_without_background_ions_fits_the_shift_only():
    """Without plasma-gas ions there is no reference group: vpro says so by an empty group, fits the
    shift only, and still quantifies (here no mass bias varies, so nothing is lost)."""
    config = ICPMSConfig(analytes=("Cu", "As", "Cd"), interferents=(), polyatomics=(), mass_bias_sd=0.0,
                         instrument=ICPMSInstrument(mz_min=20.0, mz_max=130.0, n_channels=2200))
    train, test = (simulate_icpms(n, seed=seed, config=config, workers=1) for n, seed in ((40, 7), (10, 8)))
    vpro = METHODS["vpro"]().fit(train.spectra, train.targets)
    assert len(vpro.group_) == 0
    error = np.median(np.abs(vpro.predict(test.spectra) / test.targets - 1).to_numpy())
    assert error < 0.05, error


def test_vpro_keeps_the_last_solution_only_for_the_same_spectra(fitted, monkeypatch):
    vpro, _, test = fitted
    X = test.spectra.values().astype(float)
    first = vpro.amounts(X[:3])
    calls = []
    solve = vpro.solve
    monkeypatch.setattr(vpro, "solve", lambda *a: calls.append(1) or solve(*a))
    np.testing.assert_array_equal(vpro.amounts(X[:3].copy()), first)  # same content: no new solve
    assert calls == [] and vpro.reconstruct(X[:3]).shape == X[:3].shape and calls == []
    other = vpro.amounts(X[3:6])
    assert calls == [1] and not np.allclose(other, first)
