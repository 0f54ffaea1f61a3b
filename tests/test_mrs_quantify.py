"""MRS quantification: LCModel .BASIS reader, LCM refinement from given parameters, varpro DL quantifier
(refined, conformal intervals), the training-mean bias test (Rizzo et al. 2023)."""
from __future__ import annotations

import numpy as np
import pytest

from speclearn.core.errors import InputError
from speclearn.mrs.basis import combine, load_basis
from speclearn.mrs.data import shift_phase
from speclearn.mrs.evaluation import regression_slope, training_mean_bias_test
from speclearn.mrs.lcm import LinearCombinationFit
from speclearn.mrs.simulate import MRSSimConfig, fwhm_to_gaussian, simulate_mrs

QUIET = dict(eddy_rad=0.0, water_residual=(0.0, 0.0), lipid_fraction=0.0, baseline=0.0, corrupted_fraction=0.0)
NAMES = ("NAA", "Cr", "PCr")


@pytest.fixture(scope="module")
def basis():
    return load_basis()


def _write_basis(path, basis, names=NAMES, points=None):
    """An LCModel .BASIS file (frequency-domain spectra) of some of `basis`'s metabolites."""
    points = points or basis.points
    lines = [" $SEQPAR", " FWHMBA = 0.01,", f" HZPPPM = {basis.central_frequency_mhz:.6E},", " ECHOT = 30.0,",
             " SEQ = 'PRESS' $END", " $BASIS1", " IDBASI = 'test',", " FMTBAS = '(2E15.6)',",
             f" BADELT = {basis.dwell_time_s:.6E},", f" NDATAB = {points} $END"]
    for name in names:
        spectrum = np.fft.fft(basis.fid[basis.index(name)])
        lines += [" $NMUSED", " FILERAW = 'x.RAW' $END", " $BASIS", f" ID = '{name}',", f" METABO = '{name}',",
                  " CONC = 1.,", " TRAMP = 1.,", " VOLUME = 1.,", " ISHIFT = 0 $END"]
        lines += [f"{v.real:15.6E}{v.imag:15.6E}" for v in spectrum[:points]]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_lcmodel_basis_reader(tmp_path, basis):
    loaded = load_basis(_write_basis(tmp_path / "press.BASIS", basis))
    assert loaded.names == list(NAMES)
    assert loaded.dwell_time_s == pytest.approx(basis.dwell_time_s)
    assert loaded.central_frequency_mhz == pytest.approx(basis.central_frequency_mhz) and loaded.te_ms == 30.0
    for name in NAMES:
        reference = basis.fid[basis.index(name)]
        np.testing.assert_allclose(loaded.fid[loaded.index(name)], reference, atol=1e-5 * np.abs(reference).max())
    with pytest.raises(InputError, match="expected 2 x NDATAB"):
        text = (tmp_path / "press.BASIS").read_text().replace(f"NDATAB = {basis.points}", "NDATAB = 100")
        (tmp_path / "bad.basis").write_text(text)
        load_basis(tmp_path / "bad.basis")
    (tmp_path / "empty.basis").write_text(" $SEQPAR HZPPPM = 123.2 $END\n")
    with pytest.raises(InputError, match="BADELT"):
        load_basis(tmp_path / "empty.basis")


def test_lcm_refinement_from_initial_parameters(basis):
    sim = simulate_mrs(3, seed=3, basis=basis, config=MRSSimConfig(transients=1, snr=(1e9, 1e9), **QUIET))
    scans = sim.scans
    truth_theta = np.column_stack([scans["shift_hz"], np.pi * scans["lorentzian_fwhm_hz"],
                                   fwhm_to_gaussian(scans["gaussian_fwhm_hz"]), np.deg2rad(scans["phase0_deg"]),
                                   np.deg2rad(scans["phase1_deg_per_ppm"])])
    start = truth_theta + np.array([1.5, 3.0, -4.0, 0.2, 0.02])
    model = LinearCombinationFit().fit(sim.clean, basis, initial=start, iterations=8)
    theta = np.array([r["theta"] for r in model.results_])
    np.testing.assert_allclose(theta[:, [0, 3]], truth_theta[:, [0, 3]], atol=0.05)
    conc = model.concentrations(sim.water)[0]
    truth = combine({k: sim.concentrations[k].to_numpy() for k in sim.concentrations})
    for name in ("NAA", "tCr", "tCho", "Ins", "Glu"):
        np.testing.assert_allclose(conc[name], truth[name], rtol=0.03, err_msg=name)
    with pytest.raises(InputError, match="initial parameters"):
        LinearCombinationFit().fit(sim.clean, basis, initial=start[:2])
    # a tight prior on the start holds the parameters there; a loose one lets the data move them
    held = LinearCombinationFit().fit(sim.clean, basis, initial=start, iterations=8, prior_sd=np.full(5, 1e-6))
    np.testing.assert_allclose(np.array([r["theta"] for r in held.results_]), start, atol=1e-3)
    loose = LinearCombinationFit().fit(sim.clean, basis, initial=start, iterations=8, prior_sd=np.full(5, 1e6))
    np.testing.assert_allclose(np.array([r["theta"] for r in loose.results_]), theta, atol=1e-3)


def test_lcm_fallback_start_rescues_a_wrong_first_start(basis):
    """A first start far off (wrong shift, phase turned by 180 deg) fits worse after refinement than the
    fallback does unrefined: the fallback is refined too and wins; a good first start keeps its end."""
    sim = simulate_mrs(2, seed=4, basis=basis, config=MRSSimConfig(transients=1, snr=(1e9, 1e9), **QUIET))
    scans = sim.scans
    truth_theta = np.column_stack([scans["shift_hz"], np.pi * scans["lorentzian_fwhm_hz"],
                                   fwhm_to_gaussian(scans["gaussian_fwhm_hz"]), np.deg2rad(scans["phase0_deg"]),
                                   np.deg2rad(scans["phase1_deg_per_ppm"])])
    wrong = truth_theta + np.array([12.0, 40.0, 0.0, np.pi, 0.0])
    good = truth_theta + np.array([0.5, 1.0, -1.0, 0.05, 0.0])
    rescued = LinearCombinationFit().fit(sim.clean, basis, initial=np.stack([wrong, good]), iterations=8)
    assert [r["start"] for r in rescued.results_] == [1, 1]
    kept = LinearCombinationFit().fit(sim.clean, basis, initial=np.stack([good, wrong]), iterations=8)
    assert [r["start"] for r in kept.results_] == [0, 0]
    truth = combine({k: sim.concentrations[k].to_numpy() for k in sim.concentrations})
    for model in (rescued, kept):
        np.testing.assert_allclose(model.concentrations(sim.water)[0]["NAA"], truth["NAA"], rtol=0.03)


def test_lcm_blas_runs_on_one_thread(basis, monkeypatch):
    """The per-spectrum fits run BLAS on one thread (multithreaded BLAS on small matrices is slower),
    and the caller's setting is back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import speclearn.mrs.lcm as lcm

    seen = []
    original = lcm.hlsvd_water_removal

    def spy(data, *args, **kwargs):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return original(data, *args, **kwargs)

    monkeypatch.setattr(lcm, "hlsvd_water_removal", spy)
    sim = simulate_mrs(1, seed=5, basis=basis, config=MRSSimConfig(transients=1, **QUIET))
    with threadpool_limits(2, user_api="blas"):
        LinearCombinationFit().fit(sim.spectra, basis, initial=np.array([[0.0, 10.0, 20.0, 0.0, 0.0]]), iterations=1)
        after = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    assert seen == [{1}] and after == {2}


def test_training_mean_bias_test():
    rng = np.random.default_rng(0)
    true = rng.uniform(5, 20, 60)
    unbiased = true + rng.normal(0, 0.5, 60)
    shrunk = 12.0 + 0.6 * (true - 12.0) + rng.normal(0, 0.5, 60)  # pulled 40 % toward the training mean
    assert not training_mean_bias_test(true, unbiased, 12.0)["biased"]
    result = training_mean_bias_test(true, shrunk, 12.0)
    assert result["biased"] and result["slope"] == pytest.approx(-0.4, abs=0.05) and result["p_value"] < 1e-6
    assert result["slope"] == pytest.approx(regression_slope(true, shrunk) - 1)


def test_varpro_quantifier_refines_and_calibrates(tmp_path, basis, monkeypatch):
    from speclearn.models import load
    from speclearn.mrs import quantifier
    from speclearn.mrs.quantifier import DLQuantifier
    monkeypatch.setattr(quantifier, "MIN_PRIOR_SPECTRA", 2)  # the network's prior from the 2 held-out spectra
    sim = simulate_mrs(8, seed=8, basis=basis, config=MRSSimConfig(transients=1, snr=(80.0, 80.0), **QUIET))
    model = DLQuantifier(method="varpro", epochs=1, calibration_fraction=0.25, refine=3).fit(
        sim.spectra, basis, sim.concentrations, water=sim.water)
    test, water = sim.spectra.select([0, 1, 2]), sim.water.select([0, 1, 2])
    table, unit = model.predict(test, water=water, interval=0.9)
    assert unit == "mM"
    assert {"NAA", "NAA_sd", "NAA_lo", "NAA_hi", "tCr_lo", "tCr_hi"} <= set(table.columns)
    assert (table["tCr_lo"] <= table["tCr"]).all() and (table["tCr"] <= table["tCr_hi"]).all()
    assert (table["tCr_sd"] > 0).all()
    theta, lcm = model.refined(sim.spectra.select([0, 1]))
    assert theta.shape == (2, 5) and lcm.amplitudes().shape[0] == 2
    assert model.prior_sd_.shape == (5,) and (model.prior_sd_ > 0).all() and np.isfinite(model.nuisance_bias_).all()
    model.save(tmp_path / "m")
    again = load(tmp_path / "m", DLQuantifier).predict(test, water=water, interval=0.9)[0]
    np.testing.assert_allclose(again[["NAA", "NAA_lo", "tCr_hi"]], table[["NAA", "NAA_lo", "tCr_hi"]], rtol=1e-5)
    # a 45 Hz offset (no water reference to correct it) is beyond both starts' reach: the wide search finds it
    ratios = model.predict(test)[0]
    moved = test.with_fid(shift_phase(test.fid, test.dwell_time_s, 45.0, 0.0))
    lcm = model.refined(moved)[1]
    assert [r["start"] for r in lcm.results_] == [2, 2, 2]
    np.testing.assert_allclose(model.predict(moved)[0]["tNAA"], ratios["tNAA"], rtol=0.05)


def test_demo_section(tmp_path):
    from speclearn.demo import SECTIONS, mrs_section
    assert mrs_section in SECTIONS
    section = mrs_section(tmp_path, 0)
    table = section.table
    assert table.loc["CNN + registration", "shift spread (Hz)"] < 0.5
    assert table.loc["CNN + registration", "shift spread (Hz)"] < table.loc["spectral registration", "shift spread (Hz)"]
    assert table.loc["CNN detector", "recall (%)"] >= 80
    assert table.loc["LCM on the oracle average", "median error (%)"] < 15
    assert "CNN + registration" in section.verdict


def test_cli_varpro_with_water(tmp_path, basis):
    import pandas as pd

    from speclearn.cli.main import main
    sim = simulate_mrs(8, seed=9, basis=basis, config=MRSSimConfig(transients=1, snr=(60.0, 60.0), **QUIET))
    sim.write(tmp_path / "sim")
    files = {name: str(tmp_path / "sim" / name) for name in ("spectra.npz", "water.npz", "concentrations.csv")}
    assert main(["mrs", "train", "--spectra", files["spectra.npz"], "--water", files["water.npz"], "--targets",
                 files["concentrations.csv"], "--method", "varpro", "--epochs", "1", "--out",
                 str(tmp_path / "model")]) == 0
    assert main(["mrs", "predict", "--model", str(tmp_path / "model"), "--spectra", files["spectra.npz"], "--water",
                 files["water.npz"], "--interval", "0.9", "--out", str(tmp_path / "c.csv")]) == 0
    table = pd.read_csv(tmp_path / "c.csv", index_col="id")
    # 2 calibration spectra: the conformal 90 % interval is unbounded (finite-sample guarantee)
    assert (table["NAA_lo"] <= table["NAA"]).all() and (table["NAA"] <= table["NAA_hi"]).all()
    assert np.isfinite(table["NAA"]).all() and (table["NAA"] > 0).all() and table["NAA_sd"].notna().all()
    assert "CRLB" in (tmp_path / "c.json").read_text()


def test_water_area_survives_first_order_phase_and_eddy_currents(basis):
    """The reference's area (2 protons x 29697 mM before any line shape) is recovered to 0.3 % from
    the reference alone, although its first-order phase moves |FID(0)| by several percent."""
    from speclearn.mrs.data import first_order_phase
    from speclearn.mrs.lcm import water_area
    from speclearn.mrs.simulate import WATER_CONCENTRATION, WATER_PROTONS
    sim = simulate_mrs(6, seed=5, basis=basis, config=MRSSimConfig(transients=1, corrupted_fraction=0.0,
                                                                   phase1_deg_per_ppm=3.0, eddy_rad=0.3))
    true = WATER_CONCENTRATION * WATER_PROTONS
    assert np.all(np.abs(water_area(sim.water) / true - 1) < 3e-3)
    naive = np.abs(sim.water.fid[:, 0]) / true - 1  # |FID(0)| with the phase left on
    assert np.max(np.abs(naive)) > 0.01
    turned = first_order_phase(sim.water.fid, sim.water.dwell_time_s, sim.water.central_frequency_mhz, 0.0, 2.0)
    moved = sim.water.__class__(turned, sim.water.dwell_time_s, sim.water.central_frequency_mhz, ids=sim.water.ids)
    assert np.allclose(water_area(moved), water_area(sim.water), rtol=3e-3)
