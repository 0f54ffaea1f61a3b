"""EDX simulator: line positions from xraydb, detector resolution, Poisson noise, ground truth, real spectra."""
from __future__ import annotations

import os

import numpy as np
import pytest
import xraydb

from speclearn.io import read_spectra
from speclearn.physics.edx import fwhm_kev
from speclearn.simulate.edx import LAYOUTS, EDXPhase, energy_axis, phase_spectrum, simulate_edx, stream_edx_to_zarr

AXIS = energy_axis(2048)  # 0.1 .. 20.57 keV, 10 eV channels


def ka_energy(element: str) -> float:
    """Intensity-weighted Ka1/Ka2 energy from xraydb, keV."""
    lines = xraydb.xray_lines(element, "K")
    ka = [lines[name] for name in ("Ka1", "Ka2")]
    return sum(l.energy * l.intensity for l in ka) / sum(l.intensity for l in ka) / 1e3


@pytest.mark.parametrize("element", ["Fe", "Cu"])
def test_ka_peak_sits_on_xraydb_energy(element):
    spectrum = phase_spectrum(EDXPhase(element, {element: 1.0}), AXIS, continuum=0.0)
    window = (AXIS > ka_energy(element) - 0.3) & (AXIS < ka_energy(element) + 0.3)
    centroid = np.sum(AXIS[window] * spectrum[window]) / spectrum[window].sum()
    assert abs(centroid - ka_energy(element)) < 0.010  # within one channel
    assert abs(AXIS[window][np.argmax(spectrum[window])] - ka_energy(element)) <= 0.010


def measured_fwhm(axis: np.ndarray, spectrum: np.ndarray, centre: float) -> float:
    window = (axis > centre - 0.4) & (axis < centre + 0.4)
    x, y = axis[window], spectrum[window]
    above = x[y >= y.max() / 2]
    return float(above[-1] - above[0])


def test_peak_width_grows_like_sqrt_energy():
    fine = np.arange(0.5, 12.0, 0.001)
    widths = {}
    for element in ("Al", "Ti", "Cu"):
        spectrum = phase_spectrum(EDXPhase(element, {element: 1.0}), fine, continuum=0.0)
        widths[element] = measured_fwhm(fine, spectrum, ka_energy(element))
        assert widths[element] == pytest.approx(float(fwhm_kev(ka_energy(element))), rel=0.05)
    assert widths["Al"] < widths["Ti"] < widths["Cu"]
    slope = (widths["Cu"] ** 2 - widths["Al"] ** 2) / (ka_energy("Cu") - ka_energy("Al"))
    assert slope * 1e3 == pytest.approx(2.5, rel=0.15)  # FWHM^2 linear in E: Fano model, eV units


def test_poisson_noise_variance_equals_mean():
    sim = simulate_edx(48, 48, 512, phases=[EDXPhase("steel", {"Fe": 0.7, "Cr": 0.2, "Ni": 0.1})], dose=400, seed=3)
    counts = sim.spectra.values().astype(float)
    mean, variance = counts.mean(axis=0), counts.var(axis=0, ddof=1)
    busy = mean > 2
    assert busy.sum() > 20
    assert np.median(variance[busy] / mean[busy]) == pytest.approx(1.0, abs=0.08)
    assert np.allclose(mean, 400 * sim.phase_spectra[0], rtol=0.2, atol=0.2)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_abundances_sum_to_one_and_dose_is_respected(layout):
    sim = simulate_edx(40, 40, 256, layout=layout, dose=150, thickness_variation=0.3, seed=1)
    assert sim.abundances.min() >= 0
    assert np.allclose(sim.abundances.sum(axis=0), 1.0)
    assert np.allclose(sim.phase_spectra.sum(axis=1), 1.0)
    assert sim.spectra.values().sum(axis=1).mean() == pytest.approx(150, rel=0.02)
    assert sim.thickness.std() > 0.1 and sim.thickness.mean() == pytest.approx(1.0)


def test_same_seed_same_data_and_streaming_matches_memory(tmp_path):
    options = dict(dose=50, seed=7, chunk_rows=5)
    first, again = simulate_edx(16, 12, 128, **options), simulate_edx(16, 12, 128, **options)
    other = simulate_edx(16, 12, 128, dose=50, seed=8, chunk_rows=5)
    assert np.array_equal(first.spectra.intensity, again.spectra.intensity)
    assert not np.array_equal(first.spectra.intensity, other.spectra.intensity)
    stream_edx_to_zarr(tmp_path / "map.zarr", 16, 12, 128, **options)
    stored = read_spectra(tmp_path / "map.zarr")
    assert stored.axis_kind == "energy" and np.allclose(stored.axis, first.spectra.axis)
    assert np.array_equal(stored.values(), first.spectra.values())


REAL_SPECTRA = {
    # file: (composition used for the simulation, beam kV, FWHM at Mn Ka from the file's metadata, lines)
    "EDS_TEM_FePt_nanoparticles.hspy": ({"Fe": 0.2, "Pt": 0.6, "Cu": 0.2}, 200.0, 0.1333,
                                        {"Fe Ka": 6.40, "Cu Ka": 8.04, "Pt Ma": 2.07, "Pt La": 9.44, "Pt Lb1": 11.07}),
    "EDS_SEM_TM002.hspy": ({"Al": 0.4, "Cu": 0.2, "Mn": 0.2, "Zr": 0.2, "C": 0.1}, 10.0, 0.130,
                           {"Mn Ka": 5.90, "Mn Kb": 6.49, "Al Ka": 1.49, "Zr La": 2.04, "Cu La": 0.93, "Mn La": 0.64}),
}


@pytest.mark.parametrize("name", REAL_SPECTRA)
def test_lines_of_real_spectra_sit_where_the_simulator_puts_them(name):
    """exspy's example spectra: FePt nanoparticles on a Cu grid (TEM, 200 kV) and the BAM EDS-TM002
    reference (SEM, 10 kV; Al, C, Cu, Mn, Zr). The maximum of each listed line in the real spectrum
    must be within one channel of the simulated spectrum's maximum on the same axis."""
    exspy = pytest.importorskip("exspy")
    real = read_spectra(os.path.join(os.path.dirname(exspy.__file__), "data", name))
    composition, beam_kv, fwhm, lines = REAL_SPECTRA[name]
    axis, counts = real.axis, real.values()[0]
    simulated = phase_spectrum(EDXPhase(name, composition), axis, beam_kv=beam_kv, detector_fwhm_mnka=fwhm)
    step = axis[1] - axis[0]
    for line, energy in lines.items():
        window = np.abs(axis - energy) < 6 * step
        real_peak = axis[window][np.argmax(counts[window])]
        simulated_peak = axis[window][np.argmax(simulated[window])]
        assert abs(real_peak - simulated_peak) <= step + 1e-9, line


def test_cli_writes_map_truth_and_preview(cli, tmp_path):
    code, _, err = cli("simulate", "edx", "--n", 20, "--channels", 256, "--dose", 80, "--seed", 2, "--out", tmp_path / "sim")
    assert code == 0, err
    for name in ("map.zarr", "phase_spectra.npy", "abundances.npy", "thickness.npy", "truth.json", "preview.png"):
        assert (tmp_path / "sim" / name).exists(), name
    cube = read_spectra(tmp_path / "sim" / "map.zarr")
    assert cube.intensity.shape == (20, 20, 256)
    assert np.array_equal(cube.values(), simulate_edx(20, 20, 256, dose=80, seed=2).spectra.values())
    code, _, err = cli("simulate", "edx", "--n", 20, "--channels", 256, "--out", tmp_path / "sim")
    assert code == 2 and "exists" in err


@pytest.mark.parametrize("args", [("--dose", -1), ("--layout", "spiral"), ("--n", 0)])
def test_cli_bad_input_exit_2(cli, tmp_path, args):
    code, _, err = cli("simulate", "edx", "--channels", 64, "--out", tmp_path / "x", *args)
    assert code == 2 and err.startswith("speclearn: error:")


def background_subtracted_area(axis: np.ndarray, counts: np.ndarray, energy: float, half: float = 0.12) -> float:
    """Counts within +-half keV of a line above a straight background from 0.1 keV on either side."""
    window = np.abs(axis - energy) < half
    left, right = (axis > energy - half - 0.1) & (axis < energy - half), (axis > energy + half) & (axis < energy + half + 0.1)
    background = np.interp(axis[window], [axis[left].mean(), axis[right].mean()], [counts[left].mean(), counts[right].mean()])
    return float((counts[window] - background).sum())


@pytest.mark.parametrize("name, strong, weak", [("EDS_TEM_FePt_nanoparticles.hspy", 8.04, 8.90),   # Cu Kb / Ka
                                                ("EDS_TEM_FePt_nanoparticles.hspy", 9.44, 11.07),  # Pt Lb1 / La
                                                ("EDS_SEM_TM002.hspy", 5.90, 6.49)])               # Mn Kb / Ka
def test_relative_line_heights_of_one_element_match_real_spectra(name, strong, weak):
    """Within one element the ratio of two lines does not depend on the unknown composition; the
    simulator's (xraydb branching x fluorescence yield x Bethe cross-section x efficiency) must
    reproduce the measured ratio within 15 %."""
    exspy = pytest.importorskip("exspy")
    real = read_spectra(os.path.join(os.path.dirname(exspy.__file__), "data", name))
    composition, beam_kv, fwhm, _ = REAL_SPECTRA[name]
    simulated = phase_spectrum(EDXPhase(name, composition), real.axis, beam_kv=beam_kv, detector_fwhm_mnka=fwhm)
    ratios = [background_subtracted_area(real.axis, y, weak) / background_subtracted_area(real.axis, y, strong)
              for y in (real.values()[0], simulated)]
    assert ratios[1] == pytest.approx(ratios[0], rel=0.15)
