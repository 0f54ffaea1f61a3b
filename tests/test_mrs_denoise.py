"""Few-average MRS denoising (`speclearn mrs denoise`, the denoising system's replicate-trained denoisers)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from speclearn.cli.main import main
from speclearn.core.errors import InputError
from speclearn.mrs.basis import load_basis
from speclearn.mrs.cli import DENOISE_PPM, block_averages, denoise_mrs, fit_few_average_denoiser
from speclearn.mrs.data import ppm_slice, shift_phase
from speclearn.mrs.io import read_mrs, write_mrs
from speclearn.mrs.simulate import MRSSimConfig, simulate_mrs


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    out = tmp_path_factory.mktemp("mrs") / "sim"
    assert main(["simulate", "mrs", "--n", "4", "--seed", "3", "--transients", "8", "--snr", "30",
                 "--corrupted", "0", "--out", str(out)]) == 0
    return out


def _aligned(sim):
    t = sim.transients
    return t.with_fid(shift_phase(t.fid, t.dwell_time_s, -sim.truth["shift_hz"].to_numpy(),
                                  -sim.truth["phase_deg"].to_numpy()))


def test_cli_writes_one_denoised_average_per_scan(scans, tmp_path):
    transients = read_mrs(scans / "transients.npz")
    for method in ("noise2noise", "none"):
        assert main(["mrs", "denoise", "--spectra", str(scans / "transients.npz"), "--out",
                     str(tmp_path / f"{method}.npz"), "--averages", "2", "--method", method, "--epochs", "2",
                     "--report", str(tmp_path / f"{method}.html")]) == 0
    assert "mrs denoise" in (tmp_path / "noise2noise.html").read_text()
    denoised, raw = read_mrs(tmp_path / "noise2noise.npz"), read_mrs(tmp_path / "none.npz")
    assert denoised.ids == raw.ids == transients.scan_names()
    for data in (denoised, raw):
        assert data.points == transients.points
        assert data.acquisition() == transients.acquisition()
    inside = np.zeros(raw.points, bool)
    inside[ppm_slice(raw.ppm(), *DENOISE_PPM)] = True
    changed = np.abs(denoised.spectrum() - raw.spectrum()) > 1e-4 * np.abs(raw.spectrum()).max()  # complex64 files
    assert not changed[:, ~inside].any()  # outside the window the spectrum passes through
    assert changed[:, inside].mean() > 0.5
    assert main(["mrs", "fit", "--spectra", str(tmp_path / "noise2noise.npz"), "--out", str(tmp_path / "c.csv")]) == 0


@pytest.mark.parametrize("args, message", [
    (["--method", "median"], "--method must be one of"),
    (["--averages", "9"], "fewer than --averages 9"),
    (["--averages", "0"], "--averages must be >= 1"),
    (["--averages", "8"], "needs at least 2 training scans"),  # one block per scan: no replicate pairs
])
def test_cli_refuses_bad_input_with_one_line(scans, tmp_path, capsys, args, message):
    code = main(["mrs", "denoise", "--spectra", str(scans / "transients.npz"), "--out", str(tmp_path / "d.npz"),
                 "--epochs", "1", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "d.npz").exists()


def test_cli_refuses_training_scans_of_another_acquisition(scans, tmp_path, capsys):
    other = read_mrs(scans / "transients.npz")
    write_mrs(other.with_fid(other.fid, dwell_time_s=2 * other.dwell_time_s), tmp_path / "other.npz")
    code = main(["mrs", "denoise", "--spectra", str(scans / "transients.npz"), "--train", str(tmp_path / "other.npz"),
                 "--out", str(tmp_path / "d.npz"), "--averages", "2"])
    assert code == 2 and "dwell time" in capsys.readouterr().err


def test_denoised_two_average_is_closer_to_the_truth():
    torch.set_num_threads(1)
    basis = load_basis()
    config = MRSSimConfig(transients=16, snr=(20.0, 20.0), corrupted_fraction=0.0)
    train = _aligned(simulate_mrs(12, seed=1, basis=basis, config=config))
    test_sim = simulate_mrs(4, seed=2, basis=basis, config=config)
    raw = block_averages(_aligned(test_sim), 2, first=True)
    window = ppm_slice(raw.ppm(), 0.2, 4.2)

    def rmse(data):
        return np.sqrt(np.mean(np.abs(data.spectrum()[:, window] - test_sim.clean.spectrum()[:, window]) ** 2, 1))

    ratio = {method: rmse(denoise_mrs(fit_few_average_denoiser(train, 2, method, epochs=3), raw)) / rmse(raw)
             for method in ("noise2noise", "savgol")}
    # 2 of 16 transients: the full average's RMSE is sqrt(2/16) = 0.35 of the raw one
    assert np.median(ratio["noise2noise"]) < 0.6 and ratio["noise2noise"].max() < 0.8
    assert np.median(ratio["noise2noise"]) < np.median(ratio["savgol"])  # the U-Net adds to its smoother
    assert denoise_mrs(None, raw) is raw
    with pytest.raises(InputError, match="noise2noise needs"):
        fit_few_average_denoiser(train.select(np.arange(16)), 2, "noise2noise")  # one training scan
