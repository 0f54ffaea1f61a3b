"""`--scheduler local:N`: unmix apply and preprocess on a dask.distributed LocalCluster, tiny Zarr cube."""
from __future__ import annotations

import json

import numpy as np
import pytest

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import read_spectra, write_spectra

pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def cube_and_model(tmp_path_factory):
    from speclearn.unmix import FixedSpectraUnmixer
    root = tmp_path_factory.mktemp("dist")
    rng = np.random.default_rng(0)
    axis = np.linspace(0.5, 10.0, 48)
    spectra = np.stack([np.exp(-0.5 * ((axis - c) / 0.4) ** 2) + 0.05 for c in (2.0, 6.0)])
    spectra /= spectra.sum(axis=1, keepdims=True)
    fraction = np.linspace(0, 1, 10)[None, :, None].repeat(12, axis=0)
    maps = np.concatenate([fraction, 1 - fraction], axis=2)
    counts = rng.poisson(400 * maps @ spectra).astype(float)
    path = write_spectra(Spectra(counts, axis, axis_kind="energy"), root / "cube.zarr")
    model = FixedSpectraUnmixer().fit(spectra, {"kind": "energy", "unit": "keV", "values": axis.tolist()}
                                      ).save(root / "model")
    return root, path, model


def test_unmix_apply_on_local_cluster_matches_the_in_process_result(cli, cube_and_model, tmp_path):
    from speclearn.unmix.model import apply_unmixing
    _, cube, model = cube_and_model
    code, _, err = cli("unmix", "apply", "--model", model, "--cube", cube, "--out", tmp_path / "out",
                       "--scheduler", "local:2")
    assert code == 0, err
    distributed = np.load(tmp_path / "out" / "abundances.npy")
    local = apply_unmixing(model, read_spectra(cube))
    assert distributed.shape == (2, 12, 10)
    np.testing.assert_allclose(distributed, local, atol=2e-3)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["shape"] == [12, 10, 48]


def test_preprocess_on_a_scheduler_address(cli, cube_and_model, tmp_path):
    from dask.distributed import LocalCluster
    _, cube, _ = cube_and_model
    flat = write_spectra(read_spectra(cube).compute().select(read_spectra(cube).ids), tmp_path / "flat.zarr")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        code, _, err = cli("preprocess", "--spectra", flat, "--out", tmp_path / "norm.zarr", "--normalize", "area",
                           "--scheduler", cluster.scheduler_address)
    assert code == 0, err
    result = read_spectra(tmp_path / "norm.zarr").values()
    np.testing.assert_allclose(result.sum(axis=1), 1.0, rtol=1e-9)  # "area": every spectrum sums to one


def test_bad_scheduler_is_one_line_error():
    from speclearn.distributed import scheduler
    with pytest.raises(InputError, match="positive number"):
        with scheduler("local:zero"):
            pass
