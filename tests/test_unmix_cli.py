"""`speclearn unmix` and `speclearn unmix apply`: files written, axis checks, bad input exit 2."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from speclearn.io import write_spectra
from speclearn.simulate.edx import DEFAULT_PHASES, simulate_edx

FILES = ("components.csv", "components.npy", "abundances.npy", "abundance_maps.png", "component_spectra.png",
         "summary.json", "model")


@pytest.fixture(scope="module")
def sim():
    return simulate_edx(16, 16, 256, phases=DEFAULT_PHASES[:2], dose=300, seed=4)


@pytest.fixture
def zarr_cube(sim, tmp_path):
    return write_spectra(sim.spectra, tmp_path / "map.zarr")


def test_unmix_writes_every_file_and_apply_reuses_the_model(cli, tmp_path, zarr_cube, sim):
    code, _, err = cli("unmix", "train", "--spectra", zarr_cube, "--components", 2, "--out", tmp_path / "res", "--bin", 2,
                       "--elements", "O,Si,Al,Mg,Pb,S")
    assert code == 0, err
    for name in FILES:
        assert (tmp_path / "res" / name).exists(), name
    table = pd.read_csv(tmp_path / "res" / "components.csv", index_col=0)
    assert list(table.index) == ["component_0", "component_1"]
    assert np.allclose(table.columns.astype(float), sim.spectra.axis)
    assert np.load(tmp_path / "res" / "components.npy").shape == (2, 256)
    abundances = np.load(tmp_path / "res" / "abundances.npy")
    assert abundances.shape == (2, 16, 16) and np.allclose(abundances.sum(axis=0), 1)
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    assert summary["method"] == "psnmf" and len(summary["composition_weight_fraction"]) == 2

    code, _, err = cli("unmix", "predict", "--model", tmp_path / "res" / "model", "--spectra", zarr_cube,
                       "--out", tmp_path / "applied")
    assert code == 0, err
    applied = np.load(tmp_path / "applied" / "abundances.npy")
    assert np.abs(applied - abundances).max() < 0.02

    other = sim.spectra.with_intensity(sim.spectra.intensity[..., :200], axis=sim.spectra.axis[:200])
    write_spectra(other, tmp_path / "other.zarr")
    code, _, err = cli("unmix", "predict", "--model", tmp_path / "res", "--spectra", tmp_path / "other.zarr",
                       "--out", tmp_path / "refused")
    assert code == 2 and "channels" in err

    code, _, err = cli("unmix", "train", "--spectra", zarr_cube, "--components", 2, "--out", tmp_path / "res")
    assert code == 2 and "exists" in err


@pytest.mark.parametrize("method", ["nmf", "pca-nmf"])
def test_baseline_methods_and_npy_cube_without_axis(cli, tmp_path, sim, method):
    np.save(tmp_path / "cube.npy", sim.spectra.intensity.astype(float))
    code, _, err = cli("unmix", "train", "--spectra", tmp_path / "cube.npy", "--components", 2, "--out", tmp_path / "res",
                       "--method", method)
    assert code == 0, err
    header = pd.read_csv(tmp_path / "res" / "components.csv", index_col=0).columns.astype(float)
    assert np.array_equal(header, np.arange(256))


def bad_cubes(sim):
    cube = sim.spectra.intensity.astype(float)
    negative, nan = cube.copy(), cube.copy()
    negative[3, 4, 5] = -1
    nan[2, 2, 2] = np.nan
    return {"negative": (negative, 2, "negative counts"), "nan": (nan, 2, "NaN"),
            "flat": (cube.reshape(-1, 256), 2, "3-D"), "k_channels": (cube[..., :3], 4, "channels"),
            "k_pixels": (cube[:2, :2], 5, "pixels")}


@pytest.mark.parametrize("case", ["negative", "nan", "flat", "k_channels", "k_pixels"])
def test_bad_input_exit_2(cli, tmp_path, sim, case):
    cube, k, message = bad_cubes(sim)[case]
    np.save(tmp_path / "bad.npy", cube)
    code, _, err = cli("unmix", "train", "--spectra", tmp_path / "bad.npy", "--components", k, "--out", tmp_path / "res", "--bin", 1)
    assert code == 2, err
    assert err.startswith("speclearn: error:") and message in err and "bad.npy" in err


def test_missing_options_and_unknown_method_exit_2(cli, tmp_path, zarr_cube):
    code, _, err = cli("unmix", "train", "--spectra", zarr_cube)
    assert code == 2 and "--out" in err
    code, _, err = cli("unmix", "train", "--spectra", zarr_cube, "--components", 2, "--out", tmp_path / "r", "--method", "ica")
    assert code == 2 and "ica" in err
    code, _, err = cli("unmix", "train", "--spectra", zarr_cube, "--components", 2, "--out", tmp_path / "r", "--bin", "big")
    assert code == 2 and "--bin" in err
