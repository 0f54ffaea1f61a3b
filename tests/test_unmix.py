"""PSNMF and baselines on small simulated EDX maps with known truth; streaming, model apply, quantification."""
from __future__ import annotations

import numpy as np
import pytest

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.simulate.edx import DEFAULT_PHASES, phase_spectrum, simulate_edx
from speclearn.unmix import NMF, PCANMF, PSNMF, FixedSpectraUnmixer, apply_unmixing
from speclearn.unmix._base import solver_copies
from speclearn.unmix.psnmf import auto_bin_factor
from speclearn.unmix.evaluation import composition_error, match_components, score_unmixing
from speclearn.unmix.quantify import quantify_spectrum

PHASES = [DEFAULT_PHASES[0], DEFAULT_PHASES[2], DEFAULT_PHASES[3]]  # silicate, molybdenite, ilmenite


def small_map(dose: float, seed: int = 0, n: int = 48):
    return simulate_edx(n, n, 512, phases=PHASES, dose=dose, seed=seed)


@pytest.fixture(scope="module")
def moderate():
    sim = small_map(200)
    return sim, PSNMF(3, bin_factor=4).fit(sim.spectra)


def test_psnmf_recovers_known_spectra_at_moderate_dose(moderate):
    sim, model = moderate
    score = score_unmixing(sim.phase_spectra, sim.abundances, model.components_, model.abundances_)
    assert score["spectral_angle_deg"] < 6.0
    assert score["abundance_rmse"] < 0.08
    assert np.allclose(model.abundances_.sum(axis=0), 1.0)
    assert np.allclose(model.components_.sum(axis=1), 1.0)


def test_psnmf_beats_plain_nmf_at_low_dose():
    sim = small_map(20, seed=1)
    scores = {name: score_unmixing(sim.phase_spectra, sim.abundances, est.components_, est.abundances_)
              for name, est in {"psnmf": PSNMF(3, bin_factor=4).fit(sim.spectra),
                                "nmf": NMF(3, loss="kullback-leibler", max_iter=400).fit(sim.spectra)}.items()}
    assert scores["psnmf"]["abundance_rmse"] < scores["nmf"]["abundance_rmse"]
    assert scores["psnmf"]["spectral_angle_deg"] < scores["nmf"]["spectral_angle_deg"]


def test_auto_bin_factor_grows_as_the_dose_falls():
    assert [auto_bin_factor(dose, 64, 64, 4) for dose in (10, 50, 200, 1000)] == [8, 4, 2, 1]
    assert auto_bin_factor(1, 16, 16, 4) == 4  # capped: keeps >= 16 binned pixels
    sim = small_map(20, seed=1)
    assert PSNMF(3, bin_factor="auto").fit(sim.spectra).bin_factor_ == 6


def test_chunked_step_two_equals_one_block(moderate):
    sim, model = moderate
    chunked = PSNMF(3, bin_factor=4, block_bytes=48 * 512 * 8 * solver_copies(3) * 8).fit(sim.spectra)  # 8 rows/band
    assert np.allclose(chunked.components_, model.components_)
    difference = np.abs(chunked.abundances_ - model.abundances_)  # bands stop iterating independently
    assert difference.max() < 0.02 and difference.mean() < 1e-3


def test_refined_and_smoothed_variants():
    sim = small_map(20, seed=2)
    plain = PSNMF(3, bin_factor=4).fit(sim.spectra)
    smooth = PSNMF(3, bin_factor=4, smoothness=1.0).fit(sim.spectra)
    refined = PSNMF(3, bin_factor=4, refine_spectra=True, refine_passes=5).fit(sim.spectra)
    def roughness(maps):
        return np.abs(np.diff(maps, axis=1)).mean() + np.abs(np.diff(maps, axis=2)).mean()
    assert roughness(smooth.abundances_) < 0.9 * roughness(plain.abundances_)
    assert np.allclose(refined.refined_spectra_.sum(axis=1), 1.0)
    assert np.allclose(refined.components_, plain.components_)  # step 3: spectra always from step 1
    assert np.allclose(refined.abundances_.sum(axis=0), 1.0)


@pytest.mark.parametrize("estimator", [NMF(3, loss="frobenius", max_iter=300), PCANMF(3, max_iter=300)])
def test_baselines_produce_normalised_outputs(moderate, estimator):
    sim, _ = moderate
    estimator.fit(sim.spectra)
    assert estimator.components_.shape == (3, 512) and estimator.abundances_.shape == (3, 48, 48)
    assert np.allclose(estimator.abundances_.sum(axis=0), 1.0)
    score = score_unmixing(sim.phase_spectra, sim.abundances, estimator.components_, estimator.abundances_)
    assert score["spectral_angle_deg"] < 45


def test_saved_components_apply_on_same_axis_and_refuse_another(moderate, tmp_path):
    sim, model = moderate
    FixedSpectraUnmixer().fit(model.components_, sim.spectra.axis_spec()).save(tmp_path / "model")
    again = apply_unmixing(tmp_path / "model", sim.spectra)
    difference = np.abs(again - model.abundances_)  # same optimum from another start, within the solver tolerance
    assert difference.max() < 0.02 and difference.mean() < 1e-3
    shifted = Spectra(sim.spectra.intensity, sim.spectra.axis + 0.005, axis_kind="energy")
    with pytest.raises(InputError, match="axis mismatch"):
        apply_unmixing(tmp_path / "model", shifted)


def test_quantification_recovers_weight_fractions():
    axis = simulate_edx(2, 2, 2048, phases=PHASES).spectra.axis
    for phase in DEFAULT_PHASES:
        found = quantify_spectrum(phase_spectrum(phase, axis), axis, list(phase.composition)).weight_fractions
        assert composition_error(phase.weight_fractions(), found) < 1e-3


def test_quantification_of_psnmf_components(moderate):
    sim, model = moderate
    order = match_components(sim.phase_spectra, model.components_)
    elements = sorted({e for p in PHASES for e in p.composition})
    for phase, spectrum in zip(PHASES, model.components_[order]):
        found = quantify_spectrum(spectrum, sim.spectra.axis, elements).weight_fractions
        assert composition_error(phase.weight_fractions(), found) < 0.05


def test_matching_undoes_a_permutation():
    truth = np.eye(4)[:, :4] + 0.1
    assert match_components(truth, truth[[2, 0, 3, 1]]).tolist() == [1, 3, 0, 2]


@pytest.mark.parametrize("cube, k, message", [
    (np.ones((4, 4)), 2, "3-D"),
    (-np.ones((4, 4, 8)), 2, "negative"),
    (np.full((4, 4, 8), np.nan), 2, "NaN"),
    (np.ones((4, 4, 8)), 9, "channels"),
    (np.ones((2, 2, 30)), 5, "pixels"),
])
def test_bad_cubes_raise_input_error(cube, k, message):
    with pytest.raises(InputError, match=message):
        PSNMF(k, bin_factor=1).fit(cube)


@pytest.mark.parametrize("n_phases", [2, 3, 4])
def test_number_of_components_is_estimated_at_a_usable_dose(n_phases):
    from speclearn.simulate.edx import DEFAULT_PHASES, simulate_edx
    from speclearn.unmix.rank import estimate_components
    sim = simulate_edx(48, 48, 512, phases=DEFAULT_PHASES[:n_phases], dose=200.0, seed=1)
    assert estimate_components(sim.spectra)[0] == n_phases
