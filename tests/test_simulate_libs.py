"""Physical checks of the LIBS simulator: line positions, Boltzmann and Saha populations, the two
paired instruments, another day's calibration, non-zero-mean noise, ChemCam masking, determinism."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speclearn.core.errors import InputError
from speclearn.io import align_table, read_spectra, read_table_csv
from speclearn.preprocessing import CHEMCAM_MASKED_BANDS, BandMask
from speclearn.simulate.libs import (OXIDES, oxide_atoms, phase_abundances, simulate_chemcam, simulate_libs_map,
                                     simulate_paired)
from speclearn.simulate.libs_lines import BOLTZMANN_EV, line_emissivity

QUIET = dict(continuum=False, dark=False, shot_noise=False, response=False, response_drift=0.0)
FIXED_PLASMA = dict(temperature_shot_sd=0.0, temperature_target_sd=0.0, electron_density_shot_sd=0.0,
                    intensity_shot_sd=0.0, location_heterogeneity=0.0, collection_sd=0.0)


def _composition(**oxides: float) -> pd.DataFrame:
    row = {oxide: oxides.get(oxide, 0.0) for oxide in OXIDES}
    return pd.DataFrame([row], index=pd.Index(["std"], name="target"))


def _isolated_lines(lines: pd.DataFrame, emissivity: np.ndarray, axis: np.ndarray, *, radius: float,
                    contrast: float = 0.003) -> np.ndarray:
    """Indices of lines on the axis with no other line within `radius` nm brighter than `contrast` x it."""
    wavelength = lines["wavelength_nm"].to_numpy()
    inside = np.array([np.any(np.abs(axis - w) < 0.05) for w in wavelength])
    inside &= (wavelength > axis.min() + 1) & (wavelength < axis.max() - 1)
    keep = []
    for i in np.flatnonzero(inside & (emissivity > 0)):
        near = np.abs(wavelength - wavelength[i]) < radius
        near[i] = False
        if not np.any(emissivity[near] > contrast * emissivity[i]):
            keep.append(i)
    return np.array(keep, dtype=int)


def _area(axis: np.ndarray, spectrum: np.ndarray, centre: float, half: float) -> float:
    return float(spectrum[np.abs(axis - centre) <= half].sum())


@pytest.fixture(scope="module")
def calcium():
    """Pure CaO target at a fixed plasma, narrow lines, no instrument noise."""
    def run(temperature: float, **extra):
        knobs = dict(QUIET, **FIXED_PLASMA, stark=False, instrument_fwhm_scale=0.2, temperature=temperature,
                     density_temperature_exponent=0.0, **extra)
        return simulate_chemcam(compositions=_composition(CaO=100.0), n_locations=1, shots_per_location=1,
                                seed=0, **knobs)
    return run


def test_line_positions_match_the_libskit_table():
    sim = simulate_chemcam(compositions=_composition(SiO2=50, Al2O3=15, FeOT=10, MgO=8, CaO=10, Na2O=3, K2O=2,
                                                     TiO2=1), n_locations=1, shots_per_location=1,
                           **QUIET, **FIXED_PLASMA, instrument_fwhm_scale=0.5)
    axis, clean = sim.spectra.axis, sim.clean[0]
    meta = sim.spectra.meta.iloc[0]
    emissivity = line_emissivity(sim.lines, oxide_atoms(sim.compositions), np.array([meta["temperature_K"]]),
                                 np.array([meta["electron_density_m3"]]))[0]
    candidates = _isolated_lines(sim.lines, emissivity, axis, radius=0.8, contrast=0.02)
    strongest = candidates[np.argsort(emissivity[candidates])[::-1][:12]]
    assert len(strongest) >= 8
    elements = set()
    for i in strongest:
        centre = sim.lines["wavelength_nm"].iat[i]
        window = np.flatnonzero(np.abs(axis - centre) < 0.6)
        peak = window[np.argmax(clean[window])]
        y0, y1, y2 = clean[peak - 1:peak + 2]
        found = axis[peak] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) * (axis[peak + 1] - axis[peak])
        assert abs(found - centre) < 0.25 * (axis[peak + 1] - axis[peak]), sim.lines.iloc[i].to_dict()
        elements.add(sim.lines["element"].iat[i])
    assert len(elements) >= 4


def test_boltzmann_populations_give_back_the_temperature(calcium):
    temperature = 8500.0
    sim = calcium(temperature)
    axis, clean, lines = sim.spectra.axis, sim.clean[0], sim.lines
    electron_density = sim.spectra.meta["electron_density_m3"].iat[0]
    assert sim.spectra.meta["temperature_K"].iat[0] == temperature
    emissivity = line_emissivity(lines, oxide_atoms(sim.compositions), np.array([temperature]),
                                 np.array([electron_density]))[0]
    neutral = _isolated_lines(lines, emissivity, axis, radius=0.3)
    neutral = neutral[((lines["element"] == "Ca") & (lines["ion"] == 1)).to_numpy()[neutral]]
    neutral = neutral[np.argsort(emissivity[neutral])[::-1][:8]]
    assert len(neutral) >= 4 and np.ptp(lines["ek_ev"].to_numpy()[neutral]) > 1.0
    area = np.array([_area(axis, clean, lines["wavelength_nm"].iat[i], 0.25) for i in neutral])
    sub = lines.iloc[neutral]
    # two lines: I1/I2 = exp(-(E1-E2)/kT) * (A1 g1 / l1) / (A2 g2 / l2)
    a, b = 0, int(np.argmax(np.abs(sub["ek_ev"].to_numpy() - sub["ek_ev"].iat[0])))
    expected = np.exp(-(sub["ek_ev"].iat[a] - sub["ek_ev"].iat[b]) / (BOLTZMANN_EV * temperature)) \
        * (sub["aki"].iat[a] * sub["gk"].iat[a] / sub["wavelength_nm"].iat[a]) \
        / (sub["aki"].iat[b] * sub["gk"].iat[b] / sub["wavelength_nm"].iat[b])
    assert area[a] / area[b] == pytest.approx(expected, rel=0.03)
    # Boltzmann plot of all of them: slope -1/kT
    y = np.log(area * sub["wavelength_nm"].to_numpy() / (sub["gk"].to_numpy() * sub["aki"].to_numpy()))
    slope = np.polyfit(sub["ek_ev"].to_numpy(), y, 1)[0]
    assert -1 / (BOLTZMANN_EV * slope) == pytest.approx(temperature, rel=0.03)


def test_saha_balance_raises_ion_to_neutral_ratio_with_temperature(calcium):
    ratios = []
    for temperature in (7000.0, 8500.0, 10000.0):
        sim = calcium(temperature)
        axis, clean = sim.spectra.axis, sim.clean[0]
        ratios.append(_area(axis, clean, 393.48, 0.3) / _area(axis, clean, 422.79, 0.3))  # Ca II / Ca I
    assert ratios[0] < ratios[1] < ratios[2]
    assert ratios[2] > 5 * ratios[0]


def test_paired_instruments_agree_on_shared_lines():
    sim = simulate_paired(2, seed=1, n_targets=2, **dict(QUIET, response=True), **FIXED_PLASMA)
    assert sim.primary.ids == sim.secondary.ids
    assert sim.primary.n_channels == 4062 and sim.secondary.n_channels == 3872
    assert 244 < sim.primary.axis[0] < 246 and 406 < sim.primary.axis[-1] < 408
    assert 259 < sim.secondary.axis[0] < 261 and 369 < sim.secondary.axis[-1] < 371
    # remove each instrument's (known) response, then compare on a common axis
    primary = sim.primary.values()[0] / sim.response_primary
    secondary = sim.secondary.values()[0] / sim.response_secondary
    ratio = np.interp(sim.secondary.axis, sim.primary.axis, sim.response_primary) / sim.response_secondary
    assert np.ptp(ratio) > 0.2 * ratio.mean()  # the two responses differ in level and shape
    common = np.arange(262.0, 368.0, 0.01)
    per_nm_p = np.interp(common, sim.primary.axis, primary / np.gradient(sim.primary.axis))
    per_nm_s = np.interp(common, sim.secondary.axis, secondary / np.gradient(sim.secondary.axis))
    peaks = [i for i in range(1, common.size - 1) if per_nm_p[i] == per_nm_p[max(i - 30, 0):i + 30].max()]
    peaks = sorted(peaks, key=lambda i: -per_nm_p[i])[:10]
    heights_p, heights_s = [], []
    for i in peaks:
        window = slice(i - 15, i + 16)
        centroid_p = np.average(common[window], weights=per_nm_p[window])
        centroid_s = np.average(common[window], weights=per_nm_s[window])
        assert abs(centroid_p - centroid_s) < 0.005
        heights_p.append(per_nm_p[window].sum())
        heights_s.append(per_nm_s[window].sum())
    relative_p = np.array(heights_p) / heights_p[0]
    relative_s = np.array(heights_s) / heights_s[0]
    np.testing.assert_allclose(relative_s, relative_p, rtol=0.05)


def _shift_nm(reference: np.ndarray, moved: np.ndarray, step: float, upsample: int = 20) -> float:
    """Shift of `moved` relative to `reference` (nm) from the peak of their upsampled cross-correlation."""
    fine = np.arange(0, reference.size - 1, 1 / upsample)
    a = np.interp(fine, np.arange(reference.size), reference - reference.mean())
    b = np.interp(fine, np.arange(moved.size), moved - moved.mean())
    lags = np.arange(-3 * upsample, 3 * upsample + 1)
    score = [np.dot(a[max(0, -k):a.size - max(0, k)], b[max(0, k):b.size - max(0, -k)]) for k in lags]
    return lags[int(np.argmax(score))] / upsample * step


def test_other_day_shifts_calibration_and_changes_baseline():
    knobs = dict(shot_noise=False)
    today = simulate_paired(3, seed=2, **knobs)
    other = simulate_paired(3, seed=2, other_day=True, **knobs)
    pd.testing.assert_frame_equal(today.primary.meta.drop(columns="other_day"),
                                  other.primary.meta.drop(columns="other_day"))
    shift = other.knobs.calibration_shift_nm
    for day_clean, base_clean, spectra, expected in (
            (other.clean_primary, today.clean_primary, today.primary, -shift),
            (other.clean_secondary, today.clean_secondary, today.secondary, 0.6 * shift)):
        step = float(np.median(np.diff(spectra.axis)))
        measured = _shift_nm(base_clean.sum(axis=0), day_clean.sum(axis=0), step)
        assert measured == pytest.approx(expected, abs=0.2 * step)
    base_today = np.median(today.primary.values(), axis=1)
    base_other = np.median(other.primary.values(), axis=1)
    assert np.all(np.abs(base_other / base_today - 1) > 0.1)


def test_noise_is_non_zero_mean_and_violations_can_be_switched():
    sim = simulate_chemcam(2, 2, 3, seed=1, intensity_shot_sd=0.0)
    np.testing.assert_allclose(sim.noise, sim.spectra.values() - sim.clean)
    mean = sim.noise.mean(axis=0)
    assert mean.mean() > 10 * sim.noise.std() / np.sqrt(sim.noise.size)
    assert (mean > 0).mean() > 0.9
    assert sim.clean.min() >= 0
    meta = sim.spectra.meta
    assert meta["response_drift_rms"].min() > 0
    # the continuum follows the plasma: ~ n_e^2 / sqrt(T), and grows with T (n_e rises with T)
    kramers = np.log(meta["electron_density_m3"] ** 2 / np.sqrt(meta["temperature_K"]))
    assert np.corrcoef(kramers, np.log(meta["continuum_counts"]))[0, 1] > 0.99
    assert np.corrcoef(meta["temperature_K"], meta["continuum_counts"])[0, 1] > 0.5
    frozen = simulate_chemcam(2, 2, 3, seed=1, response_drift=0.0, continuum_follows_plasma=False, shot_noise=False)
    assert frozen.spectra.meta["response_drift_rms"].max() < 1e-12
    assert np.ptp(frozen.spectra.meta["continuum_counts"]) < 1e-6 * frozen.spectra.meta["continuum_counts"].mean()


def test_chemcam_axis_and_masking():
    sim = simulate_chemcam(1, 1, 2, seed=0)
    axis = sim.spectra.axis
    assert sim.spectra.n_channels == 6144 and sim.spectra.axis_kind == "wavelength"
    assert 240 <= axis[0] < 241.5 and 904 < axis[-1] <= 906
    kept = BandMask(CHEMCAM_MASKED_BANDS, axis=axis).fit_transform(sim.spectra.values()).shape[1]
    assert 5300 <= kept <= 5700
    present = set(sim.lines["element"])
    assert {"Si", "Ti", "Al", "Fe", "Mg", "Ca", "Na", "K"} <= present
    assert sim.targets.sum(axis=1).max() <= 100.0


def test_same_seed_same_data():
    a = simulate_chemcam(2, 1, 2, seed=5)
    b = simulate_chemcam(2, 1, 2, seed=5)
    c = simulate_chemcam(2, 1, 2, seed=6)
    np.testing.assert_array_equal(a.spectra.values(), b.spectra.values())
    pd.testing.assert_frame_equal(a.compositions, b.compositions)
    assert not np.allclose(a.spectra.values(), c.spectra.values())


def test_map_mode_phases_and_images():
    sim = simulate_libs_map(12, 14, n_phases=8, seed=0, grains_per_phase=1, shot_noise=False)
    assert sim.phase_maps.shape == (8, 12, 14)
    np.testing.assert_allclose(sim.phase_maps.sum(axis=0), 1.0)
    assert sim.primary.intensity.shape == (12, 14, 4062) and sim.secondary.intensity.shape == (12, 14, 3872)
    purity = sim.phase_maps.max(axis=0)
    assert (purity > 0.9).mean() > 0.2 and (purity < 0.7).mean() > 0.05  # grains with mixed boundaries
    sharp, soft = (phase_abundances(40, 40, 8, boundary_width=w, rng=np.random.default_rng(0)).max(axis=0)
                   for w in (0.05, 3.0))
    assert (sharp > 0.99).mean() > 0.9 and soft.mean() < sharp.mean() - 0.1
    assert len(set(sim.groups)) >= 6
    expected = sim.phase_maps.reshape(8, -1).T @ sim.compositions.to_numpy()
    np.testing.assert_allclose(sim.targets.to_numpy(), expected, rtol=0.2)
    with pytest.raises(InputError):
        simulate_libs_map(4, 4, n_phases=40)


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="unknown LIBS knob"):
        simulate_chemcam(1, 1, 1, bogus=1.0)
    with pytest.raises(InputError, match="must be a finite number"):
        simulate_chemcam(1, 1, 1, response_drift=-0.1)
    with pytest.raises(InputError, match="sum to"):
        simulate_chemcam(compositions=_composition(SiO2=80, CaO=30))
    with pytest.raises(InputError):
        simulate_paired(0)


def test_cli_writes_files_preview_and_refuses_overwrite(cli, tmp_path):
    out = tmp_path / "cc"
    code, _, err = cli("simulate", "libs", "--n", 2, "--locations", 1, "--shots", 2, "--seed", 3, "--out", out)
    assert code == 0, err
    for name in ("spectra.csv", "clean.csv", "noise.csv", "targets.csv", "groups.csv", "metadata.csv",
                 "compositions.csv", "preview.png"):
        assert (out / name).exists(), name
    spectra = read_spectra(out / "spectra.csv")
    targets = align_table(read_table_csv(out / "targets.csv", numeric=True), spectra)
    again = simulate_chemcam(2, 1, 2, seed=3)
    np.testing.assert_allclose(spectra.values(), again.spectra.values(), rtol=1e-9)
    np.testing.assert_allclose(targets.to_numpy(), again.targets.to_numpy(), rtol=1e-9)
    code, _, err = cli("simulate", "libs", "--n", 2, "--out", out)
    assert code == 2 and "already exists" in err
    code, _, err = cli("simulate", "libs", "--knob", "bogus=1", "--out", tmp_path / "x")
    assert code == 2 and "bogus" in err
    code, _, err = cli("simulate", "libs", "--mode", "nope", "--out", tmp_path / "y")
    assert code == 2 and "--mode" in err


def test_cli_map_mode_writes_zarr(cli, tmp_path):
    out = tmp_path / "map"
    code, _, err = cli("simulate", "libs", "--mode", "map", "--n", 4, "--phases", 8, "--other-day", "--out", out)
    assert code == 0, err
    primary = read_spectra(out / "primary.zarr")
    assert primary.is_image and primary.intensity.shape == (4, 4, 4062)
    groups = align_table(read_table_csv(out / "groups.csv"), primary)
    assert len(groups) == 16
    assert np.load(out / "phase_maps.npy").shape == (8, 4, 4)
