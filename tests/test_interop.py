"""speclearn.interop: HyperSpy/exspy and xarray in and out; RosettaSciIO formats read lazily."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from speclearn import interop
from speclearn.core.errors import InputError

hs = pytest.importorskip("hyperspy.api")
exspy = pytest.importorskip("exspy")
EXSPY_DATA = Path(exspy.__file__).parent / "data"


@pytest.fixture(scope="module")
def eds_map():
    """A 12 x 12 EDS map made of exspy's real FePt spectrum (TEM, 200 kV, Fe and Pt in its metadata):
    the counts below 7.5 keV (Fe K, Pt M) and above (Cu K, Pt L) as two phases mixed left to right,
    Poisson counts. Real axis and metadata; the mixing is known."""
    warnings.simplefilter("ignore")
    real = hs.load(EXSPY_DATA / "EDS_TEM_FePt_nanoparticles.hspy")
    energy = real.axes_manager[-1].axis
    counts = real.data.astype(float)
    phases = np.stack([np.where(energy < 7.5, counts, 0), np.where(energy >= 7.5, counts, 0)])
    phases /= phases.sum(axis=1, keepdims=True)
    fraction = np.linspace(0.05, 0.95, 12)[None, :].repeat(12, axis=0)
    rate = 3000 * (fraction[..., None] * phases[0] + (1 - fraction[..., None]) * phases[1])
    signal = real._deepcopy_with_new_data(np.random.default_rng(0).poisson(rate).astype(np.uint32))
    signal = hs.signals.Signal1D(signal.data, metadata=real.metadata.as_dictionary())
    signal.set_signal_type("EDS_TEM")
    spectral = signal.axes_manager.signal_axes[0]
    spectral.name, spectral.units = "Energy", "keV"
    spectral.offset, spectral.scale = real.axes_manager[-1].offset, real.axes_manager[-1].scale
    for axis, name in zip(signal.axes_manager.navigation_axes, "xy"):
        axis.name, axis.units, axis.scale, axis.offset = name, "nm", 2.5, 10.0
    return signal, fraction


def test_hyperspy_round_trip_keeps_axes_metadata_and_dtype(eds_map):
    signal, _ = eds_map
    spectra = interop.from_hyperspy(signal)
    assert spectra.intensity.shape == (12, 12, 992) and spectra.intensity.dtype == np.uint32
    assert spectra.axis_kind == "energy" and spectra.axis_unit == "keV"
    np.testing.assert_allclose(spectra.axis, signal.axes_manager[-1].axis)
    assert spectra.meta.attrs["beam_energy_kv"] == 200.0 and spectra.meta.attrs["elements"] == ["Fe", "Pt"]
    back = interop.to_hyperspy(spectra)
    assert type(back).__name__ == "EDSTEMSpectrum"
    assert back.metadata.Acquisition_instrument.TEM.beam_energy == 200.0
    assert list(back.metadata.Sample.elements) == ["Fe", "Pt"]
    for new, old in zip(back.axes_manager._axes, signal.axes_manager._axes):
        assert (new.name, new.units, new.size) == (old.name, old.units, old.size)
        assert new.offset == pytest.approx(old.offset) and new.scale == pytest.approx(old.scale)
    np.testing.assert_array_equal(back.data, signal.data)


def test_lazy_signal_stays_lazy(eds_map):
    lazy = eds_map[0].as_lazy()
    spectra = interop.from_hyperspy(lazy)
    assert spectra.is_lazy
    back = interop.to_hyperspy(spectra)
    assert back._lazy and type(back).__name__ == "LazyEDSTEMSpectrum"


def test_psnmf_decomposition_fills_learning_results_and_exspy_quantifies(eds_map, tmp_path):
    """The round trip: a .hspy EDS map in, PSNMF, maps and spectra out as signals, exspy quantifies."""
    written, fraction = eds_map
    written.save(tmp_path / "map.hspy")
    signal = hs.load(tmp_path / "map.hspy")
    maps, components = interop.decomposition(signal, "psnmf", n_components=2, bin_factor=2)
    results = signal.learning_results
    assert results.factors.shape == (992, 2) and results.loadings.shape == (144, 2)
    assert results.decomposition_algorithm == "speclearn.PSNMF"
    model = signal.get_decomposition_model()
    assert np.abs(model.data - signal.data).mean() < 0.5 * signal.data.mean()
    assert type(maps).__name__ == "Signal2D" and maps.data.shape == (2, 12, 12)
    assert maps.axes_manager.signal_axes[0].units == "nm"
    np.testing.assert_allclose(maps.data.sum(axis=0), 1.0, atol=1e-9)
    # the Fe-K phase (the one with counts below 7.5 keV) follows the known left-to-right gradient
    fe = int(np.argmax(components.isig[:7.5].data.sum(axis=1)))
    assert np.abs(maps.data[fe] - fraction).mean() < 0.1
    assert type(components).__name__ == "EDSTEMSpectrum"
    assert components.metadata.Acquisition_instrument.TEM.beam_energy == 200.0
    components.add_lines()
    intensities = components.get_lines_intensity()
    composition = components.quantification(intensities, method="CL", factors=[1.0, 1.5])
    fe_percent = next(c for c in composition if "Fe" in c.metadata.General.title).data
    assert fe_percent[fe] > 50 and fe_percent[fe] > 10 * fe_percent[1 - fe]


def test_lazy_decomposition_leaves_signal_lazy(eds_map):
    lazy = eds_map[0].as_lazy()
    maps, components = interop.decomposition(lazy, "nmf", n_components=2, max_iter=200)
    assert lazy._lazy and maps.data.shape == (2, 12, 12) and lazy.learning_results.factors.shape == (992, 2)


def test_pixel_unmixer_inside_hyperspy_decomposition(eds_map):
    signal = eds_map[0].deepcopy()
    signal.change_dtype("float64")
    signal.decomposition(algorithm=interop.PixelUnmixer("nmf", 2, max_iter=200), output_dimension=2,
                         print_info=False)
    assert signal.learning_results.factors.shape == (992, 2)
    assert (signal.learning_results.factors >= 0).all()
    model = signal.get_decomposition_model()
    assert np.abs(model.data - signal.data).mean() < 0.5 * signal.data.mean()
    with pytest.raises(InputError, match="spatial layout"):
        interop.PixelUnmixer("psnmf", 2).fit(np.ones((4, 5)))


def test_xarray_round_trip_with_energy_dim_stays_lazy():
    xr = pytest.importorskip("xarray")
    dask_array = pytest.importorskip("dask.array")
    counts = dask_array.ones((6, 5, 40), chunks=(3, 5, 40), dtype="float32")
    energy = xr.Variable("energy", np.linspace(0.1, 10, 40), attrs={"units": "keV"})
    array = xr.DataArray(counts, dims=("y", "x", "energy"), coords={"energy": energy}, attrs={"beam_energy_kv": 30.0})
    spectra = interop.from_xarray(array)
    assert spectra.is_lazy and spectra.intensity.dtype == np.float32 and spectra.is_image
    assert (spectra.axis_kind, spectra.axis_unit) == ("energy", "keV")
    assert spectra.meta.attrs["beam_energy_kv"] == 30.0
    back = interop.to_xarray(spectra)
    assert back.dims == ("y", "x", "energy") and type(back.data).__module__.startswith("dask")
    np.testing.assert_allclose(back["energy"].values, energy.values)
    assert back["energy"].attrs["units"] == "keV" and back.attrs["beam_energy_kv"] == 30.0


def test_xarray_spectral_dim_first_and_ids():
    xr = pytest.importorskip("xarray")
    values = np.arange(40 * 3, dtype=float).reshape(40, 3)
    array = xr.DataArray(values, dims=("wavenumber", "sample"),
                         coords={"wavenumber": np.arange(400.0, 440.0), "sample": ["a", "b", "c"]})
    spectra = interop.from_xarray(array)
    assert spectra.ids == ["a", "b", "c"] and spectra.axis_kind == "wavenumber"
    np.testing.assert_array_equal(spectra.values(), values.T)
    back = interop.to_xarray(spectra)
    assert back.dims == ("spectrum", "wavenumber")
    with pytest.raises(InputError, match="no dimension"):
        interop.from_xarray(array, spectral_dim="energy")


# --- RosettaSciIO formats through speclearn.io ---------------------------------------------------
@pytest.mark.parametrize("name, dtype, beam_kv, elements", [
    ("EDS_TEM_FePt_nanoparticles.hspy", np.uint32, 200.0, ["Fe", "Pt"]),
    ("EDS_SEM_TM002.hspy", np.int32, 10.0, ["Al", "C", "Cu", "Mn", "Zr"])])
def test_real_hspy_read_lazily_in_native_dtype_with_metadata(name, dtype, beam_kv, elements):
    from speclearn.io import read_spectra
    spectra = read_spectra(EXSPY_DATA / name)
    assert spectra.is_lazy and spectra.intensity.dtype == dtype
    assert spectra.meta.attrs["beam_energy_kv"] == beam_kv and spectra.meta.attrs["elements"] == elements
    assert spectra.meta.attrs["signal_type"].startswith("EDS_")


@pytest.mark.parametrize("suffix, dtype", [(".zspy", np.uint32), (".rpl", np.uint16), (".hspy", np.uint32)])
def test_spectrum_image_formats_read_lazily(tmp_path, eds_map, suffix, dtype):
    from speclearn.io import read_spectra
    signal = eds_map[0].deepcopy()
    signal.change_dtype(dtype)
    try:
        signal.save(tmp_path / f"map{suffix}")
    except AttributeError as err:  # RosettaSciIO's zspy writer against zarr 3
        pytest.skip(f"this RosettaSciIO cannot write {suffix}: {err}")
    spectra = read_spectra(tmp_path / f"map{suffix}")
    assert spectra.is_lazy and spectra.is_image and spectra.intensity.dtype == dtype
    assert spectra.axis_kind == "energy"
    np.testing.assert_allclose(spectra.axis, signal.axes_manager[-1].axis, rtol=1e-6)
    np.testing.assert_array_equal(spectra.intensity.compute(), signal.data)
    if suffix != ".rpl":  # the Ripple format keeps no sample metadata
        assert spectra.meta.attrs["elements"] == ["Fe", "Pt"] and spectra.meta.attrs["beam_energy_kv"] == 200.0


def test_bcf_asks_for_the_spectrum_image_and_skips_images(tmp_path, monkeypatch):
    import dask.array as da
    import rsciio.bruker
    from speclearn.io import read_spectra
    calls = {}
    image = {"data": np.zeros((4, 5)), "axes": [{"navigate": False, "size": 4}, {"navigate": False, "size": 5}]}
    cube = {"data": da.ones((4, 5, 8), dtype=np.uint16, chunks=(2, 5, 8)), "metadata": {},
            "axes": [{"navigate": True, "size": 4, "name": "height"}, {"navigate": True, "size": 5, "name": "width"},
                     {"navigate": False, "size": 8, "offset": -0.5, "scale": 0.01, "units": "keV", "name": "Energy"}]}

    def reader(filename, **options):
        calls.update(options)
        return [image, cube]

    monkeypatch.setattr(rsciio.bruker, "file_reader", reader)
    (tmp_path / "map.bcf").write_bytes(b"")
    spectra = read_spectra(tmp_path / "map.bcf")
    assert calls == {"lazy": True, "select_type": "spectrum_image"}
    assert spectra.is_lazy and spectra.intensity.shape == (4, 5, 8) and spectra.intensity.dtype == np.uint16
    np.testing.assert_allclose(spectra.axis[:2], [-0.5, -0.49])


def test_unmix_cli_takes_beam_energy_and_elements_from_hspy(tmp_path, eds_map):
    import json
    from speclearn.cli.main import main
    eds_map[0].save(tmp_path / "map.hspy")
    code = main(["unmix", "train", "--spectra", str(tmp_path / "map.hspy"), "--components", "2", "--bin", "2",
                 "--out", str(tmp_path / "out")])
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["elements"] == ["Fe", "Pt"] and summary["beam_kv"] == 200.0
    assert set(summary["composition_weight_fraction"]["component_0"]) == {"Fe", "Pt"}


def test_non_uniform_axis_round_trips_through_hyperspy():
    from speclearn.core.spectra import Spectra
    axis = np.sort(1e7 / np.linspace(500.0, 900.0, 30))  # wavenumbers from an even wavelength grid
    spectra = Spectra(np.random.default_rng(0).uniform(size=(4, 30)), axis, axis_kind="wavenumber")
    signal = interop.to_hyperspy(spectra)
    assert not signal.axes_manager.signal_axes[0].is_uniform
    back = interop.from_hyperspy(signal)
    np.testing.assert_allclose(back.axis, axis)
    assert back.axis_kind == "wavenumber" and back.axis_unit == "cm-1"
    np.testing.assert_array_equal(back.values(), spectra.values())
