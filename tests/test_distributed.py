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
    code, _, err = cli("unmix", "predict", "--model", model, "--spectra", cube, "--out", tmp_path / "out",
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


@pytest.fixture(scope="module")
def zarr_image(tmp_path_factory):
    """A (12, 10, 64) spectrum image in Zarr with 4-row storage chunks, and a classical denoiser for it."""
    from speclearn.models import methods
    root = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(1)
    axis = np.linspace(100.0, 200.0, 64)
    clean = np.exp(-0.5 * ((axis - 150) / 8) ** 2)
    cube = clean * rng.uniform(0.5, 2.0, (12, 10, 1)) + rng.normal(0, 0.05, (12, 10, 64))
    data = Spectra(cube, axis, axis_kind="wavenumber")
    path = write_spectra(data, root / "image.zarr")
    model = methods("denoise")["classical"](seed=0).fit(data.select(data.ids))
    model.save(root / "denoiser")
    return path, data, model, root / "denoiser"


def test_map_spectra_streams_a_lazy_image_chunk_by_chunk(zarr_image):
    from speclearn.distributed import map_spectra
    import dask.array as da
    _, data, model, _ = zarr_image
    lazy = Spectra(da.from_array(data.intensity, chunks=(4, 10, 64)), data.axis, axis_kind="wavenumber")
    calls = []
    result = map_spectra(lazy, lambda block: (calls.append(block.n_spectra), model.transform(block))[1])
    assert result.is_lazy and result.intensity.shape == (12, 10, 64)
    assert result.ids == lazy.ids
    np.testing.assert_allclose(result.values(), model.transform(data).values(), atol=1e-10)
    assert calls == [1, 40, 40, 40]  # one spectrum to learn the output axis, then one call per storage chunk


def test_predict_table_stacks_chunk_tables_under_the_ids(zarr_image):
    from speclearn.distributed import predict_table
    path, data, _, _ = zarr_image
    lazy = read_spectra(path)
    table = predict_table(lazy, lambda block, rows: __import__("pandas").DataFrame(
        {"total": block.values().sum(axis=1), "row": np.arange(rows.start, rows.stop)}, index=block.meta.index))
    np.testing.assert_allclose(table["total"], data.values().sum(axis=1))
    np.testing.assert_array_equal(table["row"], np.arange(data.n_spectra))
    assert list(table.index) == lazy.ids


def test_denoise_apply_writes_zarr_through_a_scheduler(cli, zarr_image, tmp_path):
    from dask.distributed import LocalCluster
    path, data, model, folder = zarr_image
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        code, _, err = cli("denoise", "predict", "--model", folder, "--spectra", path, "--out", tmp_path / "clean.zarr",
                           "--scheduler", cluster.scheduler_address)
    assert code == 0, err
    written = read_spectra(tmp_path / "clean.zarr")
    assert written.is_image and written.is_lazy
    np.testing.assert_allclose(written.values(), model.transform(data).values(), atol=1e-10)
