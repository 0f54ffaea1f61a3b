"""MRS system: readers/writers, simulator truth, registration, LCM + CRLB, DL quantifier, CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from speclearn.cli.main import main
from speclearn.core.errors import InputError
from speclearn.mrs.basis import combine, load_basis
from speclearn.mrs.data import MRSData, first_order_phase, ppm_axis, ppm_slice, shift_phase, to_spectrum
from speclearn.mrs.evaluation import offset_crlb, regression_slope
from speclearn.mrs.io import read_mrs, write_jmrui, write_mrs, write_text
from speclearn.mrs.lcm import LinearCombinationFit
from speclearn.mrs.registration import SpectralRegistration, register
from speclearn.mrs.simulate import MRSSimConfig, coil_scan, simulate_mrs

QUIET = dict(eddy_rad=0.0, water_residual=(0.0, 0.0), lipid_fraction=0.0, baseline=0.0, corrupted_fraction=0.0)


@pytest.fixture(scope="module")
def basis():
    return load_basis()


@pytest.fixture(scope="module")
def small(basis):
    return simulate_mrs(3, seed=4, basis=basis, config=MRSSimConfig(transients=4, snr=(40.0, 40.0)))


def _data(n=3, points=64):
    rng = np.random.default_rng(0)
    fid = rng.normal(size=(n, points)) + 1j * rng.normal(size=(n, points))
    return MRSData(fid, 2.5e-4, 123.2, 30.0, ids=[f"a{i}" for i in range(n)], scans=(["x", "x"] + ["y"] * n)[:n])


# --- I/O ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["d.npz", "d.nii", "d.nii.gz"])
def test_round_trip_npz_and_nifti(tmp_path, name):
    data = _data()
    write_mrs(data, tmp_path / name)
    back = read_mrs(tmp_path / name)
    np.testing.assert_allclose(back.fid, data.fid, rtol=1e-6, atol=1e-6)
    assert back.dwell_time_s == pytest.approx(data.dwell_time_s)
    assert back.central_frequency_mhz == pytest.approx(123.2)
    assert back.te_ms == pytest.approx(30.0)
    assert back.scans == data.scans and back.ids == data.ids


def test_first_order_phase_turns_the_spectrum_without_wrapping_the_fid():
    """A first-order phase is a time shift: the decayed end of the FID stays decayed (a circular shift
    would move the FID's first points there), and each line turns by phase0 + phase1 (ppm - 4.65)."""
    dwell, cf, points = 0.25e-3, 123.2, 2048
    t = np.arange(points) * dwell
    ppm = 2.0
    fid = np.exp(2j * np.pi * (ppm - 4.65) * cf * t - 20.0 * t)[None]
    turned = first_order_phase(fid, dwell, cf, 10.0, 3.0)
    assert np.abs(turned[0, -50:]).max() < 1e-3 * np.abs(turned[0, 0])
    peak = np.argmin(np.abs(ppm_axis(points, dwell, cf) - ppm))
    change = np.angle(to_spectrum(turned)[0, peak] / to_spectrum(fid)[0, peak], deg=True)
    assert abs(change - (10.0 + 3.0 * (ppm - 4.65))) < 1.0


@pytest.mark.parametrize("name", ["c.nii.gz", "c.npz"])
def test_dimension_tags_survive_a_round_trip(tmp_path, name):
    data = MRSData(_data(4).fid, 2.5e-4, 123.2, dims=[("DIM_COIL", 2), ("DIM_DYN", 2)])
    write_mrs(data, tmp_path / name)
    back = read_mrs(tmp_path / name)
    assert back.dims == [("DIM_COIL", 2), ("DIM_DYN", 2)]
    np.testing.assert_allclose(back.fid, data.fid, rtol=1e-6, atol=1e-6)


def test_round_trip_jmrui_and_text(tmp_path):
    data = _data(2)
    write_jmrui(data, tmp_path / "j.txt")
    write_text(data, tmp_path / "p.txt")
    for name in ("j.txt", "p.txt"):
        back = read_mrs(tmp_path / name)
        np.testing.assert_allclose(back.fid, data.fid, rtol=1e-6)
        assert back.dwell_time_s == pytest.approx(2.5e-4) and back.central_frequency_mhz == pytest.approx(123.2)


def test_lcmodel_raw(tmp_path):
    fid = _data(1).fid[0]
    body = "\n".join(f"{v.real:.7e} {v.imag:.7e}" for v in fid)
    (tmp_path / "a.RAW").write_text(f" $SEQPAR\n ECHOT = 30.0\n HZPPPM = 1.232e+02\n DELTAT = 2.5e-04\n $END\n"
                                    f" $NMID\n ID='x', FMTDAT='(2E15.6)'\n TRAMP=1.0\n VOLUME=1.0\n $END\n{body}\n")
    back = read_mrs(tmp_path / "a.RAW")
    np.testing.assert_allclose(back.fid[0], fid, rtol=1e-6)
    assert back.te_ms == 30.0 and back.central_frequency_mhz == pytest.approx(123.2)
    (tmp_path / "b.RAW").write_text(f" $SEQPAR\n HZPPPM = 123.2\n $END\n{body}\n")
    with pytest.raises(InputError, match="b.RAW.*dwell"):
        read_mrs(tmp_path / "b.RAW")


def test_bad_inputs_name_file_and_problem(tmp_path):
    np.savez(tmp_path / "nofreq.npz", fid=np.ones((1, 32), complex), dwell_time_s=2.5e-4)
    np.savez(tmp_path / "real.npz", fid=np.ones((1, 32)), dwell_time_s=2.5e-4, central_frequency_mhz=123.2)
    (tmp_path / "odd.txt").write_text("# dwell_time_s = 0.00025\n# central_frequency_mhz = 123.2\n1 2 3\n")
    (tmp_path / "nodwell.txt").write_text("1 2\n3 4\n")
    (tmp_path / "j.txt").write_text("jMRUI Data Textfile\nPointsInDataset: 2\n")
    (tmp_path / "x.nii").write_bytes(b"not nifti")
    cases = {"nofreq.npz": "central_frequency_mhz", "real.npz": "complex", "odd.txt": "even number",
             "nodwell.txt": "dwell_time_s", "j.txt": "Signal", "x.nii": "NIfTI", "x.spa": "unknown MRS file type"}
    (tmp_path / "x.spa").write_text("")
    for name, problem in cases.items():
        with pytest.raises(InputError, match=problem) as err:
            read_mrs(tmp_path / name)
        assert name in str(err.value)
    with pytest.raises(InputError, match="non-finite"):
        MRSData(np.full((1, 32), np.nan, complex), 2.5e-4, 123.2)


def test_headerless_text_basis_and_spectra_take_the_acquisition_from_the_command_line(tmp_path, basis, small):
    """A folder of plain real/imag text files (as the ISMRM 2016 challenge distributes its basis) and a
    headerless text spectrum: refused with the option to give, and with --dwell-time and
    --central-frequency fitted exactly as the shipped basis fits the same spectrum from an NPZ."""
    folder = tmp_path / "basis"
    folder.mkdir()
    for name, fid in zip(basis.names, basis.fid):
        np.savetxt(folder / f"{name}.txt", np.column_stack([fid.real, fid.imag]))
    with pytest.raises(InputError, match="Ace.txt.*--dwell-time"):
        load_basis(folder)
    loaded = load_basis(folder, dwell_time_s=basis.dwell_time_s, central_frequency_mhz=basis.central_frequency_mhz)
    assert loaded.names == basis.names
    np.testing.assert_allclose(loaded.fid, basis.fid, atol=1e-6)

    scan = small.spectra.select([0])
    np.savetxt(tmp_path / "scan.txt", np.column_stack([scan.fid[0].real, scan.fid[0].imag]))
    write_mrs(scan, tmp_path / "scan.npz")
    command = ["mrs", "fit", "--spectra", str(tmp_path / "scan.txt"), "--basis", str(folder), "--out",
               str(tmp_path / "text.csv")]
    assert main(command) == 2 and not (tmp_path / "text.csv").exists()
    acquisition = ["--dwell-time", repr(basis.dwell_time_s), "--central-frequency", repr(basis.central_frequency_mhz)]
    assert main(command + acquisition) == 0
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "scan.npz"), "--out", str(tmp_path / "npz.csv")]) == 0
    text, npz = (pd.read_csv(tmp_path / name).drop(columns="id") for name in ("text.csv", "npz.csv"))
    pd.testing.assert_frame_equal(text, npz, rtol=1e-4, atol=1e-6)


def test_coils_are_combined_with_the_water_references_weights(tmp_path, basis):
    """Uncombined coils (DIM_COIL) of very different sensitivity: `mrs fit` combines them (S/N^2 weights
    from the water reference, the same for both) before aligning and averaging the transients, and
    recovers the concentrations; treated as transients they were off by ~60 % (outlier rejection drops
    the strongest coils, the water reference's coils cancel)."""
    from speclearn.mrs.preprocess import coil_weights, combine_coils
    sim = simulate_mrs(1, seed=3, basis=basis, config=MRSSimConfig(transients=4, snr=(3000.0, 3000.0), **QUIET))
    sensitivities = np.array([1.0, 0.5, 0.2, 0.05]) * np.exp(1j * np.array([0.3, 2.0, -1.2, 2.8]))
    noise_sd = float(sim.scans["noise_sd_time"].iloc[0]) * 3000 / 60
    data, reference = coil_scan(sim, 0, sensitivities, noise_sd, np.random.default_rng(0))
    weights = coil_weights(np.stack([reference.fid]), data.fid.reshape(4, len(sensitivities), -1))
    ideal = sensitivities.conj()  # conj(a) / sigma^2 with equal noise; the estimated sigma^2 scatter by ~6 %
    np.testing.assert_allclose(weights / weights[0], ideal / ideal[0], rtol=0.15, atol=0.01)
    combined, water = combine_coils(data, reference)
    assert combined.n == 4 and combined.dims == [("DIM_DYN", 4)] and water.n == 1 and water.dims == []
    assert combine_coils(combined)[0] is combined  # nothing left to combine

    write_mrs(data, tmp_path / "scan.nii.gz")
    write_mrs(reference, tmp_path / "water.nii.gz")
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "scan.nii.gz"), "--water", str(tmp_path / "water.nii.gz"),
                 "--out", str(tmp_path / "c.csv")]) == 0
    table = pd.read_csv(tmp_path / "c.csv", index_col="id")
    assert len(table) == 1
    for name in ("NAA", "tCr", "tCho"):
        truth = combine({k: sim.concentrations[k].to_numpy() for k in sim.concentrations})[name][0]
        assert table[name].iloc[0] == pytest.approx(truth, rel=0.1), name


def test_coil_benchmark_section(tmp_path):
    from speclearn.mrs.benchmark import run_benchmark
    result = run_benchmark(tmp_path, scale="quick", sections=("coils",))
    rows = {r["method"]: r for r in result["rows"]}
    assert rows["combine_coils"]["median_of_medians_pct"] < 0.5 * rows["none (coils as transients)"]["median_of_medians_pct"]
    assert "combine_coils" in (tmp_path / "mrs_coils.md").read_text() and (tmp_path / "mrs_coils.json").exists()


def test_data_of_the_opposite_sign_convention_are_conjugated(tmp_path, small, capsys):
    """Conjugated FIDs (the other sign convention) fitted as they were gave every metabolite ~0 mM;
    now they and their water reference are turned back, said once, and fit as the originals do."""
    for name, data in (("s", small.spectra), ("w", small.water)):
        write_mrs(data, tmp_path / f"{name}.npz")
        write_mrs(data.with_fid(data.fid.conj()), tmp_path / f"{name}_conj.npz")
    for suffix in ("", "_conj"):
        assert main(["mrs", "fit", "--spectra", str(tmp_path / f"s{suffix}.npz"), "--water",
                     str(tmp_path / f"w{suffix}.npz"), "--out", str(tmp_path / f"c{suffix}.csv")]) == 0
    assert "opposite sign convention" in capsys.readouterr().err
    original, turned = (pd.read_csv(tmp_path / f"c{suffix}.csv") for suffix in ("", "_conj"))
    pd.testing.assert_frame_equal(original, turned)
    assert (original["NAA"] > 1).all()


def test_basis_of_another_field_or_echo_time(tmp_path, basis, small, capsys):
    """Another field strength is refused even at the basis's own dwell time and point count (it was
    let through there); another echo time fits with a warning."""
    seven_tesla = small.spectra.with_fid(small.spectra.fid, central_frequency_mhz=297.2)
    with pytest.raises(InputError, match="another field strength"):
        basis.matched(seven_tesla)
    write_mrs(small.spectra.with_fid(small.spectra.fid, te_ms=144.0), tmp_path / "te144.npz")
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "te144.npz"), "--out", str(tmp_path / "c.csv")]) == 0
    assert "TE 30 ms, the data were acquired at TE 144 ms" in capsys.readouterr().err


def test_simulate_like_another_acquisition_and_inspect(tmp_path, small, capsys):
    """`simulate mrs --like FILE` simulates on FILE's grid (here 2000 Hz, 1024 points), so `mrs train`
    can learn for data not acquired like the basis; `inspect` describes MRS files."""
    slow = small.spectra.with_fid(small.spectra.fid[:, ::2][:, :1024], dwell_time_s=2 * small.spectra.dwell_time_s)
    write_mrs(slow, tmp_path / "slow.nii.gz")
    assert main(["simulate", "mrs", "--like", str(tmp_path / "slow.nii.gz"), "--n", "2", "--transients", "2",
                 "--out", str(tmp_path / "sim")]) == 0
    simulated = read_mrs(tmp_path / "sim" / "spectra.npz")
    assert simulated.points == 1024 and simulated.dwell_time_s == pytest.approx(5e-4)
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "slow.nii.gz")]) == 0
    out = capsys.readouterr().out
    assert "3 x 1024 points" in out and "2000 Hz" in out and "TE 30 ms" in out


def test_lcm_finds_frequency_offsets_beyond_its_shift_bound(basis, small):
    """Without a water reference to correct it, a 45 Hz (0.37 ppm) offset put the water outside the
    HLSVD band and the start outside +-15 Hz: the fit gave NaN ratios. The water band now follows the
    water peak, and a poor fit retries from a wide search of the shift (+-0.5 ppm)."""
    reference = LinearCombinationFit().fit(small.spectra, basis).concentrations()[0]
    for offset in (45.0, -45.0):
        moved = small.spectra.with_fid(shift_phase(small.spectra.fid, small.spectra.dwell_time_s, offset, 0.0))
        model = LinearCombinationFit().fit(moved, basis)
        table = model.concentrations()[0]
        np.testing.assert_allclose(model.nuisance()["shift_hz"], offset + small.scans["shift_hz"], atol=3.0)
        np.testing.assert_allclose(table["tNAA"], reference["tNAA"], rtol=0.05)


def test_ratios_without_creatine_are_flagged(tmp_path, basis, capsys):
    rng = np.random.default_rng(0)
    naa_only = basis.fid[basis.index("NAA")] * 10 + 0.01 * (rng.normal(size=basis.points) + 1j * rng.normal(size=basis.points))
    write_mrs(MRSData(naa_only[None], basis.dwell_time_s, basis.central_frequency_mhz, 30.0, ids=["naa"]),
              tmp_path / "naa.npz")
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "naa.npz"), "--out", str(tmp_path / "c.csv")]) == 0
    assert "creatine below twice its uncertainty in 1 spectra (naa)" in capsys.readouterr().err


def test_other_nuclei_are_refused(tmp_path):
    import nibabel
    write_mrs(_data(2), tmp_path / "h.nii.gz")
    image = nibabel.load(str(tmp_path / "h.nii.gz"))
    extension = image.header.extensions[0]
    info = json.loads(extension.get_content().decode().rstrip("\x00")) | {"ResonantNucleus": ["31P"]}
    image.header.extensions.clear()
    image.header.extensions.append(nibabel.nifti1.Nifti1Extension(extension.get_code(), json.dumps(info).encode()))
    nibabel.save(image, str(tmp_path / "p.nii.gz"))
    with pytest.raises(InputError, match="p.nii.gz.*31P"):
        read_mrs(tmp_path / "p.nii.gz")


def test_nifti_dwell_time_in_the_headers_time_unit(tmp_path):
    import nibabel
    write_mrs(_data(1), tmp_path / "s.nii.gz")
    image = nibabel.load(str(tmp_path / "s.nii.gz"))
    assert image.header.get_xyzt_units() == ("mm", "sec")
    pixdim = image.header["pixdim"]
    pixdim[4] = 0.25  # the same dwell time, in milliseconds
    image.header["pixdim"] = pixdim
    image.header.set_xyzt_units("mm", "msec")
    nibabel.save(image, str(tmp_path / "ms.nii.gz"))
    assert read_mrs(tmp_path / "ms.nii.gz").dwell_time_s == pytest.approx(2.5e-4)


def test_scanner_raw_files_point_to_spec2nii(tmp_path):
    (tmp_path / "svs.rda").write_text(">>> Begin of header <<<\n")
    (tmp_path / "meas.dat").write_bytes(b"\x00\x01" * 64)  # binary: Siemens TWIX, not a text .dat
    for name, command in (("svs.rda", "`rda`"), ("meas.dat", "`twix -e image`")):
        with pytest.raises(InputError, match=f"{name}.*spec2nii.*{command}"):
            read_mrs(tmp_path / name)


def test_edited_acquisitions_are_refused(tmp_path):
    data = MRSData(_data(4).fid, 2.5e-4, 123.2, dims=[("DIM_DYN", 2), ("DIM_EDIT", 2)])
    write_mrs(data, tmp_path / "mega.nii.gz")
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "mega.nii.gz"), "--out", str(tmp_path / "c.csv")]) == 2
    assert not (tmp_path / "c.csv").exists()


# --- simulator ----------------------------------------------------------------------------------
def test_simulator_truth(basis):
    sim = simulate_mrs(4, seed=0, basis=basis, config=MRSSimConfig(transients=4, snr=(30.0, 30.0), shift_hz=1e-9,
                                                                   phase0_deg=0.0, phase1_deg_per_ppm=0.0, **QUIET))
    ppm = sim.clean.ppm()
    window = ppm_slice(ppm, 1.8, 2.3)
    peak = ppm[window][np.argmax(sim.clean.spectrum()[:, window].real, axis=1)]
    np.testing.assert_allclose(peak, 2.01, atol=0.03)
    # SNR: NAA height of the noise-free scan / sd of the real part of the averaged noise
    noise = to_spectrum(sim.spectra.fid - sim.clean.fid).real.std(axis=1)
    height = np.abs(sim.clean.spectrum()[:, window]).max(axis=1)
    assert np.median(height / noise) == pytest.approx(30.0, rel=0.15)
    assert set(sim.truth.columns) >= {"shift_hz", "phase_deg", "corrupted", "artefact"}
    assert list(sim.concentrations.index) == sim.spectra.ids


def test_simulator_applies_offsets(basis):
    sim = simulate_mrs(2, seed=1, basis=basis, config=MRSSimConfig(transients=5, snr=(1e9, 1e9), drift_hz=8.0,
                                                                   **QUIET))
    undone = shift_phase(sim.transients.fid, sim.transients.dwell_time_s, -sim.truth["shift_hz"].to_numpy(),
                         -sim.truth["phase_deg"].to_numpy())
    np.testing.assert_allclose(undone, np.repeat(sim.clean.fid, 5, axis=0), atol=1e-6 * np.abs(sim.clean.fid).max())
    assert sim.truth["shift_hz"].std() > 3


def test_simulator_corrupts_transients(basis):
    sim = simulate_mrs(20, seed=2, basis=basis, config=MRSSimConfig(transients=8, corrupted_fraction=0.3))
    share = sim.truth["corrupted"].mean()
    assert 0.2 < share < 0.4
    assert set(sim.truth.loc[sim.truth["corrupted"], "artefact"]) == {"ghost", "motion"}


# --- classical baselines ---------------------------------------------------------------------
def test_registration_recovers_known_shift(small):
    clean = small.clean.select([0])
    shifts, phases = np.array([-6.0, 0.0, 2.5, 5.0]), np.array([20.0, -10.0, 0.0, 35.0])
    fid = shift_phase(np.repeat(clean.fid, 4, axis=0), clean.dwell_time_s, shifts, phases)
    data = MRSData(fid, clean.dwell_time_s, clean.central_frequency_mhz)
    for search in (0.0, 20.0):
        est_shift, est_phase = SpectralRegistration(search_hz=search).estimate(data)
        np.testing.assert_allclose(est_shift, shifts - shifts.mean(), atol=0.05)
        np.testing.assert_allclose(est_phase - est_phase.mean(), phases - phases.mean(), atol=0.5)


def test_registration_to_a_noise_free_reference_reaches_the_cramer_rao_bound(small):
    clean = small.clean.fid[0]
    rng = np.random.default_rng(0)
    sd = 0.1 * np.abs(clean).max()
    noisy = np.repeat(clean[None], 400, axis=0) + sd * (rng.normal(size=(400, clean.size)) + 1j * rng.normal(size=(400, clean.size)))
    shift, phase = register(noisy, clean, small.clean.dwell_time_s, window_s=0.5)
    bound_hz, bound_deg = offset_crlb(clean[None], np.array([sd]), small.clean.dwell_time_s)
    # 400 draws: the sample sd is within +-10 % of the true sd (3.5 standard errors)
    assert 0.9 * bound_hz[0] < shift.std() < 1.15 * bound_hz[0]
    assert 0.9 * bound_deg[0] < phase.std() < 1.15 * bound_deg[0]
    assert abs(shift.mean()) < 4 * bound_hz[0] / np.sqrt(400)


def test_lcm_recovers_noiseless_concentrations(basis):
    sim = simulate_mrs(2, seed=3, basis=basis, config=MRSSimConfig(transients=1, snr=(1e9, 1e9), **QUIET))
    model = LinearCombinationFit().fit(sim.clean, basis)
    conc, unit = model.concentrations(sim.water)
    assert unit == "mM"
    truth = combine({k: sim.concentrations[k].to_numpy() for k in sim.concentrations})
    for name in ("NAA", "tCr", "tCho", "Ins", "Glu", "GSH"):
        np.testing.assert_allclose(conc[name], truth[name], rtol=0.03, err_msg=name)
    ratios, unit = model.concentrations()
    assert unit == "ratio to tCr"
    np.testing.assert_allclose(ratios["tCr"], 1.0)


def test_crlb_scales_with_noise(basis):
    sim = simulate_mrs(1, seed=5, basis=basis, config=MRSSimConfig(transients=1, snr=(1e9, 1e9), **QUIET))
    rng = np.random.default_rng(0)
    noise = rng.normal(size=sim.clean.fid.shape) + 1j * rng.normal(size=sim.clean.fid.shape)
    scale = np.abs(sim.clean.fid).max() * 0.002
    sds = []
    for factor in (1.0, 4.0):
        data = sim.clean.with_fid(sim.clean.fid + factor * scale * noise)
        conc, _ = LinearCombinationFit().fit(data, basis).concentrations(sim.water)
        sds.append(conc[["NAA_sd", "tCr_sd", "Ins_sd"]].to_numpy()[0])
    np.testing.assert_allclose(sds[1] / sds[0], 4.0, rtol=0.25)


def test_regression_slope_detects_bias_toward_training_mean():
    true = np.linspace(10, 20, 50)
    assert regression_slope(true, true) == pytest.approx(1.0)
    shrunk = 12.0 + 0.5 * (true - 12.0)  # pulled toward a training mean of 12
    assert regression_slope(true, shrunk) == pytest.approx(0.5)


# --- CLI end to end -------------------------------------------------------------------------
def test_cli_end_to_end(tmp_path):
    out = tmp_path / "sim"
    assert main(["simulate", "mrs", "--n", "12", "--seed", "1", "--transients", "4", "--out", str(out)]) == 0
    assert (out / "concentrations.csv").exists() and (out / "offsets.csv").exists()
    assert main(["mrs", "align", "--spectra", str(out / "transients.npz"), "--out", str(tmp_path / "al.nii.gz"),
                 "--method", "registration", "--shifts", str(tmp_path / "shifts.csv")]) == 0
    shifts = pd.read_csv(tmp_path / "shifts.csv", index_col="id")
    assert len(shifts) == 48 and {"shift_hz", "phase_deg"} <= set(shifts.columns)
    few = read_mrs(tmp_path / "al.nii.gz")
    write_mrs(few.select(np.arange(8)), tmp_path / "few.npz")
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "few.npz"), "--water", str(out / "water.npz"),
                 "--out", str(tmp_path / "conc.csv")]) == 2  # 2 scans vs 12 water references
    water = read_mrs(out / "water.npz")
    write_mrs(water.select([0, 1]), tmp_path / "w2.npz")
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "few.npz"), "--water", str(tmp_path / "w2.npz"),
                 "--out", str(tmp_path / "conc.csv")]) == 0
    conc = pd.read_csv(tmp_path / "conc.csv", index_col="id")
    assert {"NAA", "NAA_sd", "tCr", "tCr_sd"} <= set(conc.columns) and len(conc) == 2
    assert json.loads((tmp_path / "conc.json").read_text())["units"] == "mM"
    assert main(["mrs", "qa", "--spectra", str(out / "transients.npz"), "--out", str(tmp_path / "flags.csv")]) == 0
    flags = pd.read_csv(tmp_path / "flags.csv", index_col="id")
    assert len(flags) == 48 and "corrupted" in flags
    model = tmp_path / "model"
    assert main(["mrs", "train", "--spectra", str(out / "spectra.npz"), "--out", str(model), "--targets",
                 str(out / "concentrations.csv"), "--method", "supervised", "--epochs", "2"]) == 0
    assert main(["mrs", "predict", "--model", str(model), "--spectra", str(out / "spectra.npz"),
                 "--out", str(tmp_path / "dl.csv"), "--interval", "0.9"]) == 0
    dl = pd.read_csv(tmp_path / "dl.csv", index_col="id")
    assert {"NAA", "NAA_sd", "NAA_lo", "NAA_hi"} <= set(dl.columns)
    assert (dl["NAA_lo"] <= dl["NAA_hi"]).all()
    assert json.loads((tmp_path / "dl.json").read_text())["units"] == "ratio to tCr"


def test_label_free_training_and_methods(basis):
    from speclearn.mrs.quantifier import DLQuantifier
    sim = simulate_mrs(12, seed=7, basis=basis, config=MRSSimConfig(transients=1))
    model = DLQuantifier(epochs=1).fit(sim.spectra, basis)  # varpro, no labels
    table, unit = model.predict(sim.spectra)
    assert unit == "ratio to tCr" and np.isfinite(table["NAA"]).all()
    with pytest.raises(InputError, match="conformal"):
        model.predict(sim.spectra, interval=0.9)
    with pytest.raises(InputError, match="needs --targets"):
        DLQuantifier(method="supervised").fit(sim.spectra, basis)
    with pytest.raises(InputError, match="must be one of varpro, supervised"):
        DLQuantifier(method="hybrid").fit(sim.spectra, basis)


def test_model_refuses_other_acquisition(tmp_path, capsys):
    from speclearn.mrs.quantifier import DLQuantifier
    sim = simulate_mrs(12, seed=6, config=MRSSimConfig(transients=1))
    model = DLQuantifier(epochs=1, calibration_fraction=0.0).fit(sim.spectra, load_basis(), sim.concentrations)
    other = sim.spectra.with_fid(sim.spectra.fid, dwell_time_s=5e-4)
    with pytest.raises(InputError, match="dwell time"):
        model.predict(other)
    with pytest.raises(InputError, match="points"):
        model.predict(sim.spectra.with_fid(sim.spectra.fid[:, :1024]))
    with pytest.raises(InputError, match="field strength"):
        model.predict(sim.spectra.with_fid(sim.spectra.fid, central_frequency_mhz=297.2))
    model.save(tmp_path / "m")
    write_mrs(other, tmp_path / "other.npz")
    assert main(["mrs", "predict", "--model", str(tmp_path / "m"), "--spectra", str(tmp_path / "other.npz"),
                 "--out", str(tmp_path / "c.csv")]) == 2
    assert "dwell time" in capsys.readouterr().err


def _write_mrsi(path, fid: np.ndarray, data: MRSData, tags: list[str]) -> None:
    """A NIfTI-MRS spectroscopic image: fid (x, y, z, points, *higher dimensions)."""
    import nibabel as nib
    image = nib.Nifti2Image(fid.astype(np.complex64), np.eye(4))
    pixdim = image.header["pixdim"]
    pixdim[4] = data.dwell_time_s
    image.header["pixdim"] = pixdim
    image.header.set_xyzt_units("mm", "sec")
    info = {"SpectrometerFrequency": [data.central_frequency_mhz], "ResonantNucleus": ["1H"], "EchoTime": 0.03}
    info |= {f"dim_{5 + i}": tag for i, tag in enumerate(tags)}
    image.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(info).encode()))
    nib.save(image, str(path))


def test_spectroscopic_imaging_one_row_per_voxel_and_fits_spread_over_a_cluster(tmp_path, basis):
    """A 2 x 2 x 1 MRSI grid with 2 transients per voxel: every voxel is a scan (`<file>_x<i>_y<j>_z<k>`),
    `mrs fit` writes one row per voxel, the same as fitting those spectra from an NPZ, and
    `--scheduler local:2` gives the same table; an MRSI with uncombined coils is refused."""
    sim = simulate_mrs(4, seed=6, basis=basis, config=MRSSimConfig(transients=2, snr=(60.0, 60.0)))
    transients = sim.transients.fid.reshape(4, 2, -1)  # scan-major
    grid = np.zeros((2, 2, 1, transients.shape[2], 2), complex)
    for v, (i, j) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):  # NIfTI voxel order: x fastest
        grid[i, j, 0] = transients[v].T
    _write_mrsi(tmp_path / "mrsi.nii.gz", grid, sim.transients, ["DIM_DYN"])
    data = read_mrs(tmp_path / "mrsi.nii.gz")
    assert data.scan_names() == ["mrsi_x0_y0_z0", "mrsi_x1_y0_z0", "mrsi_x0_y1_z0", "mrsi_x1_y1_z0"]
    assert data.ids[:2] == ["mrsi_x0_y0_z0_0", "mrsi_x0_y0_z0_1"] and data.dims == []
    np.testing.assert_allclose(data.fid, transients.reshape(8, -1), rtol=1e-6, atol=1e-6 * np.abs(transients).max())

    write_mrs(data, tmp_path / "same.npz")
    out = {name: tmp_path / f"{name}.csv" for name in ("mrsi", "npz", "cluster")}
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "mrsi.nii.gz"), "--out", str(out["mrsi"])]) == 0
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "same.npz"), "--out", str(out["npz"])]) == 0
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "mrsi.nii.gz"), "--scheduler", "local:2",
                 "--out", str(out["cluster"])]) == 0
    tables = {name: pd.read_csv(path, index_col="id") for name, path in out.items()}
    assert list(tables["mrsi"].index) == data.scan_names()
    pd.testing.assert_frame_equal(tables["cluster"], tables["mrsi"])
    pd.testing.assert_frame_equal(tables["npz"], tables["mrsi"])
    assert main(["mrs", "train", "--spectra", str(tmp_path / "mrsi.nii.gz"), "--epochs", "1",
                 "--out", str(tmp_path / "dl")]) == 0
    for name, extra in (("dl", []), ("dl_cluster", ["--scheduler", "local:2"])):
        assert main(["mrs", "predict", "--model", str(tmp_path / "dl"), "--spectra", str(tmp_path / "mrsi.nii.gz"),
                     "--out", str(tmp_path / f"{name}.csv"), *extra]) == 0
    predicted = {name: pd.read_csv(tmp_path / f"{name}.csv", index_col="id") for name in ("dl", "dl_cluster")}
    assert list(predicted["dl"].index) == data.scan_names()
    pd.testing.assert_frame_equal(predicted["dl_cluster"], predicted["dl"])

    water = np.zeros((2, 2, 1, transients.shape[2]), complex)  # a water reference on the same grid
    for v, (i, j) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        water[i, j, 0] = sim.water.fid[v]
    _write_mrsi(tmp_path / "water.nii.gz", water, sim.water, [])
    write_mrs(read_mrs(tmp_path / "water.nii.gz"), tmp_path / "water.npz")
    for name, spectra, reference in (("mrsi_mm", "mrsi.nii.gz", "water.nii.gz"), ("npz_mm", "same.npz", "water.npz")):
        assert main(["mrs", "fit", "--spectra", str(tmp_path / spectra), "--water", str(tmp_path / reference),
                     "--out", str(tmp_path / f"{name}.csv")]) == 0
    in_mm = {name: pd.read_csv(tmp_path / f"{name}.csv", index_col="id") for name in ("mrsi_mm", "npz_mm")}
    pd.testing.assert_frame_equal(in_mm["mrsi_mm"], in_mm["npz_mm"])
    truth = combine({k: sim.concentrations[k].to_numpy() for k in sim.concentrations})["tNAA"]
    np.testing.assert_allclose(in_mm["mrsi_mm"]["tNAA"], truth, rtol=0.15)  # voxel by voxel, in mM

    _write_mrsi(tmp_path / "coils.nii.gz", np.stack([grid, grid], axis=-1), sim.transients, ["DIM_DYN", "DIM_COIL"])
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "coils.nii.gz"), "--out", str(tmp_path / "c.csv")]) == 2
