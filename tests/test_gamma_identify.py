"""Nuclide identification: contrast features, per-nuclide thresholds, the shipped model on real files,
and rerunning only some sections of the gamma benchmark."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.gamma.grid import auto_calibrate, model_input, sqrt_grid
from speclearn.gamma.learned import MLPIdentifier
from speclearn.gamma.simulate import simulate_nuclides
from speclearn.io.gamma_formats import read_spe

DATA = Path(__file__).parent / "data" / "gamma"
KELP = DATA / "Mendocino_07-10-13_Acq-10-10-13.Spe"
NAI = DATA / "nai_detector.spe"
RESULTS = Path(__file__).parents[1] / "benchmarks" / "results" / "gamma.json"


@pytest.fixture(scope="module")
def shipped():
    return MLPIdentifier.load()


def test_contrast_features_are_in_noise_units_at_any_count_level():
    grid = sqrt_grid(n=256)
    axis = np.linspace(30.0, 3000.0, 1024)
    rng = np.random.default_rng(0)
    spread = []
    for level in (20.0, 2000.0):  # flat continuum, counts per channel
        clean = np.full((1, axis.size), level)
        clean[0, np.abs(axis - 1000.0) < 6.0] += 30 * np.sqrt(level)  # a 30-sigma-per-channel line
        X = model_input(Spectra(rng.poisson(clean).astype(float), axis, axis_kind="energy", axis_unit="keV"),
                        grid, contrast=True)
        assert X.shape == (1, 2 * len(grid) + 1)
        contrast = X[0, len(grid) + 1:]
        quiet = np.abs(grid - 1000.0) > 200.0
        spread.append(contrast[quiet & (grid > 300) & (grid < 2700)].std())
        assert contrast[np.argmin(np.abs(grid - 1000.0))] > 1.5 > 3 * spread[-1]
    assert spread[1] == pytest.approx(spread[0], rel=0.5)  # 100x the counts, the same noise in these units
    short = Spectra(rng.poisson(np.full((1, 400), 50.0)).astype(float), axis[:400], axis_kind="energy", axis_unit="keV")
    X = model_input(short, grid, contrast=True)
    assert np.all(X[0, len(grid) + 1:][grid > axis[399] + 10] == 0.0)


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


def test_contrast_model_starts_from_a_model_without_contrast_features():
    sim = simulate_nuclides("nai", 12, seed=3, counts=(1e4, 1e5))
    small = {"n_bins": 64, "hidden": 16, "epochs": 1, "batch_size": 4}
    plain = MLPIdentifier(**small).fit(sim.spectra, sim.truth["labels"])
    richer = MLPIdentifier(contrast=True, **small).fit(sim.spectra, sim.truth["labels"], init=plain)
    assert richer.net_[0].weight.shape[1] == 2 * 64 + 1
    assert richer.decision_function(sim.spectra).shape == (12, len(richer.nuclides_))
    with pytest.raises(InputError, match="init identifier"):
        MLPIdentifier(**small).fit(sim.spectra, sim.truth["labels"], init=richer)


def test_shipped_model_names_the_background_of_the_real_spectra(shipped):
    """Kelp (HPGe, lead cave) and a NaI background: the natural series. The kelp spectrum also holds
    Co-60 (1173.5 and 1332.7 keV peaks, 25 and 31 standard deviations: the cave's or detector's
    contamination), so naming Co-60 there is right; Na-22 (a 5-sigma peak at 1274.9 keV) stays below
    its threshold. Not yet right: U-235 on the NaI background (its 186 keV region)."""
    kelp = shipped.predict(read_spe(KELP)).set_index("nuclide")["score"]
    assert {"K-40", "Th-232", "U-238"} <= set(kelp.index) and not set(kelp.index) & {"Na-22", "U-235"}
    assert kelp["Co-60"] < kelp["U-238"]
    nai = read_spe(NAI, calibration=tuple(auto_calibrate(read_spe(NAI).values()[0])[0]))
    found = set(shipped.predict(nai)["nuclide"])
    assert {"K-40", "Th-232", "U-238"} <= found
    assert not found & {"Cs-137", "Co-60", "Na-22", "Co-57", "Ba-133", "Tc-99m"}
    assert not shipped.contrast and shipped.extra_["recipe"].startswith("speclearn.gamma.pretrain")
    assert shipped.extra_["background_only_share"] > 0 and shipped.threshold is None


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
