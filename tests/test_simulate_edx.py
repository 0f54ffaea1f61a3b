"""EDX simulator: line positions from xraydb, detector resolution, Poisson noise, ground truth, real spectra."""
from __future__ import annotations

import os

import numpy as np
import pytest
import xraydb

from speclearn.io import read_spectra
from speclearn.simulate.edx import (LAYOUTS, EDXPhase, energy_axis, fwhm_kev, phase_spectrum, simulate_edx,
                                    stream_edx_to_zarr)

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


def test_lines_of_real_fept_spectrum_sit_where_the_simulator_puts_them():
    """exspy's FePt nanoparticle spectrum (Tecnai Osiris, 200 kV, 133 eV at Mn Ka, Cu grid): the
    maxima of Fe Ka, Cu Ka, Pt Ma, Pt La and Pt Lb1 must be within one channel (20 eV) of the
    simulated spectrum's maxima on the same axis."""
    exspy = pytest.importorskip("exspy")
    real = read_spectra(os.path.join(os.path.dirname(exspy.__file__), "data", "EDS_TEM_FePt_nanoparticles.hspy"))
    axis, counts = real.axis, real.values()[0]
    simulated = phase_spectrum(EDXPhase("FePt on Cu", {"Fe": 0.2, "Pt": 0.6, "Cu": 0.2}), axis,
                               detector_fwhm_mnka=0.1333)
    step = axis[1] - axis[0]
    for name, energy in {"Fe Ka": 6.40, "Cu Ka": 8.04, "Pt Ma": 2.07, "Pt La": 9.44, "Pt Lb1": 11.07}.items():
        window = np.abs(axis - energy) < 0.12
        real_peak = axis[window][np.argmax(counts[window])]
        simulated_peak = axis[window][np.argmax(simulated[window])]
        assert abs(real_peak - simulated_peak) <= step + 1e-9, name


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
