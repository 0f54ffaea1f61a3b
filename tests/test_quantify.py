"""Quantification methods on small simulated ICP-MS sets, the CLI contract and bad inputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import write_spectra, write_table_csv
from speclearn.models import load
from speclearn.quantify import METHODS, Quantifier
from speclearn.physics.icpms import ion_pattern
from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms

ANALYTES = ("Cd", "Pb", "Cu", "As", "Mo")
INSTRUMENT = ICPMSInstrument(mz_min=50.0, mz_max=220.0, n_channels=2400)
FAST = {"caemmt": {"epochs": 40, "max_seconds": 5, "progress": False, "patience": 10},
        "twohead": {"epochs": 40, "max_seconds": 5, "progress": False, "patience": 10},
        "rf": {"n_estimators": 60}, "gd": {"isotopes_per_element": 1}, "pls": {"max_components": 12}, "bss": {"max_iter": 200}}


def _config(**kwargs) -> ICPMSConfig:
    return ICPMSConfig(**{"analytes": ANALYTES, "interferents": ("Sn", "Zr"), "instrument": INSTRUMENT, **kwargs})


@pytest.fixture(scope="module")
def icpms():
    train = simulate_icpms(70, seed=1, config=_config(), workers=1)
    test = simulate_icpms(30, seed=2, config=_config(), workers=1)
    return train, test


def _rmse(predicted: pd.DataFrame, true: pd.DataFrame) -> float:
    return float(np.sqrt(np.mean((predicted.to_numpy() - true.to_numpy()) ** 2)))


@pytest.mark.parametrize("method", list(METHODS))
def test_method_beats_training_mean_and_round_trips(method, icpms, tmp_path):
    train, test = icpms
    model = METHODS[method](**FAST.get(method, {}))
    ids = train.spectra.ids[:20] if method == "gd" else train.spectra.ids  # peak fitting is slow
    model.fit(train.spectra.select(ids), train.targets.loc[ids],
              clean=train.spectra.with_intensity(train.clean).select(ids), peaks=train.peaks)
    test_ids = test.spectra.ids[:15] if method == "gd" else test.spectra.ids
    test_spectra, test_targets = test.spectra.select(test_ids), test.targets.loc[test_ids]
    predicted = model.predict(test_spectra)
    assert list(predicted.columns) == list(ANALYTES) and list(predicted.index) == test_ids
    baseline = pd.DataFrame(np.broadcast_to(train.targets.mean().to_numpy(), test_targets.shape),
                            index=test_targets.index, columns=test_targets.columns)
    physics = method in ("wnnls", "vpro", "caemmt", "gd")  # these must do far better than the mean
    assert _rmse(predicted, test_targets) < (0.5 if physics else 1.0) * _rmse(baseline, test_targets)
    model.save(tmp_path / "model")
    again = load(tmp_path / "model", Quantifier)
    np.testing.assert_allclose(again.predict(test_spectra).to_numpy(), predicted.to_numpy(), rtol=1e-5, atol=1e-9)
    other = Spectra(test.spectra.values()[:, :-1], test.spectra.axis[:-1], axis_kind="mz")
    with pytest.raises(InputError, match="channels"):
        again.predict(other)


def test_wnnls_recovers_concentrations_on_noise_light_data():
    quiet = _config(gaussian_noise_rel=0.0, mass_shift_sd=0.0, sensitivity_drift_sd=0.0, mass_bias_sd=0.0,
                    concentration_median=20.0)
    train = simulate_icpms(40, seed=3, config=quiet, workers=1)
    test = simulate_icpms(15, seed=4, config=quiet, workers=1)
    model = METHODS["wnnls"]().fit(train.spectra, train.targets)
    error = np.abs(model.predict(test.spectra) - test.targets) / test.targets
    assert float(np.median(error.to_numpy())) < 0.03
    assert (model.internal_standard_recovery(test.spectra.values()) > 0.8).all()
    peaks = model.peak_parameters(test.spectra.values())
    cd = max(ion_pattern("Cd"), key=lambda p: p[1])[0]
    assert abs(np.median(peaks[:, 0, 0]) - cd) < 0.02  # estimated mass calibration puts Cd-114 where it is


def test_wnnls_refuses_unknown_element(icpms):
    train, _ = icpms
    targets = train.targets.rename(columns={"Cd": "Xx"})
    with pytest.raises(InputError, match="Xx"):
        METHODS["wnnls"]().fit(train.spectra, targets)


def test_bad_targets(icpms):
    train, _ = icpms
    model = METHODS["pls"]()
    with pytest.raises(InputError, match="no row"):
        model.fit(train.spectra, train.targets.iloc[1:])
    extra = pd.concat([train.targets, train.targets.iloc[:1].rename(index=lambda i: "ghost")])
    with pytest.raises(InputError, match="not among the spectra"):
        model.fit(train.spectra, extra)
    negative = train.targets.copy()
    negative.iloc[3, 1] = -1.0
    with pytest.raises(InputError, match="negative"):
        model.fit(train.spectra, negative)
    missing = train.targets.copy()
    missing.iloc[2, 0] = np.nan
    with pytest.raises(InputError, match="finite"):
        model.fit(train.spectra, missing)


@pytest.fixture(scope="module")
def files(icpms, tmp_path_factory):
    train, test = icpms
    folder = tmp_path_factory.mktemp("quantify")
    write_spectra(train.spectra, folder / "train.csv")
    write_spectra(test.spectra, folder / "test.csv")
    targets = train.targets.copy()
    write_table_csv(targets, folder / "targets.csv")
    return folder


def test_cli_train_predict(cli, files):
    code, _, err = cli("quantify", "train", "--spectra", files / "train.csv", "--targets", files / "targets.csv",
                       "--out", files / "model", "--method", "wnnls")
    assert code == 0, err
    code, _, err = cli("quantify", "predict", "--model", files / "model", "--spectra", files / "test.csv",
                       "--out", files / "pred.csv", "--reconstructed", files / "recon.csv",
                       "--peaks-out", files / "peaks.csv")
    assert code == 0, err
    peaks = pd.read_csv(files / "peaks.csv")
    assert len(peaks) == 30 * len(ANALYTES)  # the estimated FWHM matches the instrument's
    np.testing.assert_allclose(peaks["width"], INSTRUMENT.fwhm(peaks["centre"].to_numpy()), rtol=0.1)
    pred = pd.read_csv(files / "pred.csv")
    assert list(pred.columns) == ["id", *ANALYTES]
    flags = pd.read_csv(files / "pred.flags.csv", index_col="id")
    assert flags["internal_standard_recovery"].between(0.7, 1.3).all()
    assert flags["unexplained_peak_mz"].isna().all()  # the model knows every species these spectra hold
    assert pd.read_csv(files / "recon.csv").shape == (30, INSTRUMENT.n_channels + 1)
    # an element the model was not trained with (Nd, isotopes at m/z 142-150) is flagged, not absorbed
    write_spectra(simulate_icpms(10, seed=3, config=_config(interferents=("Sn", "Zr", "Nd")), workers=1).spectra,
                  files / "with_nd.csv")
    code, _, err = cli("quantify", "predict", "--model", files / "model", "--spectra", files / "with_nd.csv",
                       "--out", files / "pred_nd.csv")
    assert code == 0, err
    found = pd.read_csv(files / "pred_nd.flags.csv", index_col="id")["unexplained_peak_mz"]
    assert found.notna().mean() >= 0.8 and found.dropna().between(141.5, 150.5).all()
    assert "does not explain" in err
    # samples far above the training range, read by a counter with 50 ns dead time, are flagged '>range'
    slow_counter = ICPMSInstrument(**{**INSTRUMENT.__dict__, "dead_time": 50e-9})
    wide = simulate_icpms(10, seed=4, config=_config(instrument=slow_counter), workers=1,
                          concentration_range_factor=5.0)
    write_spectra(wide.spectra, files / "wide.csv")
    code, _, err = cli("quantify", "predict", "--model", files / "model", "--spectra", files / "wide.csv",
                       "--out", files / "pred_wide.csv")
    assert code == 0, err
    wide_flags = pd.read_csv(files / "pred_wide.flags.csv", index_col="id")[list(ANALYTES)]
    top = pd.read_csv(files / "targets.csv", index_col="id")[list(ANALYTES)].max()
    far_above = wide.targets[list(ANALYTES)] > 2 * top
    assert far_above.to_numpy().any()
    assert (wide_flags.to_numpy()[far_above.to_numpy()] == ">range").all()
    code, _, err = cli("quantify", "predict", "--model", files / "model", "--spectra", files / "test.csv",
                       "--out", files / "pred.csv")
    assert code == 2 and "exists" in err


def test_flag_results():
    from speclearn.quantify.analyst import flag_results

    limits = pd.DataFrame({"lod": [1.0, np.nan], "loq": [3.0, np.nan], "top_standard": [10.0, 5.0]},
                          index=["Cd", "Pb"])
    predictions = pd.DataFrame({"Cd": [0.5, 2.0, 5.0, 11.0], "Pb": [0.5, 2.0, 5.0, 6.0], "Cu": 1.0})
    flags = flag_results(predictions, limits)
    assert flags["Cd"].tolist() == ["<LOD", "<LOQ", "ok", ">range"]
    assert flags["Pb"].tolist() == ["n/a", "n/a", "n/a", ">range"]  # no blanks: only the range is known
    assert flags["Cu"].tolist() == ["n/a"] * 4
    assert (flag_results(predictions, None) == "n/a").all().all()


def test_cli_bad_inputs(cli, files, tmp_path):
    train = pd.read_csv(files / "train.csv")
    targets = pd.read_csv(files / "targets.csv")
    targets.iloc[:-1].to_csv(tmp_path / "short.csv", index=False)
    code, _, err = cli("quantify", "train", "--spectra", files / "train.csv", "--targets", tmp_path / "short.csv",
                       "--out", tmp_path / "m1", "--method", "pls")
    assert code == 2 and "no row" in err
    bad = targets.copy()
    bad.iloc[0, 1] = -2
    bad.to_csv(tmp_path / "negative.csv", index=False)
    code, _, err = cli("quantify", "train", "--spectra", files / "train.csv", "--targets", tmp_path / "negative.csv",
                       "--out", tmp_path / "m2", "--method", "pls")
    assert code == 2 and "negative" in err
    targets.rename(columns={"Cd": "Qq"}).to_csv(tmp_path / "unknown.csv", index=False)
    code, _, err = cli("quantify", "train", "--spectra", files / "train.csv", "--targets", tmp_path / "unknown.csv",
                       "--out", tmp_path / "m3", "--method", "wnnls")
    assert code == 2 and "Qq" in err
    train.iloc[:, :-5].to_csv(tmp_path / "cropped.csv", index=False)
    code, _, err = cli("quantify", "predict", "--model", files / "model", "--spectra", tmp_path / "cropped.csv",
                       "--out", tmp_path / "p.csv")
    assert code == 2 and "channels" in err


def test_real_nir_fermentation(cli, tmp_path):
    """chemotools' 21 real NIR spectra: learned methods run, physics methods refuse with a clear message and a
    collapsed network (constant predictions) is an error, not a silent success."""
    from speclearn.demo import load_fermentation

    spectra, glucose = load_fermentation()
    write_spectra(spectra, tmp_path / "nir.csv")
    write_table_csv(glucose.to_frame("glucose"), tmp_path / "glucose.csv")
    code, _, err = cli("quantify", "train", "--spectra", tmp_path / "nir.csv", "--targets", tmp_path / "glucose.csv",
                       "--out", tmp_path / "caemmt", "--method", "caemmt", "--epochs", "5")
    assert code == 2 and "collapsed" in err and not (tmp_path / "caemmt").exists()
    for method in ("pls",):
        code, _, err = cli("quantify", "train", "--spectra", tmp_path / "nir.csv", "--targets",
                           tmp_path / "glucose.csv", "--out", tmp_path / method, "--method", method)
        assert code == 0, (method, err)
        code, _, err = cli("quantify", "predict", "--model", tmp_path / method, "--spectra", tmp_path / "nir.csv",
                           "--out", tmp_path / f"{method}.csv")
        assert code == 0, (method, err)
        assert np.isfinite(pd.read_csv(tmp_path / f"{method}.csv")["glucose"]).all()
    for method in ("wnnls", "gd"):
        code, _, err = cli("quantify", "train", "--spectra", tmp_path / "nir.csv", "--targets",
                           tmp_path / "glucose.csv", "--out", tmp_path / method, "--method", method)
        assert code == 2 and "glucose" in err and "element" in err


def test_cnn_regressor_learns_a_property_and_round_trips(tmp_path):
    from speclearn.models import load
    from speclearn.quantify import Quantifier
    from speclearn.quantify.cnn import CNNRegressor

    rng = np.random.default_rng(0)
    axis = np.linspace(1100.0, 2500.0, 128)
    y = rng.uniform(0, 1, 240)
    bands = np.exp(-0.5 * ((axis - 1450) / 60) ** 2), np.exp(-0.5 * ((axis - 1940) / 80) ** 2)
    X = (1 + rng.normal(0, 0.1, (240, 1))) * (y[:, None] * bands[0] + (1 - y[:, None]) * bands[1] + 0.5) \
        + rng.normal(0, 0.005, (240, 128))
    spectra = Spectra(X, axis, axis_kind="wavelength")
    targets = pd.DataFrame({"moisture": y}, index=spectra.meta.index)
    train, test = spectra.select(spectra.ids[:180]), spectra.select(spectra.ids[180:])
    model = CNNRegressor(epochs=150, max_seconds=60).fit(train, targets.iloc[:180])
    predicted = model.predict(test)["moisture"].to_numpy()
    assert np.sqrt(np.mean((predicted - y[180:]) ** 2)) < 0.3 * y.std()
    model.save(tmp_path / "m")
    np.testing.assert_allclose(load(tmp_path / "m", Quantifier).predict(test)["moisture"].to_numpy(), predicted,
                               rtol=1e-5)
