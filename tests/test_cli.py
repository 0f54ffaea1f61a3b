"""The foundation commands, and the CLI's error contract: one line, exit 2, no traceback unless --debug."""
from __future__ import annotations

import numpy as np

from speclearn.io import read_spectra, write_spectra


def test_help_lists_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "inspect" in out and "preprocess" in out and "demo" in out


def test_inspect_reports_shape_axis_values(cli, tmp_path, spectra):
    path = write_spectra(spectra, tmp_path / "s.csv")
    code, out, _ = cli("inspect", path)
    assert code == 0
    assert "12 x 64" in out and "wavelength 200 .. 300 nm" in out and "NaN/inf:   0" in out and "s00" in out
    assert cli("inspect", "--spectra", path)[1] == out  # spelled like every other command's input
    code, _, err = cli("inspect")
    assert code == 2 and "give one file" in err


def test_inspect_lazy_cube(cli, tmp_path):
    np.save(tmp_path / "cube.npy", np.ones((4, 5, 16)))
    code, out, _ = cli("inspect", tmp_path / "cube.npy", "--axis", "0:15")
    assert code == 0 and "4 x 5 x 16" in out and "lazy" in out


def test_invalid_file_exits_2_with_one_line(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,1,2,3\na,1,2\n")
    code, out, err = cli("inspect", bad)
    assert code == 2 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and "bad.csv" in err and "row 1" in err and "ragged" in err


def test_debug_shows_traceback(cli, tmp_path):
    code, _, err = cli("--debug", "inspect", tmp_path / "missing.csv")
    assert code == 2 and "Traceback" in err and "file not found" in err


def test_usage_error_exits_2(cli):
    code, _, _ = cli("preprocess", "--no-such-flag")
    assert code == 2


def test_preprocess_flags_write_result_and_keep_input(cli, tmp_path, spectra):
    source = write_spectra(spectra, tmp_path / "in.csv")
    before = source.read_bytes()
    out = tmp_path / "out.csv"
    code, _, err = cli("preprocess", "--spectra", source, "--out", out, "--crop", "210:290",
                       "--baseline", "snip", "--savgol", "7,2", "--normalize", "snv")
    assert code == 0, err
    result = read_spectra(out)
    assert result.axis.min() >= 210 and result.axis.max() <= 290
    np.testing.assert_allclose(result.values().mean(axis=1), 0, atol=1e-9)
    assert source.read_bytes() == before
    code, _, err = cli("preprocess", "--spectra", source, "--out", out, "--normalize", "max")
    assert code == 2 and "--overwrite" in err
    code, _, err = cli("preprocess", "--spectra", source, "--out", source, "--normalize", "max", "--overwrite")
    assert code == 2 and "overwrite an input" in err and source.read_bytes() == before


def test_preprocess_yaml_pipeline_and_zarr_stays_lazy(cli, tmp_path, spectra):
    image = spectra.with_intensity(spectra.values().reshape(3, 4, 64))
    source = write_spectra(image, tmp_path / "map.zarr")
    spec = tmp_path / "pipe.yaml"
    spec.write_text("steps:\n  - crop: {start: 220, stop: 280}\n  - normalize: {method: area}\n")
    code, _, err = cli("preprocess", "--spectra", source, "--out", tmp_path / "clean.zarr", "--pipeline", spec)
    assert code == 0, err
    result = read_spectra(tmp_path / "clean.zarr")
    assert result.is_image and result.is_lazy
    np.testing.assert_allclose(np.abs(result.values()).sum(axis=1), 1.0)


def test_preprocess_bad_yaml_step(cli, tmp_path, spectra):
    source = write_spectra(spectra, tmp_path / "in.csv")
    spec = tmp_path / "pipe.yaml"
    spec.write_text("- smooth: {}\n")
    code, _, err = cli("preprocess", "--spectra", source, "--out", tmp_path / "o.csv", "--pipeline", spec)
    assert code == 2 and "pipe.yaml" in err and "unknown step 'smooth'" in err


def test_preprocess_average_by_group(cli, tmp_path, spectra):
    source = write_spectra(spectra, tmp_path / "in.csv")
    meta = tmp_path / "meta.csv"
    spectra.meta.to_csv(meta)
    code, _, err = cli("preprocess", "--spectra", source, "--out", tmp_path / "avg.csv",
                       "--average-by", "group", "--metadata", meta)
    assert code == 0, err
    averaged = read_spectra(tmp_path / "avg.csv")
    assert averaged.ids == ["g0", "g1", "g2"]
    np.testing.assert_allclose(averaged.values()[0], spectra.values()[0::3].mean(axis=0), rtol=1e-8)


def test_demo_writes_report_and_respects_existing_output(cli, tmp_path, monkeypatch):
    """The fast demo sections (the ICP-MS one trains models for minutes and runs in the benchmark instead)."""
    from speclearn import demo

    monkeypatch.setattr(demo, "SECTIONS", [demo.nir_pls_section, demo.edx_unmixing_section])
    out = tmp_path / "demo"
    code, _, err = cli("demo", "--out", out)
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "leave-one-out RMSE" in html and "PSNMF" in html
    assert (out / "nir_pls.png").stat().st_size > 1000 and (out / "edx_unmixing_maps.png").exists()
    code, _, err = cli("demo", "--out", out)
    assert code == 2 and "--overwrite" in err


def test_bench_refuses_a_scale_the_benchmark_does_not_define(cli, tmp_path):
    code, _, err = cli("bench", "transfer", "--scale", "huge", "--out", tmp_path / "bench")
    assert code == 2 and "large" in err and "huge" in err
    assert not (tmp_path / "bench").exists()
