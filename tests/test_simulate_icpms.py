"""Physical checks of the ICP-MS simulator: isotopes, linearity, noise statistics, ground truth, CLI."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import periodictable
import pytest

from speclearn.core.errors import InputError
from speclearn.io import read_spectra, read_table_csv
from speclearn.physics.icpms import available_elements, isotope_pattern, mz_axis, render_peaks, species_template
from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms

SMALL = ICPMSInstrument(mz_min=40.0, mz_max=140.0, n_channels=4000)


def bare(analytes=("Cd",), **changes) -> ICPMSConfig:
    """Only the analytes: no internal standard, interferents, polyatomics, oxides or M2+."""
    settings = dict(analytes=analytes, internal_standard=None, interferents=(), polyatomics=(), oxide_ratio=0.0,
                    doubly_charged_ratio=0.0, instrument=SMALL)
    return ICPMSConfig(**(settings | changes))


def abundance(symbol: str, number: int) -> float:
    return periodictable.elements.symbol(symbol)[number].abundance / 100


def test_at_least_50_elements_have_natural_isotopes():
    elements = available_elements()
    assert len(elements) >= 50
    for symbol in ("Cd", "Pb", "U", "Hg", "In", "Ar"):
        assert symbol in elements
        assert sum(f for _, f in isotope_pattern(symbol)) == pytest.approx(1.0, abs=1e-4)


def test_polyatomic_patterns_combine_atom_isotopes():
    aro = {round(mz): f for mz, f in isotope_pattern("ArO")}
    assert aro[56] == pytest.approx(abundance("Ar", 40) * abundance("O", 16) + abundance("Ar", 38) * abundance("O", 18),
                                    rel=1e-9)
    assert aro[54] == pytest.approx(abundance("Ar", 36) * abundance("O", 18) + abundance("Ar", 38) * abundance("O", 16),
                                    rel=1e-9)
    clo = {round(mz): f for mz, f in isotope_pattern("ClO")}
    assert clo[51] == pytest.approx(abundance("Cl", 35) * abundance("O", 16), rel=1e-9)
    assert clo[53] == pytest.approx(abundance("Cl", 35) * abundance("O", 18) + abundance("Cl", 37) * abundance("O", 16),
                                    rel=1e-9)
    ar2 = {round(mz): f for mz, f in isotope_pattern("Ar2")}
    assert ar2[80] == pytest.approx(abundance("Ar", 40) ** 2, rel=1e-9)
    assert ar2[76] == pytest.approx(2 * abundance("Ar", 36) * abundance("Ar", 40) + abundance("Ar", 38) ** 2, rel=1e-9)
    electron = 5.48579909065e-4
    mz56 = [mz for mz, _ in isotope_pattern("ArO") if round(mz) == 56][0]
    assert mz56 == pytest.approx(periodictable.Ar[40].mass + periodictable.O[16].mass - electron, abs=1e-6)
    ba2 = dict((round(2 * mz), mz) for mz, _ in isotope_pattern("Ba", charge=2))
    assert ba2[138] == pytest.approx((periodictable.Ba[138].mass - 2 * electron) / 2, abs=1e-6)


def test_bad_species_and_settings_raise_input_error():
    with pytest.raises(InputError, match="unknown element"):
        ICPMSConfig(analytes=("Cd", "Xx"))
    with pytest.raises(InputError, match="no natural isotopes"):
        ICPMSConfig(analytes=("Tc",))
    with pytest.raises(InputError, match="listed twice"):
        ICPMSConfig(analytes=("Cd", "In"))
    with pytest.raises(InputError, match="shape"):
        ICPMSInstrument(shape="lorentz")
    with pytest.raises(InputError, match="mz_min"):
        ICPMSInstrument(mz_min=300.0)
    with pytest.raises(InputError, match=">= 1"):
        simulate_icpms(0)


def test_template_normalisation():
    instrument = ICPMSInstrument(tail_fraction=0.02)
    axis = np.linspace(105.0, 125.0, 20001)
    template = species_template("In", axis, instrument)
    core_only = species_template("In", axis, replace(instrument, tail_fraction=0.0))
    assert core_only.max() == pytest.approx(abundance("In", 115), rel=1e-4)
    assert template.max() > core_only.max()  # the low-mass tail adds under the core
    expected = sum(f * instrument.core_area(instrument.fwhm(mz)) for mz, f in isotope_pattern("In")) * 1.02
    assert np.trapezoid(template, axis) == pytest.approx(expected, rel=2e-3)
    voigt = replace(instrument, shape="pseudo_voigt", eta=0.3, tail_fraction=0.0)
    expected = sum(f * voigt.core_area(voigt.fwhm(mz)) for mz, f in isotope_pattern("In"))
    wide = np.linspace(95.0, 135.0, 40001)
    assert np.trapezoid(species_template("In", wide, voigt), wide) == pytest.approx(expected, rel=1e-2)
    shifted = species_template("In", axis, instrument, mass_shift=0.1)
    assert axis[shifted.argmax()] - axis[template.argmax()] == pytest.approx(0.1, abs=2e-3)


@pytest.mark.parametrize("symbol", ["Cd", "Pb"])
def test_isotope_ratios_recovered_from_clean_spectra(symbol):
    instrument = ICPMSInstrument(mz_min=100.0, mz_max=215.0, n_channels=6000)
    sim = simulate_icpms(3, seed=4, config=bare((symbol,), instrument=instrument, background_constant=0.0,
                                                background_slope=0.0))
    for row in range(3):
        bias = sim.params["mass_bias"].iloc[row]
        shift = sim.params["mass_shift"].iloc[row]
        pattern = isotope_pattern(symbol)
        heights = np.array([np.interp(mz + shift, sim.spectra.axis, sim.clean[row]) for mz, _ in pattern])
        corrected = heights / instrument.transmission(np.array([mz for mz, _ in pattern]), bias)
        fractions = corrected / corrected.sum()
        np.testing.assert_allclose(fractions, [f for _, f in pattern], rtol=5e-3)


def test_peak_areas_scale_linearly_with_concentration():
    sim = simulate_icpms(25, seed=1, config=bare(("Cd", "Pb"), background_constant=0.0, background_slope=0.0,
                                                 sensitivity_drift_sd=0.0, mass_bias_sd=0.0, mass_shift_sd=0.0,
                                                 instrument=replace(SMALL, mz_max=215.0, n_channels=7000)))
    axis = sim.spectra.axis
    for symbol, window in (("Cd", (113.3, 114.5)), ("Pb", (207.4, 208.6))):
        inside = (axis > window[0]) & (axis < window[1])
        area = sim.clean[:, inside].sum(axis=1)
        ratio = area / sim.targets[symbol].to_numpy()
        assert sim.targets[symbol].max() / sim.targets[symbol].min() > 10
        np.testing.assert_allclose(ratio, ratio.mean(), rtol=1e-5)


def test_clean_spectrum_is_the_sum_of_the_listed_peaks():
    config = ICPMSConfig(instrument=SMALL, background_constant=0.0, background_slope=0.0)
    sim = simulate_icpms(4, seed=2, config=config)
    for row, sid in enumerate(sim.spectra.ids):
        peaks = sim.peaks[sim.peaks["id"] == sid]
        rebuilt = peaks["amplitude"].to_numpy() @ render_peaks(sim.spectra.axis, peaks["centre"].to_numpy(),
                                                               peaks["width"].to_numpy(), config.instrument)
        np.testing.assert_allclose(sim.clean[row], rebuilt, rtol=1e-3, atol=1e-3 * sim.clean[row].max())
    kinds = set(sim.peaks["kind"])
    assert {"analyte", "internal_standard", "interferent", "oxide", "doubly_charged", "polyatomic"} <= kinds
    # isobars overlap: 113In and 113Cd both listed within the resolution
    first = sim.peaks[sim.peaks["id"] == sim.spectra.ids[0]]
    at113 = first[first["mass_number"] == 113]
    assert {"Cd", "In"} <= set(at113["species"])


def test_oxide_and_doubly_charged_ratios_follow_the_parameters():
    config = bare(("Ba", "Cd"), instrument=ICPMSInstrument(), oxide_ratio=0.02, doubly_charged_ratio=0.03)
    sim = simulate_icpms(2, seed=3, config=config)
    inst = config.instrument
    first = sim.peaks[sim.peaks["id"] == sim.spectra.ids[0]]
    bias = sim.params["mass_bias"].iloc[0]
    corrected = first["amplitude"] / inst.transmission(first["centre"] - sim.params["mass_shift"].iloc[0], bias)
    total = corrected.groupby([first["species"].astype(str), first["charge"]]).sum()
    mo_fraction = sum(f for mz, f in isotope_pattern("BaO") if mz <= inst.mz_max + 1)
    assert total[("BaO", 1)] / total[("Ba", 1)] == pytest.approx(sim.params["oxide_ratio"].iloc[0] * mo_fraction,
                                                                rel=1e-6)
    assert total[("Ba", 2)] / total[("Ba", 1)] == pytest.approx(sim.params["doubly_charged_ratio"].iloc[0], rel=1e-6)
    assert ("Cd", 2) not in total.index  # second ionisation energy 16.9 eV > Ar: no Cd2+


def test_poisson_noise_variance_equals_mean():
    sim = simulate_icpms(30, seed=5, config=ICPMSConfig(instrument=SMALL, gaussian_noise_rel=0.0))
    residual = sim.spectra.values() - sim.clean
    assert np.all(sim.spectra.values() == np.round(sim.spectra.values()))  # counts
    for low, high in ((0.05, 0.5), (2.0, 20.0), (200.0, 5000.0)):
        chosen = (sim.clean > low) & (sim.clean < high)
        assert chosen.sum() > 2000
        assert np.mean(residual[chosen]) == pytest.approx(0.0, abs=4 * np.sqrt(sim.clean[chosen].mean() / chosen.sum()))
        assert np.mean(residual[chosen] ** 2) / np.mean(sim.clean[chosen]) == pytest.approx(1.0, abs=0.06)
    noisy = simulate_icpms(30, seed=5, config=ICPMSConfig(instrument=SMALL, gaussian_noise_rel=0.05))
    high = noisy.clean > 1000
    excess = np.mean((noisy.spectra.values() - noisy.clean)[high] ** 2) / np.mean(noisy.clean[high])
    assert excess > 2.0  # flicker noise (0.05 * signal)^2 dominates at high counts


def test_deterministic_for_a_seed_and_independent_of_threads():
    config = ICPMSConfig(instrument=SMALL)
    a = simulate_icpms(12, seed=7, config=config, workers=1)
    b = simulate_icpms(12, seed=7, config=config, workers=2)
    c = simulate_icpms(12, seed=8, config=config)
    np.testing.assert_array_equal(a.spectra.values(), b.spectra.values())
    pd.testing.assert_frame_equal(a.peaks, b.peaks)
    pd.testing.assert_frame_equal(a.params, b.params)
    assert not np.array_equal(a.spectra.values(), c.spectra.values())
    assert not a.targets.equals(c.targets)


def test_range_factor_widens_concentrations_and_levels_are_realistic():
    config = bare(("Cd", "Pb"), instrument=replace(SMALL, n_channels=200))
    narrow = simulate_icpms(400, seed=0, config=config)
    wide = simulate_icpms(400, seed=0, config=config, concentration_range_factor=2.0)
    assert np.log(wide.targets).std().mean() > 1.7 * np.log(narrow.targets).std().mean()
    full = ICPMSConfig()
    for symbol in full.analytes:
        assert 1e3 < full.element_sensitivity(symbol) < 1e6  # cps per µg/L
    assert full.element_sensitivity("Hg") < full.element_sensitivity("Cd")  # Hg: 10.4 eV, poorly ionised


def test_cli_writes_files_that_read_back(cli, tmp_path):
    out = tmp_path / "icpms"
    code, _, err = cli("simulate", "icpms", "--n", 6, "--seed", 3, "--out", out, "--channels", 1500,
                       "--analytes", "As,Cd,Pb")
    assert code == 0, err
    for name in ("spectra.csv", "clean.csv", "targets.csv", "peaks.csv", "params.csv", "truth.json", "preview.png"):
        assert (out / name).exists(), name
    spectra = read_spectra(out / "spectra.csv")
    clean = read_spectra(out / "clean.csv")
    assert spectra.axis_kind == "mz" and spectra.n_spectra == 6 and spectra.n_channels == 1500
    np.testing.assert_allclose(spectra.axis, mz_axis(ICPMSInstrument(n_channels=1500)))
    targets = read_table_csv(out / "targets.csv", numeric=True)
    assert list(targets.columns) == ["As", "Cd", "Pb"] and list(targets.index) == spectra.ids
    params = read_table_csv(out / "params.csv", numeric=True)
    assert {"mass_shift", "sensitivity_drift", "is_recovery"} <= set(params.columns)
    peaks = pd.read_csv(out / "peaks.csv")
    assert set(peaks["id"]) == set(spectra.ids)
    truth = json.loads((out / "truth.json").read_text())
    assert truth["seed"] == 3 and truth["config"]["analytes"] == ["As", "Cd", "Pb"]
    again = simulate_icpms(6, seed=3, config=ICPMSConfig(analytes=("As", "Cd", "Pb"),
                                                         instrument=ICPMSInstrument(n_channels=1500)))
    np.testing.assert_allclose(spectra.values(), again.spectra.values(), rtol=1e-6)
    np.testing.assert_allclose(clean.values(), again.clean, rtol=1e-6)

    code, _, err = cli("simulate", "icpms", "--n", 2, "--out", out, "--channels", 500)
    assert code == 2 and "--overwrite" in err
    code, _, err = cli("simulate", "icpms", "--n", 2, "--out", tmp_path / "x", "--analytes", "Cd,Qq")
    assert code == 2 and "unknown element 'Qq'" in err
    code, _, err = cli("simulate", "icpms", "--n", 0, "--out", tmp_path / "y")
    assert code == 2 and ">= 1" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_dead_time_compresses_high_count_rates():
    """A non-paralysable counter reads n / (1 + n tau): the loss grows with the count rate."""
    base = ICPMSInstrument(mz_min=100.0, mz_max=130.0, n_channels=600)
    ideal = simulate_icpms(3, seed=5, config=ICPMSConfig(analytes=("Cd",), interferents=(), instrument=base))
    slow = ICPMSInstrument(**{**base.__dict__, "dead_time": 50e-9})
    blind = simulate_icpms(3, seed=5, config=ICPMSConfig(analytes=("Cd",), interferents=(), instrument=slow))
    rate = ideal.clean / base.dwell_time
    np.testing.assert_allclose(blind.clean, ideal.clean / (1 + rate * 50e-9), rtol=1e-4)
    assert (blind.clean.max(axis=1) < 0.97 * ideal.clean.max(axis=1)).all()  # ~1e6 cps at the In peak: -5 %
    with pytest.raises(InputError, match="dead_time"):
        ICPMSInstrument(dead_time=-1e-9)
