"""speclearn.gamma: readers on real files, detector physics, simulator truth, identification, CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.signal import find_peaks, peak_widths

from speclearn.core.errors import InputError
from speclearn.gamma.grid import auto_calibrate
from speclearn.gamma.lines import CAPTURE_LINES, DECAY_LINES, INELASTIC_LINES, NATURAL
from speclearn.gamma.materials import MATERIALS, atom_fractions
from speclearn.gamma.peaksearch import PeakSearchIdentifier
from speclearn.io.gamma_formats import check_calibration, read_spe
from speclearn.gamma.response import DETECTORS, backscatter_energy, compton_edge, line_response
from speclearn.gamma.simulate import simulate_materials, simulate_nuclides
from speclearn.io import read_spectra

DATA = Path(__file__).parent / "data" / "gamma"
KELP = DATA / "Mendocino_07-10-13_Acq-10-10-13.Spe"
NAI = DATA / "nai_detector.spe"
CSI = DATA / "sim_spec.spe"
DIGIBASE = DATA / "digibase_5min_30_1.spe"


# --- readers -------------------------------------------------------------------------------------
def test_spe_reader_keeps_calibration_and_times():
    s = read_spe(KELP)
    assert s.axis_kind == "energy" and s.axis_unit == "keV" and s.n_channels == 8192
    assert s.axis[1] - s.axis[0] == pytest.approx(0.378444)
    row = s.meta.iloc[0]
    assert row["live_time_s"] == 595642 and row["real_time_s"] == 595798
    assert row["cal_gain"] == pytest.approx(0.378444) and "0.378444" in row["calibration"]
    assert s.values().sum() > 1e5
    # the project's reader dispatch knows the suffix (upper or lower case)
    assert np.array_equal(read_spectra(KELP).values(), s.values())


def test_invalid_calibration_is_refused_with_the_file_named():
    with pytest.raises(InputError) as err:
        read_spectra(DIGIBASE)
    message = str(err.value)
    assert "digibase_5min_30_1.spe" in message and "invalid energy calibration" in message and "\n" not in message
    given = read_spe(DIGIBASE, calibration=(0.0, 3.0))
    assert given.axis_kind == "energy" and given.meta["live_time_s"].iloc[0] == 296


def test_non_monotonic_calibration_is_refused():
    with pytest.raises(InputError, match="stops increasing"):
        check_calibration((0.0, 1.0, -0.001), 1024, file="x.spe")
    with pytest.raises(InputError, match="negative"):
        check_calibration((0.0, -1.0), 16)


def test_channel_files_auto_calibrate_on_background_lines():
    nai = read_spe(NAI)
    assert nai.axis_kind == "channel" and nai.meta["calibration"].iloc[0] == "none"
    (offset, gain), pairs = auto_calibrate(nai.values()[0])
    assert gain == pytest.approx(2.02, abs=0.04) and 1460.82 in [e for _, e in pairs]
    (_, gain_csi), _ = auto_calibrate(read_spe(CSI).values()[0])
    assert gain_csi == pytest.approx(3.0, abs=0.06)


# --- physics -------------------------------------------------------------------------------------
def test_line_tables_hold_reference_energies():
    assert DECAY_LINES["Cs-137"][0][0] == pytest.approx(661.657)
    assert [e for e, _ in DECAY_LINES["Co-60"]] == pytest.approx([1173.228, 1332.492])
    assert dict(DECAY_LINES["K-40"])[1460.820] == pytest.approx(10.66)
    assert CAPTURE_LINES["H"][0] == pytest.approx((2223.25, 0.3326))
    assert INELASTIC_LINES["C"][0][0] == pytest.approx(4438.9) and INELASTIC_LINES["O"][-1][0] == pytest.approx(6129.3)


def test_natural_uranium_carries_u235_and_radium_186_kev_lines():
    """Natural uranium: Ra-226 186.2 keV plus U-235 185.7 keV at natural abundance (activity ratio
    0.046, so 57.2 % x 0.046 = 2.6 photons per 100 U-238 decays); radon escaping weakens only Bi/Pb-214."""
    from speclearn.gamma.lines import NATURAL_U235_ACTIVITY, decay_lines
    from speclearn.gamma.simulate import nuclide_template
    assert NATURAL_U235_ACTIVITY == pytest.approx(0.007204 / 0.992742 * 4.468e9 / 7.04e8, rel=0.01)
    u238 = dict(DECAY_LINES["U-238"])
    assert u238[186.211] == pytest.approx(3.64) and u238[185.715] == pytest.approx(57.2 * 0.046, abs=0.01)
    assert u238[143.767] == pytest.approx(10.96 * 0.046, abs=0.01) and 185.715 not in dict(DECAY_LINES["Th-232"])
    escaped = dict(map(tuple, decay_lines("U-238", radon=0.25)))
    assert escaped[609.312] == pytest.approx(0.25 * u238[609.312] / 100) and escaped[351.932] < u238[351.932] / 100
    assert escaped[185.715] == pytest.approx(u238[185.715] / 100) and escaped[1001.03] == pytest.approx(0.0084)
    # HPGe: the 186 keV doublet stands out of the natural-uranium template, about 1/6 of the 609 keV peak's
    # photons at equilibrium (x efficiency), more when radon escaped
    axis = DETECTORS["hpge"].axis(3000.0, 8192)
    t = nuclide_template("hpge", "U-238")
    assert 0.1 < _net(axis, t, 186.0) / _net(axis, t, 609.3) < 1.0


def _net(axis, counts, energy):
    """Net counts within +-2 keV over the mean of the 4-6 keV side bands (last axis)."""
    inside, side = np.abs(axis - energy) < 2, (np.abs(axis - energy) > 4) & (np.abs(axis - energy) < 6)
    return counts[..., inside].sum(-1) - counts[..., side].mean(-1) * inside.sum()


def test_background_radon_disequilibrium_is_drawn_per_spectrum():
    equilibrium = simulate_nuclides("hpge", 6, seed=2, background=(1.0, 1.0), counts=(1e5, 1e5), gain_drift=0.0)
    escaped = simulate_nuclides("hpge", 6, seed=2, background=(1.0, 1.0), counts=(1e5, 1e5), gain_drift=0.0,
                                radon=(0.3, 0.3))
    axis = equilibrium.spectra.axis
    ratio = lambda sim: _net(axis, sim.clean, 609.3) / _net(axis, sim.clean, 186.0)
    assert np.allclose(ratio(equilibrium), ratio(equilibrium)[0], rtol=0.05)
    assert np.all(ratio(escaped) < 0.5 * ratio(equilibrium)[0])
    assert (simulate_nuclides("nai", 4, seed=2).spectra.values() ==
            simulate_nuclides("nai", 4, seed=2, radon=(1.0, 1.0)).spectra.values()).all()


def test_compton_edge_backscatter_and_escape_peaks():
    assert compton_edge(661.657) == pytest.approx(477.3, abs=0.5)
    assert backscatter_energy(661.657) == pytest.approx(184.3, abs=0.5)
    hpge = DETECTORS["hpge"]
    axis = hpge.axis()
    response = line_response(axis, 2614.511, hpge)
    peaks, _ = find_peaks(response, prominence=response.max() * 1e-3)
    found = axis[peaks]
    for expected in (2614.511, 2614.511 - 511.0, 2614.511 - 1022.0):
        assert np.min(np.abs(found - expected)) < 1.0
    low = line_response(axis, 661.657, hpge)
    peaks, _ = find_peaks(low, prominence=low.max() * 1e-3)
    assert not np.any(np.abs(axis[peaks] - (661.657 - 511.0)) < 2.0)  # no escape peak below 1022 keV
    edge = axis[np.argmax(np.abs(np.diff(np.log(low[1000:1800] + 1e-12)))) + 1000]
    assert edge == pytest.approx(477.3, abs=5.0)


@pytest.mark.parametrize("name, fwhm", [("nai", 0.07 * 661.657), ("labr3", 0.03 * 661.657), ("hpge", 1.4)])
def test_fwhm_at_662_as_configured(name, fwhm):
    detector = DETECTORS[name]
    axis = detector.axis()
    response = line_response(axis, 661.657, detector)
    top = int(np.argmin(np.abs(axis - 661.657)))
    width = peak_widths(response, [top], rel_height=0.5)[0][0] * (axis[1] - axis[0])
    assert width == pytest.approx(fwhm, rel=0.08)
    assert detector.efficiency(1500) < detector.efficiency(661.657) < detector.efficiency(300)


# --- simulator -----------------------------------------------------------------------------------
def test_nuclide_simulation_ground_truth():
    sim = simulate_nuclides("nai", 12, seed=3)
    X = sim.spectra.values()
    assert np.array_equal(X, np.round(X)) and (X >= 0).all()
    shares = sim.truth[list(DECAY_LINES)].sum(axis=1)  # the scattered-continuum share is no nuclide
    assert (shares <= 1.0 + 1e-9).all() and (shares > 0.5).all()
    for _, row in sim.truth.iterrows():
        assert set(row["labels"].split(";")) <= {n for n in DECAY_LINES if row[n] > 0}  # only what is there
    assert (sim.spectra.meta["live_time_s"] < sim.spectra.meta["real_time_s"]).all()
    assert np.allclose(sim.truth["total_counts"], X.sum(axis=1))
    loud = simulate_nuclides("hpge", 6, seed=3, counts=(1e6, 1e6), background=(0.3, 0.3))
    for _, row in loud.truth.iterrows():  # at 1e6 counts every natural component above 5 % is detectable
        assert {n for n in NATURAL if row[n] >= 0.05} <= set(row["labels"].split(";"))


def test_sources_behind_thick_lead_are_not_labelled():
    """Am-241 (59.5 keV) behind lead leaves no full-energy peak: it is no label; behind thin iron it
    still is (0.85 cm of iron passes 3e-4 of it, about the detection limit); Co-60 still is."""
    from speclearn.gamma.simulate import line_peaks
    assert line_peaks("nai", "Am-241", ("lead", 0.5)).max() < 1e-9 < 0.01 < line_peaks("nai", "Am-241").max()
    assert line_peaks("nai", "Co-60", ("lead", 0.5)).min() > 0.3 * line_peaks("nai", "Co-60").min()
    sim = simulate_nuclides("nai", 6, seed=1, nuclides=("Am-241",), max_sources=1, shielding_probability=1.0,
                            counts=(1e5, 1e5), background=(0.2, 0.2))
    shielded = sim.truth["shielding"].str.startswith("lead")
    assert shielded.any() and not sim.truth.loc[shielded, "labels"].str.contains("Am-241").any()
    thin = sim.truth["shielding"].str.match(r"iron 0\.[0-4]")
    assert thin.sum() >= 2 and sim.truth.loc[thin, "labels"].str.contains("Am-241").all()


def test_oracle_labels_fit_each_amount_and_apply_the_label_rule():
    """The oracle fits each candidate's amount with the other components known: far above the detection
    limit it reproduces the labels, and near it (few counts) it errs, as any identifier must."""
    from speclearn.gamma.simulate import _poisson_scale
    rng = np.random.default_rng(0)
    rest, own = rng.uniform(50, 100, 400), np.exp(-0.5 * ((np.arange(400) - 200) / 5.0) ** 2) * 40
    estimates = [_poisson_scale(rng.poisson(rest + 2.0 * own).astype(float), rest, own) for _ in range(200)]
    assert abs(np.mean(estimates) - 2.0) < 0.05 and _poisson_scale(np.zeros(400), rest, own) == 0.0
    loud = simulate_nuclides("hpge", 20, seed=4, counts=(1e6, 1e6), background=(0.3, 0.3), oracle=True)
    assert (loud.truth["oracle_labels"] == loud.truth["labels"]).mean() >= 0.9
    faint = simulate_nuclides("nai", 60, seed=4, counts=(1e3, 3e3), oracle=True)
    assert 0 < (faint.truth["oracle_labels"] != faint.truth["labels"]).sum() < 30


def test_material_simulation_ground_truth():
    assert len(MATERIALS) >= 16
    assert atom_fractions("water")[0] == pytest.approx(2 / 3)
    sim = simulate_materials("labr3", 18, seed=1, composition_jitter=0.0)
    assert sim.truth["material"].nunique() == 18
    elements = [c for c in sim.truth.columns if c in ("H", "C", "N", "O", "Cl", "Na", "Fe")]
    assert np.allclose(sim.truth.loc[sim.truth.material == "salt", ["Na", "Cl"]].to_numpy(), 0.5)
    assert np.all(sim.truth[elements].to_numpy() <= 1.0)


# --- identification ------------------------------------------------------------------------------
def test_peak_search_finds_cs137_in_simulated_spectrum():
    sim = simulate_nuclides("nai", 3, seed=5, nuclides=("Cs-137",), max_sources=1, counts=(1e5, 1e5),
                        background=(0.0, 0.0), shielding_probability=0.0)
    found = PeakSearchIdentifier().fit().predict(sim.spectra)
    assert set(found["id"]) == set(sim.spectra.ids)
    cs = found[found["nuclide"] == "Cs-137"]
    assert set(cs["id"]) == set(sim.spectra.ids) and (cs["score"] == 1.0).all()
    assert len(found) <= 2 * len(cs)


def test_peak_search_names_natural_background_in_real_spectra():
    nai = read_spe(NAI, calibration=(0.0, 2.022))
    found = set(PeakSearchIdentifier().fit().predict(nai)["nuclide"])
    assert "K-40" in found
    kelp = set(PeakSearchIdentifier().fit().predict(read_spe(KELP))["nuclide"])
    assert {"K-40", "Th-232", "U-238"} <= kelp


def test_default_model_names_natural_background():
    from speclearn.gamma.learned import MLPIdentifier
    model = MLPIdentifier.load()
    kelp = model.decision_function(read_spe(KELP)).iloc[0]
    assert kelp["K-40"] > 0.9 and kelp["Th-232"] > 0.5 and kelp["U-238"] > 0.5
    csi = model.decision_function(read_spe(CSI, calibration=(0.0, 3.0))).iloc[0]
    assert csi["K-40"] > 0.9 and set(csi.nlargest(3).index) == {"K-40", "Th-232", "U-238"}
    assert model.extra_["n_per_detector"] >= 1000 and model.extra_["recipe"].startswith("speclearn.gamma.pretrain")


def test_default_model_reads_the_short_range_nai_background():
    """becquerel's NaI background ends near 2 MeV (no Tl-208 2614 keV line): still K-40, Th-232 and
    U-238, and none of the sources an earlier model named (Y-88) or a peak search confuses (Cs-137, Co-60)."""
    from speclearn.gamma.learned import MLPIdentifier
    model = MLPIdentifier.load()
    spectra = read_spe(NAI, calibration=tuple(auto_calibrate(read_spe(NAI).values()[0])[0]))
    assert spectra.axis[-1] < 2100
    found = set(model.predict(spectra)["nuclide"])
    assert {"K-40", "Th-232", "U-238"} <= found and not found & {"Y-88", "Cs-137", "Co-60", "Na-22"}


# --- CLI -----------------------------------------------------------------------------------------
def test_cli_simulate_identify_train_predict(cli, tmp_path):
    code, _, err = cli("simulate", "gamma", "--mode", "nuclides", "--detector", "labr3", "--n", "6", "--seed", "2",
                       "--out", tmp_path / "sim")
    assert code == 0, err
    labels = pd.read_csv(tmp_path / "sim" / "labels.csv", index_col=0)
    code, _, err = cli("gamma", "identify", "--spectra", tmp_path / "sim" / "spectra.csv", "--method", "peaks",
                       "--out", tmp_path / "ids.csv")
    assert code == 0, err
    ids = pd.read_csv(tmp_path / "ids.csv")
    assert list(ids.columns) == ["id", "nuclide", "score"] and set(ids["id"]) <= set(labels.index)
    code, _, err = cli("gamma", "train", "--spectra", tmp_path / "sim" / "spectra.csv", "--labels",
                       tmp_path / "sim" / "labels.csv", "--epochs", "2", "--out", tmp_path / "model")
    assert code == 0, err
    code, _, err = cli("gamma", "predict", "--model", tmp_path / "model", "--spectra", NAI,
                       "--out", tmp_path / "pred.csv")
    assert code == 0, err and "auto-calibrated" in err.replace("\n", " ")
    assert list(pd.read_csv(tmp_path / "pred.csv").columns) == ["id", "nuclide", "score"]


def test_cli_identify_default_model_states_calibration(cli, tmp_path):
    code, _, err = cli("gamma", "identify", "--spectra", NAI, "--out", tmp_path / "ids.csv")
    assert code == 0, err
    text = " ".join(err.split())
    assert "calibration used" in text and "auto-calibrated" in text and "2.022" in text
    assert {"K-40", "Th-232", "U-238"} <= set(pd.read_csv(tmp_path / "ids.csv")["nuclide"])
    code, _, err = cli("gamma", "identify", "--spectra", DIGIBASE, "--out", tmp_path / "bad.csv")
    assert code == 2 and "invalid energy calibration" in err and "Traceback" not in err


def test_cli_materials_classify_and_composition(cli, tmp_path):
    code, _, err = cli("simulate", "gamma", "--mode", "materials", "--detector", "nai", "--n", "36", "--out",
                       tmp_path / "mat")
    assert code == 0, err
    spectra = tmp_path / "mat" / "spectra.csv"
    code, _, err = cli("gamma", "train", "--spectra", spectra, "--labels", tmp_path / "mat" / "labels.csv",
                       "--method", "knn", "--out", tmp_path / "knn")
    assert code == 0, err
    code, _, err = cli("gamma", "predict", "--model", tmp_path / "knn", "--spectra", spectra, "--out", tmp_path / "c.csv")
    assert code == 0, err
    truth = pd.read_csv(tmp_path / "mat" / "labels.csv", index_col=0)["label"]
    predicted = pd.read_csv(tmp_path / "c.csv", index_col=0)["label"]
    assert (predicted == truth.loc[predicted.index]).mean() > 0.8
    code, _, err = cli("gamma", "train", "--spectra", spectra, "--targets", tmp_path / "mat" / "targets.csv",
                       "--method", "nnls", "--out", tmp_path / "nnls")
    assert code == 0, err
    code, _, err = cli("gamma", "predict", "--model", tmp_path / "nnls", "--spectra", spectra, "--out", tmp_path / "f.csv")
    assert code == 0, err
    fractions = pd.read_csv(tmp_path / "f.csv", index_col=0)
    targets = pd.read_csv(tmp_path / "mat" / "targets.csv", index_col=0)
    assert np.abs(fractions["H"] - targets["H"]).mean() < 0.05


def test_n42_reader(tmp_path):
    path = tmp_path / "s.n42"
    path.write_text(
        '<?xml version="1.0"?><RadInstrumentData xmlns="http://physics.nist.gov/N42/2011/N42">'
        '<EnergyCalibration id="ec"><CoefficientValues>1.5 2.0 0</CoefficientValues></EnergyCalibration>'
        '<RadMeasurement id="m"><RealTimeDuration>PT120.5S</RealTimeDuration>'
        '<Spectrum id="s" energyCalibrationReference="ec"><LiveTimeDuration>PT118S</LiveTimeDuration>'
        '<ChannelData compressionCode="CountedZeroes">5 0 3 7 2</ChannelData></Spectrum></RadMeasurement>'
        '</RadInstrumentData>')
    s = read_spectra(path)
    assert s.values()[0].tolist() == [5, 0, 0, 0, 7, 2]
    assert s.axis[:2].tolist() == [1.5, 3.5] and s.meta["live_time_s"].iloc[0] == 118
    assert s.meta["real_time_s"].iloc[0] == 120.5


def test_cli_predict_refuses_a_model_of_another_system(cli, tmp_path, spectra):
    from speclearn.io import write_spectra
    write_spectra(spectra, tmp_path / "s.csv")
    assert cli("denoise", "train", "--spectra", tmp_path / "s.csv", "--method", "classical", "--out", tmp_path / "d")[0] == 0
    code, _, err = cli("gamma", "predict", "--model", tmp_path / "d", "--spectra", NAI, "--out", tmp_path / "x.csv")
    assert code == 2 and "not a gamma model" in err and not (tmp_path / "x.csv").exists()
