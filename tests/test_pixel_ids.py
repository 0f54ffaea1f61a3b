"""A spectrum image's ids are derived from the pixel position ("s0000", ... in C order), not stored as a
string per pixel; where they are written they are the same strings as before."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from speclearn.core.spectra import PixelIds, Spectra, default_ids


def _image(shape=(7, 13, 4), seed=0):
    return Spectra(np.random.default_rng(seed).uniform(1, 2, shape), np.arange(float(shape[-1])), axis_kind="energy")


def _stored(spectra: Spectra) -> Spectra:
    """The same image with its ids built and stored, as every image had them before."""
    return Spectra(spectra.intensity, spectra.axis, axis_kind=spectra.axis_kind,
                   meta=pd.DataFrame(index=default_ids(spectra.intensity.shape[:-1])))


def test_a_million_pixel_image_builds_no_id_strings():
    da = pytest.importorskip("dask.array")
    small = Spectra(da.zeros((16, 16, 8), chunks=(8, 16, 8)), np.arange(8.0))
    small.with_intensity(small.intensity.rechunk((4, 16, 8)))  # imports are not the ids
    tracemalloc.start()
    image = Spectra(da.zeros((1024, 1024, 8), chunks=(64, 1024, 8)), np.arange(8.0))
    moved = image.with_intensity(image.intensity.rechunk((128, 1024, 8)))
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20e6, f"{peak / 1e6:.0f} MB for 2**20 pixels (stored ids took ~130 MB)"
    assert isinstance(moved.__dict__["_meta"], PixelIds) and moved.n_spectra == 2**20
    assert list(moved.ids_at(slice(1023, 1026))) == ["s0001023", "s0001024", "s0001025"]


def test_derived_ids_are_the_stored_ones():
    image = _image()
    old = default_ids((7, 13))
    assert image.ids == list(old) and image.ids[0] == "s00" and image.ids[-1] == "s90"
    for rows in (slice(0, 13), slice(13, 40), slice(85, None), slice(None)):
        assert image.ids_at(rows).equals(old[rows])
    assert image.select(["s05", "s90"]).values().tolist() == image.values()[[5, 90]].tolist()
    assert image.meta.index.equals(old) and image.n_spectra == 91


def test_file_attributes_travel_without_ids():
    image = Spectra(np.ones((3, 4, 5)), np.arange(5.0), meta=PixelIds({"beam_energy_kv": 15.0}))
    same = image.with_intensity(image.intensity * 2)
    assert same.attrs == {"beam_energy_kv": 15.0} and isinstance(same.__dict__["_meta"], PixelIds)
    assert same.meta.attrs["beam_energy_kv"] == 15.0 and same.ids[:2] == ["s00", "s01"]
    with pytest.raises(Exception, match="spectrum image"):
        Spectra(np.ones((3, 5)), np.arange(5.0), meta=PixelIds())


def test_written_ids_are_byte_identical(tmp_path):
    from speclearn.distributed import predict_table
    from speclearn.io import write_spectra, write_table_csv
    image = _image()
    for name, spectra in (("derived", image), ("stored", _stored(image))):
        write_spectra(spectra, tmp_path / f"{name}.npz")
        table = predict_table(spectra, lambda block, rows: pd.DataFrame({"total": block.values().sum(axis=1)},
                                                                        index=block.meta.index))
        write_table_csv(table, tmp_path / f"{name}.csv")
    for suffix in (".npz", ".csv"):
        assert (tmp_path / f"derived{suffix}").read_bytes() == (tmp_path / f"stored{suffix}").read_bytes()
    assert (tmp_path / "derived.csv").read_text().splitlines()[1].startswith("s00,")


def test_predicted_table_of_a_lazy_image_has_the_stored_ids(tmp_path):
    from speclearn.distributed import map_spectra, predict_table
    from speclearn.io import read_spectra, write_spectra
    image = _image((40, 9, 6))
    cube = read_spectra(write_spectra(image, tmp_path / "cube.zarr"))
    assert cube.is_lazy and isinstance(cube.__dict__["_meta"], PixelIds)
    table = predict_table(cube, lambda block, rows: pd.DataFrame({"total": block.values().sum(axis=1)},
                                                                  index=block.meta.index))
    assert table.index.equals(default_ids((40, 9))) and np.allclose(table["total"], image.values().sum(axis=1))
    doubled = map_spectra(cube, lambda block: block.with_intensity(block.values() * 2))
    assert isinstance(doubled.__dict__["_meta"], PixelIds) and doubled.is_image
    np.testing.assert_allclose(doubled.values(), 2 * image.values())


def test_a_zarr_image_can_be_overwritten(tmp_path):
    from speclearn.io import read_spectra, write_spectra
    image = _image()
    write_spectra(image, tmp_path / "cube.zarr")
    write_spectra(image.with_intensity(image.intensity * 2), tmp_path / "cube.zarr", overwrite=True)
    np.testing.assert_allclose(read_spectra(tmp_path / "cube.zarr").values(), 2 * image.values())
