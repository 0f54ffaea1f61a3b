"""Nuclide identification: warm starts, per-nuclide thresholds, the shipped model on real files,
and rerunning only some sections of the gamma benchmark."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from speclearn.core.errors import InputError
from speclearn.gamma.grid import auto_calibrate
from speclearn.gamma.learned import MLPIdentifier
from speclearn.gamma.simulate import simulate_nuclides
from speclearn.io.gamma_formats import read_spe

DATA = Path(__file__).parent / "data" / "gamma"
KELP = DATA / "Mendocino_07-10-13_Acq-10-10-13.Spe"
NAI = DATA / "nai_detector.spe"
CSI = DATA / "sim_spec.spe"
RESULTS = Path(__file__).parents[1] / "benchmarks" / "results" / "gamma.json"


@pytest.fixture(scope="module")
def shipped():
    return MLPIdentifier.load()


def test_thresholds_per_nuclide_and_override(shipped):
    spectra = read_spe(KELP)
    scores = shipped.decision_function(spectra).iloc[0]
    limits = shipped.decision_thresholds()
    assert set(limits) == set(shipped.nuclides_) and all(0.0 < v < 1.0 for v in limits.values())
    found = shipped.predict(spectra)
    assert set(found["nuclide"]) == {n for n in shipped.nuclides_ if scores[n] >= limits[n]}
    everything = shipped.set_params(threshold=0.0).predict(spectra)
    assert len(everything) == len(shipped.nuclides_)
    shipped.set_params(threshold=None)


def test_training_starts_from_a_fitted_identifier_with_the_same_grid():
    sim = simulate_nuclides("nai", 12, seed=3, counts=(1e4, 1e5))
    small = {"n_bins": 64, "hidden": 16, "epochs": 1, "batch_size": 4}
    plain = MLPIdentifier(**small).fit(sim.spectra, sim.truth["labels"])
    frozen = MLPIdentifier(**small, learning_rate=0.0, seed=7).fit(sim.spectra, sim.truth["labels"], init=plain)
    np.testing.assert_allclose(frozen.decision_function(sim.spectra), plain.decision_function(sim.spectra))
    with pytest.raises(InputError, match="init identifier"):
        MLPIdentifier(**{**small, "n_bins": 32}).fit(sim.spectra, sim.truth["labels"], init=plain)
    # a wider network starts from the narrower one's function (Net2WiderNet)
    wider = MLPIdentifier(**{**small, "hidden": 24}, learning_rate=0.0, seed=7).fit(sim.spectra, sim.truth["labels"],
                                                                                  init=plain)
    np.testing.assert_allclose(wider.decision_function(sim.spectra), plain.decision_function(sim.spectra), atol=1e-6)
    with pytest.raises(InputError, match="wider"):
        MLPIdentifier(**{**small, "hidden": 8}).fit(sim.spectra, sim.truth["labels"], init=plain)


def test_line_significance_finds_a_peak_where_it_is_and_nowhere_else():
    from speclearn.core.spectra import Spectra
    from speclearn.gamma.learned import LINE_WINDOWS, line_significance
    axis = np.arange(0.5, 3000.0, 1.0)
    flat = np.full((1, axis.size), 100.0)
    peak = flat + 4000.0 * np.exp(-0.5 * ((axis - 662.0) / 2.0) ** 2) / (2.0 * np.sqrt(2 * np.pi))
    z = line_significance(Spectra(peak, axis, axis_kind="energy", axis_unit="keV"), np.array([662.0, 1500.0, 0.0]))
    assert z.shape == (1, 3, len(LINE_WINDOWS))
    assert z[0, 0, 1] > 20 and z[0, 0, 1] > z[0, 0, 3]  # the window near the peak's width sees it best
    assert np.all(np.abs(z[0, 1]) < 3) and np.all(z[0, 2] == 0)  # no peak; no line
    assert np.all(np.abs(line_significance(Spectra(flat, axis, axis_kind="energy", axis_unit="keV"),
                                           np.array([662.0]))) < 1e-9)


def test_line_check_rescores_the_background_saves_and_is_dropped_by_a_refit(tmp_path):
    sim = simulate_nuclides("nai", 40, seed=4, counts=(1e4, 1e5))
    small = {"n_bins": 64, "hidden": 16, "epochs": 1, "batch_size": 8}
    model = MLPIdentifier(**small).fit(sim.spectra, sim.truth["labels"])
    plain = model.decision_function(sim.spectra)
    model.fit_line_check(sim.spectra, sim.truth["labels"], epochs=2, seed=1)
    checked = model.decision_function(sim.spectra)
    natural = ["K-40", "Th-232", "U-238"]
    assert checked.shape == plain.shape and not np.allclose(checked[natural], plain[natural])
    np.testing.assert_array_equal(checked.drop(columns=natural), plain.drop(columns=natural))  # sources: the MLP's
    again = MLPIdentifier.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(again.decision_function(sim.spectra), checked, rtol=1e-6)
    np.testing.assert_array_equal(again.line_energies_, model.line_energies_)
    assert model.line_energies_[model.nuclides_.index("Cs-137"), 0] == pytest.approx(661.657)
    model.fit(sim.spectra, sim.truth["labels"])
    assert model.check_ is None


#: sources none of the real sample files holds (none of their lines is a peak in any of them)
ABSENT = {"Am-241", "Ba-133", "Co-57", "Eu-152", "I-131", "Ir-192", "Mn-54", "Tc-99m", "U-235", "Y-88"}


def test_shipped_model_names_the_background_of_the_real_spectra(shipped):
    """Kelp (HPGe, lead cave), a NaI background and a simulated CsI background: the natural series
    and none of the absent sources; in particular not U-235 on the NaI background (natural uranium
    and Ra-226 make its 186 keV region) nor Am-241 on the CsI background. The kelp spectrum also
    holds Co-60 (1173.5 and 1332.7 keV peaks, 29 and 35 standard deviations: the cave's or detector's
    contamination) and a 6-sigma peak at 1274.9 keV (Na-22's line, beside the cosmic 511 keV line),
    which the model may name; it names neither on the two background spectra."""
    kelp = shipped.predict(read_spe(KELP)).set_index("nuclide")["score"]
    assert {"K-40", "Th-232", "U-238"} <= set(kelp.index) and not set(kelp.index) & ABSENT
    assert kelp.get("Co-60", 0.0) < kelp["U-238"]
    nai = read_spe(NAI, calibration=tuple(auto_calibrate(read_spe(NAI).values()[0])[0]))
    csi = read_spe(CSI, calibration=tuple(auto_calibrate(read_spe(CSI).values()[0])[0]))
    for spectra in (nai, csi):
        found = set(shipped.predict(spectra)["nuclide"])
        assert {"K-40", "Th-232", "U-238"} <= found
        assert not found & (ABSENT | {"Cs-137", "Co-60", "Na-22"})
    assert shipped.extra_["recipe"].startswith("speclearn.gamma.pretrain")
    assert shipped.extra_["background_only_share"] > 0 and shipped.threshold is None
    assert shipped.extra_["started_from"]["natural_uranium"] and shipped.extra_["radon_daughters_retained"][0] < 1


def test_benchmark_reruns_only_the_sections_asked_for(tmp_path):
    from speclearn.gamma.benchmark import run_benchmark
    shutil.copy(RESULTS, tmp_path / "gamma.json")
    before = json.loads(RESULTS.read_text())
    result = run_benchmark(tmp_path, scale="quick", seed=before["seed"], sections=["real"])
    assert result["sections_rerun"] == ["real"] and result["section_scales"]["real"] == "quick"
    assert {k: v for k, v in result["section_scales"].items() if k != "real"} == \
        {k: v for k, v in before["section_scales"].items() if k != "real"}  # each kept section keeps its scale
    assert {k: v for k, v in result["rows"].items() if k != "real"} == \
        {k: v for k, v in before["rows"].items() if k != "real"}
    assert "Latest run: real only" in (tmp_path / "gamma.md").read_text()
    with pytest.raises(InputError, match="unknown gamma benchmark section"):
        run_benchmark(tmp_path, scale="quick", seed=before["seed"], sections=["nope"])
    with pytest.raises(InputError, match="complete previous"):
        run_benchmark(tmp_path / "empty", scale="quick", seed=before["seed"], sections=["real"])


def test_background_only_spectra_name_only_natural_components():
    for shapes in (False, True):
        sim = simulate_nuclides("nai", 30, seed=1, counts=(1e4, 1e5), background=(1.0, 1.0), scatter_shapes=shapes)
        named = [set(text.split(";")) - {""} for text in sim.truth["labels"]]
        assert all(names <= {"K-40", "U-238", "Th-232"} for names in named)
        assert sum("K-40" in names for names in named) > 20


def test_thresholds_take_the_middle_of_equally_good_values():
    from speclearn.gamma.learned import choose_thresholds
    truth = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 10, dtype=float)
    scores = np.where(truth == 1, 0.92, 0.08)  # column 0: every threshold 0.1-0.9 separates
    scores[:, 1] = np.where(truth[:, 1] == 1, 0.92, 0.3)  # column 1: 0.35-0.9
    assert choose_thresholds(scores, truth, slack=0.0) == pytest.approx([0.5, 0.65])
    scores[0, 1] = 0.6  # one false label at thresholds <= 0.6: within a slack of 2 errors, not of 0
    assert choose_thresholds(scores, truth, slack=0.0)[1] == pytest.approx(0.8)
    assert choose_thresholds(scores, truth, slack=2.0)[1] == pytest.approx(0.65)
