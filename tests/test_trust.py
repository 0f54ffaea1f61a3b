"""Prediction intervals: split-conformal coverage, counting statistics, MC dropout, ensembles, CLI."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speclearn.core.errors import InputError
from speclearn.io import read_table_csv, write_spectra, write_table_csv
from speclearn.quantify.caemmt import CAEMMT
from speclearn.quantify.wnnls import WNNLS
from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms
from speclearn.models.conformal import SplitConformal, conformal_quantile
from speclearn.quantify.counting import concentration_sd
from speclearn.quantify.dropout import MCDropout
from speclearn.quantify.ensemble import DeepEnsemble
from speclearn.quantify.intervals import TrustedQuantifier, fit_calibrated

CONFIG = ICPMSConfig(analytes=("Cd", "Pb", "Tl"), interferents=("Sn",),
                     instrument=ICPMSInstrument(mz_min=100.0, mz_max=215.0, n_channels=1000))
NEURAL = {"epochs": 2, "max_seconds": 10, "progress": False}


@pytest.fixture(scope="module")
def data():
    return simulate_icpms(200, seed=1, config=CONFIG, workers=1), simulate_icpms(300, seed=2, config=CONFIG, workers=1)


@pytest.fixture(scope="module")
def trusted_wnnls(data):
    train, _ = data
    return fit_calibrated(WNNLS(), train.spectra, train.targets, calibration_fraction=0.5, score="log", seed=0)


def _covered(truth: pd.DataFrame, lo: pd.DataFrame, hi: pd.DataFrame) -> np.ndarray:
    return ((truth >= lo) & (truth <= hi)).to_numpy()


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1.0, 10.0)[:, None]  # n = 9
    assert conformal_quantile(scores, 0.5)[0] == 5.0  # ceil(10 * 0.5) = 5th smallest
    assert np.isinf(conformal_quantile(scores, 0.95)[0])  # ceil(10 * 0.95) = 10 > n


def test_conformal_coverage_near_nominal_on_unseen_spectra(data, trusted_wnnls):
    _, test = data
    for level in (0.8, 0.9):
        _, lo, hi = trusted_wnnls.predict_intervals(test.spectra, level, "conformal")
        coverage = _covered(test.targets, lo, hi).mean()
        assert abs(coverage - level) < 0.07, (level, coverage)


def test_intervals_contain_prediction_and_widen_with_level(data, trusted_wnnls):
    _, test = data
    widths = []
    for level in (0.8, 0.9, 0.95):
        p, lo, hi = trusted_wnnls.predict_intervals(test.spectra, level, "conformal")
        assert ((lo <= p) & (p <= hi)).to_numpy().all()
        widths.append((hi - lo).to_numpy())
    assert (widths[1] >= widths[0]).all() and (widths[2] >= widths[1]).all()
    assert widths[2].mean() > widths[0].mean()


@pytest.mark.parametrize("score", ["absolute", "relative", "log"])
def test_every_score_covers_exchangeable_residuals(score):
    rng = np.random.default_rng(0)
    y = np.exp(rng.normal(0, 1.2, (2000, 2)))
    p = y * np.exp(rng.normal(0, 0.1, y.shape))
    conformal = SplitConformal(score).calibrate(y[:500], p[:500])
    lo, hi = conformal.interval(p[500:], 0.9)
    assert abs(((y[500:] >= lo) & (y[500:] <= hi)).mean() - 0.9) < 0.03
    shifted = p[500:] - 1.0  # some predictions negative: still inside their interval
    lo, hi = conformal.interval(shifted, 0.9)
    assert (shifted < 0).any() and ((lo <= shifted) & (shifted <= hi)).all()


def test_counting_statistics_shrink_relative_error_with_counts(data, trusted_wnnls):
    _, test = data
    model = trusted_wnnls.quantifier
    X = test.spectra.values()[:60].astype(float)
    sd = concentration_sd(model, X)
    assert (sd > 0).all()
    relative = sd / np.maximum(model._predict(X), 1e-9)
    concentration = test.targets.to_numpy()[:60]
    for k in range(sd.shape[1]):  # Poisson: relative uncertainty falls as the signal grows
        assert np.corrcoef(np.log(concentration[:, k]), np.log(relative[:, k]))[0, 1] < -0.5
    p, lo, hi = trusted_wnnls.predict_intervals(test.spectra.select(test.spectra.ids[:60]), 0.9, "counting")
    np.testing.assert_allclose(((hi - lo) / 2).to_numpy(), 1.6448536 * sd, rtol=1e-6)


def test_saved_calibration_round_trips(data, trusted_wnnls, tmp_path):
    _, test = data
    trusted_wnnls.save(tmp_path / "m")
    loaded = TrustedQuantifier.load(tmp_path / "m")
    part = test.spectra.select(test.spectra.ids[:20])
    for a, b in zip(loaded.predict_intervals(part, 0.9), trusted_wnnls.predict_intervals(part, 0.9)):
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy())


def test_mc_dropout_spread_positive_and_seeded(data):
    train, test = data
    subset = train.spectra.select(train.spectra.ids[:60]), train.targets.iloc[:60]
    model = CAEMMT(architecture="seed", **NEURAL).fit(*subset)
    X = test.spectra.values()[:10].astype(float)
    sd = MCDropout(0.2, 8, seed=3).sigma(model, X)
    assert (sd > 0).all()
    with pytest.raises(InputError, match="do not pass through"):  # physics: concentrations from the solve
        MCDropout(0.2, 8, seed=3).sigma(CAEMMT(**NEURAL).fit(*subset), X)
    np.testing.assert_array_equal(sd, MCDropout(0.2, 8, seed=3).sigma(model, X))
    assert not np.array_equal(sd, MCDropout(0.2, 8, seed=4).sigma(model, X))
    with pytest.raises(InputError, match="neural"):
        MCDropout().sigma(WNNLS(), X)


def test_deep_ensemble_spread_seeded_and_saved(data, tmp_path):
    train, test = data
    subset = train.spectra.select(train.spectra.ids[:60]), train.targets.iloc[:60]
    ensemble = DeepEnsemble("caemmt", NEURAL, n_members=2, seed=0)
    trusted = fit_calibrated(ensemble, *subset, calibration_fraction=0.25, score="scaled", spread="ensemble")
    X = test.spectra.values()[:10].astype(float)
    assert (ensemble.draws(X).std(axis=0) > 0).all()
    trusted.save(tmp_path / "e")
    loaded = TrustedQuantifier.load(tmp_path / "e")
    np.testing.assert_allclose(loaded.quantifier._predict(X), ensemble._predict(X), rtol=1e-5)
    _, lo, hi = loaded.predict_intervals(test.spectra.select(test.spectra.ids[:10]), 0.9)
    assert (hi.to_numpy() > lo.to_numpy()).all()


def test_bootstrap_ensemble_of_a_seedless_method_is_seeded(data):
    train, test = data
    ids = train.spectra.ids[:50]
    X = test.spectra.values()[:5].astype(float)
    fits = [DeepEnsemble("wnnls", {}, n_members=2, seed=seed).fit(train.spectra.select(ids), train.targets.loc[ids])
            .draws(X) for seed in (0, 0, 1)]
    assert (fits[0].std(axis=0) > 0).all()  # members differ
    np.testing.assert_array_equal(fits[0], fits[1])  # same seed, same ensemble
    assert not np.allclose(fits[0], fits[2])


# --- CLI -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(data, tmp_path_factory):
    train, test = data
    folder = tmp_path_factory.mktemp("trust_cli")
    write_spectra(train.spectra, folder / "train.csv")
    write_table_csv(train.targets, folder / "targets.csv")
    write_spectra(train.spectra.select(train.spectra.ids[:30]), folder / "small.csv")
    write_table_csv(train.targets.iloc[:30], folder / "small_targets.csv")
    write_spectra(test.spectra.select(test.spectra.ids[:20]), folder / "test.csv")
    return folder


def test_cli_predict_interval_columns(cli, files):
    code, _, err = cli("quantify", "train", "--spectra", files / "train.csv", "--targets", files / "targets.csv",
                       "--out", files / "wnnls", "--method", "wnnls", "--calibration-fraction", "0.25")
    assert code == 0, err
    code, _, err = cli("quantify", "predict", "--model", files / "wnnls", "--spectra", files / "test.csv",
                       "--out", files / "pred.csv", "--interval", "0.9")
    assert code == 0, err
    table = read_table_csv(files / "pred.csv", numeric=True)
    assert list(table.columns[:3]) == ["Cd", "Cd_lo", "Cd_hi"]
    for name in CONFIG.analytes:
        assert ((table[f"{name}_lo"] <= table[name]) & (table[name] <= table[f"{name}_hi"])).all()
    code, _, err = cli("quantify", "predict", "--model", files / "wnnls", "--spectra", files / "test.csv",
                       "--out", files / "bad.csv", "--interval", "1.5")
    assert code == 2 and "between 0 and 1" in err


def test_cli_model_without_uncertainty_support_exit_2(cli, files):
    code, _, err = cli("quantify", "train", "--spectra", files / "small.csv", "--targets", files / "small_targets.csv",
                       "--out", files / "pls", "--method", "pls")
    assert code == 0, err
    code, _, err = cli("quantify", "predict", "--model", files / "pls", "--spectra", files / "test.csv",
                       "--out", files / "pls.csv", "--interval", "0.9")
    assert code == 2 and "no uncertainty support" in err and "--calibration-fraction" in err
    assert not (files / "pls.csv").exists()
    code, _, err = cli("quantify", "predict", "--model", files / "pls", "--spectra", files / "test.csv",
                       "--out", files / "pls.csv", "--interval", "0.9", "--interval-method", "dropout")
    assert code == 2 and "neural" in err


def test_mondrian_conformal_covers_precise_and_imprecise_predictions_alike():
    """When the spread overstates the error for imprecise predictions, one pool of scores over-covers
    them and under-covers the precise ones; shares by relative spread bring both nearer 90 %."""
    rng = np.random.default_rng(0)
    sigma = np.exp(rng.uniform(-3, 0, (3000, 2)))
    p = np.ones((3000, 2))
    y = p + rng.normal(size=p.shape) * np.where(sigma > 0.2, 0.5 * sigma, sigma)
    small = sigma[1500:] <= 0.2
    gaps = {}
    for bins in (1, 3):
        conformal = SplitConformal("scaled", bins=bins).calibrate(y[:1500], p[:1500], sigma[:1500])
        lo, hi = conformal.interval(p[1500:], 0.9, sigma[1500:])
        inside = (lo <= y[1500:]) & (y[1500:] <= hi)
        gaps[bins] = max(abs(inside[small].mean() - 0.9), abs(inside[~small].mean() - 0.9))
        state, arrays = conformal.state()
        again = SplitConformal.restore(state, arrays).interval(p[1500:], 0.9, sigma[1500:])
        np.testing.assert_array_equal(again[0], lo)
    assert gaps[3] < 0.6 * gaps[1]
    with pytest.raises(InputError):
        SplitConformal("log", bins=3).calibrate(y, p)
