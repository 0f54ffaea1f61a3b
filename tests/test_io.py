"""Round trips for every writable format, readers on real files, and every bad CSV input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import WRITABLE, align_table, read_spectra, read_table_csv, write_spectra

EXSPY_DATA = Path(__import__("exspy").__file__).parent / "data"


@pytest.mark.parametrize("suffix", WRITABLE)
def test_round_trip_keeps_values_axis_ids(tmp_path, spectra, suffix):
    path = write_spectra(spectra, tmp_path / f"set{suffix}")
    back = read_spectra(path)
    np.testing.assert_allclose(back.values(), spectra.values(), rtol=1e-9)
    np.testing.assert_allclose(back.axis, spectra.axis)
    assert back.axis_kind == "wavelength" and back.axis_unit == "nm"
    if suffix != ".npy":
        assert back.ids == spectra.ids


@pytest.mark.parametrize("suffix", [".zarr", ".h5", ".npy"])
def test_spectrum_image_opens_lazily_and_round_trips(tmp_path, suffix):
    rng = np.random.default_rng(1)
    image = Spectra(rng.poisson(3.0, (6, 5, 32)).astype(float), np.linspace(0.1, 10, 32), axis_kind="energy")
    back = read_spectra(write_spectra(image, tmp_path / f"map{suffix}"))
    assert back.is_lazy and back.is_image and back.intensity.shape == (6, 5, 32)
    np.testing.assert_array_equal(back.values(), image.values())


def test_metadata_survives_xarray_layout(tmp_path, spectra):
    back = read_spectra(write_spectra(spectra, tmp_path / "set.zarr"))
    assert list(back.meta["group"]) == list(spectra.meta["group"])


def test_npy_cube_takes_axis_from_option(tmp_path):
    np.save(tmp_path / "cube.npy", np.ones((2, 3, 11)))
    cube = read_spectra(tmp_path / "cube.npy", axis="0:10")
    np.testing.assert_allclose(cube.axis, np.arange(11.0))
    assert read_spectra(tmp_path / "cube.npy").axis_kind == "channel"


@pytest.mark.parametrize("name", ["EDS_SEM_TM002.hspy", "EDS_TEM_FePt_nanoparticles.hspy"])
def test_reads_real_eds_spectra_shipped_with_exspy(name):
    real = read_spectra(EXSPY_DATA / name)
    assert real.axis_kind == "energy" and real.axis_unit == "keV"
    assert real.axis[-1] > 10 and real.values().sum() > 1000


def test_reads_real_msa_spectrum_shipped_with_exspy():
    real = read_spectra(EXSPY_DATA.parent / "tests" / "components" / "coreloss_spectrum.msa")
    assert real.n_spectra == 1 and real.axis_kind == "energy" and real.axis_unit == "eV"
    assert np.all(np.diff(real.axis) > 0) and np.isfinite(real.values()).all()


def test_reads_jcamp(tmp_path):
    text = "##TITLE=t\n##JCAMP-DX=4.24\n##DATA TYPE=INFRARED SPECTRUM\n##XUNITS=1/CM\n##YUNITS=ABSORBANCE\n" \
           "##FIRSTX=1000\n##LASTX=1004\n##NPOINTS=5\n##XFACTOR=1\n##YFACTOR=1\n##XYDATA=(X++(Y..Y))\n" \
           "1000 1 2 3 4 5\n##END=\n"
    (tmp_path / "s.jdx").write_text(text)
    spectrum = read_spectra(tmp_path / "s.jdx")
    np.testing.assert_allclose(spectrum.axis, [1000, 1001, 1002, 1003, 1004])
    np.testing.assert_allclose(spectrum.values()[0], [1, 2, 3, 4, 5])


def write(tmp_path: Path, text: str, name: str = "x.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BAD_CSV = {
    "missing": (None, "file not found"),
    "empty": ("", "file is empty"),
    "header": ("id,1,abc,3\na,1,2,3\n", "column 3: header cell 'abc' is not a number"),
    "first cell": ("name,1,2\na,1,2\n", "first header cell must be 'id'"),
    "ragged": ("id,1,2,3\na,1,2,3\nb,1,2\n", "row 2: ragged row: 3 fields"),
    "nan": ("id,1,2,3\na,1,2,3\nb,1,nan,3\n", "row 2 (id 'b'), column 3 (2)"),
    "inf": ("id,1,2,3\na,1,inf,3\n", "not a finite number"),
    "text value": ("id,1,2,3\na,1,x,3\n", "value 'x' is not a finite number"),
    "empty cell": ("id,1,2,3\na,1,,3\n", "missing value"),
    "duplicate id": ("id,1,2\na,1,2\nb,1,2\na,3,4\n", "duplicate id 'a' (also row 1)"),
    "non-monotonic": ("id,1,3,2\na,1,2,3\n", "axis is not monotonic"),
    "duplicated axis": ("id,1,2,2\na,1,2,3\n", "axis value 2 is duplicated"),
    "no rows": ("id,1,2\n", "no spectra"),
}


@pytest.mark.parametrize("case", BAD_CSV)
def test_bad_csv_names_file_place_and_problem(tmp_path, case):
    text, expected = BAD_CSV[case]
    path = tmp_path / "x.csv" if text is None else write(tmp_path, text)
    with pytest.raises(InputError) as err:
        read_spectra(path)
    assert expected in str(err.value) and "x.csv" in str(err.value)


def test_wrong_dimensionality_is_refused(tmp_path):
    np.save(tmp_path / "flat.npy", np.ones(10))
    with pytest.raises(InputError, match="flat.npy.*shape \\(10,\\)"):
        read_spectra(tmp_path / "flat.npy")


def test_targets_must_match_spectra_ids(tmp_path, spectra):
    targets = write(tmp_path, "id,Cd\n" + "".join(f"{i},1.0\n" for i in spectra.ids[:-1]) + "zz,2\n", "t.csv")
    table = read_table_csv(targets, numeric=True)
    with pytest.raises(InputError, match="t.csv.*have no row here, e.g. 's11'"):
        align_table(table, spectra, file=targets)
    table = table.drop("zz")
    with pytest.raises(InputError, match="no row here"):
        align_table(table, spectra, file=targets)
    full = pd.concat([table, pd.DataFrame({"Cd": [1.0, 2.0]}, index=pd.Index(["s11", "extra"], name="id"))])
    with pytest.raises(InputError, match="not among the spectra, e.g. 'extra'"):
        align_table(full, spectra, file=targets)


def test_table_reader_orders_by_spectra_and_checks_numbers(tmp_path, spectra):
    rows = "".join(f"{i},{n}\n" for n, i in enumerate(reversed(spectra.ids)))
    table = align_table(read_table_csv(write(tmp_path, "id,Cd\n" + rows, "t.csv"), numeric=True), spectra)
    assert list(table.index) == spectra.ids and table["Cd"].iloc[0] == len(spectra.ids) - 1
    with pytest.raises(InputError, match="row 1 \\(id 'a'\\), column 2 \\(Cd\\)"):
        read_table_csv(write(tmp_path, "id,Cd\na,lots\n", "bad.csv"), numeric=True)


def test_writing_never_overwrites_without_permission(tmp_path, spectra):
    path = write_spectra(spectra, tmp_path / "out.csv")
    before = path.read_bytes()
    with pytest.raises(InputError, match="already exists; pass --overwrite"):
        write_spectra(spectra.with_intensity(spectra.values() * 2), path)
    assert path.read_bytes() == before
    write_spectra(spectra.with_intensity(spectra.values() * 2), path, overwrite=True)
    np.testing.assert_allclose(read_spectra(path).values(), spectra.values() * 2)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_benchmark_results_are_written_atomically_as_json_or_text(tmp_path):
    import json

    from speclearn.io.atomic import write_result
    write_result(tmp_path / "r.json", {"error": np.float64(0.25), "n": np.int64(3), "rows": np.arange(2)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"error": 0.25, "n": 3, "rows": [0, 1]}
    write_result(tmp_path / "r.md", "| a |\n")
    assert (tmp_path / "r.md").read_text() == "| a |\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md"]  # no temporary files left


def test_benchmarks_measure_time_and_peak_memory_of_a_fresh_process():
    from speclearn.metrics import run_measured
    run = run_measured("speclearn.metrics:mean_confidence_interval", values=[1.0, 2.0, 3.0])
    assert run["result"]["mean"] == 2.0
    assert run["wall_s"] > 0 and run["cpu_s"] >= 0
    assert 10 < run["peak_rss_mb"] < 2000  # the child's own high-water mark, not the test process's


def test_markdown_table_fills_templates_and_functions_per_row():
    from speclearn.io.atomic import markdown_table

    lines = markdown_table([{"a": 1.234, "b": "x"}, {"a": 2, "b": "y"}], {"A": "{a:.1f}", "B too": lambda r: r["b"] + "!"})
    assert lines == ["| A | B too |", "|---|---|", "| 1.2 | x! |", "| 2.0 | y! |"]


def test_reads_the_csv_pandas_writes_for_a_frame_indexed_by_id(tmp_path):
    """`DataFrame.to_csv` leaves the index's header cell empty: read as the id column (leading zeros kept)."""
    from speclearn.io import read_table_csv
    frame = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], index=["007", "b"], columns=["400.5", "401.5"])
    frame.to_csv(tmp_path / "s.csv")
    spectra = read_spectra(tmp_path / "s.csv")
    assert spectra.ids == ["007", "b"] and list(spectra.axis) == [400.5, 401.5]
    pd.DataFrame({"label": ["x", "y"]}, index=["007", "b"]).to_csv(tmp_path / "t.csv")
    assert read_table_csv(tmp_path / "t.csv").index.tolist() == ["007", "b"]
