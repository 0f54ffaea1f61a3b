"""One CLI shape: `SYSTEM train ... --out MODEL`, `SYSTEM predict --model MODEL --spectra IN --out OUT`, old
spellings as hidden aliases with one deprecation line, `--report` HTML, `--quiet`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speclearn.cli.common import upgrade_argv
from speclearn.cli.main import SYSTEMS, build_app
from speclearn.io import write_spectra, write_table_csv


@pytest.mark.parametrize("old, new", [
    (["denoise", "apply", "--model", "m"], ["denoise", "predict", "--model", "m"]),
    (["transfer", "apply", "--secondary", "b", "--spectra", "x"], ["transfer", "predict", "--name", "b", "--spectra", "x"]),
    (["transfer", "train", "--primary", "p", "--secondary=s"], ["transfer", "train", "--targets", "p", "--spectra=s"]),
    (["unmix", "--cube", "c.zarr", "--out", "o"], ["unmix", "train", "--spectra", "c.zarr", "--out", "o"]),
    (["unmix", "apply", "--cube", "c"], ["unmix", "predict", "--spectra", "c"]),
    (["qa", "--model", "m"], ["qa", "predict", "--model", "m"]),
    (["generate", "--model", "m"], ["generate", "predict", "--model", "m"]),
    (["classify", "train", "--labels", "l"], ["classify", "train", "--targets", "l"]),
])
def test_old_spellings_are_rewritten_with_one_deprecation_line(old, new, capsys):
    assert upgrade_argv(old) == new
    err = capsys.readouterr().err
    assert "deprecated" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["quantify", "predict", "--spectra", "x"], ["unmix", "--help"], ["gamma", "train"],
                                  ["unmix"], ["inspect", "--cube"]])
def test_current_spellings_pass_unchanged(argv, capsys):
    assert upgrade_argv(argv) == argv and capsys.readouterr().err == ""


@pytest.mark.parametrize("system", ["quantify", "classify", "denoise", "transfer", "unmix", "qa", "generate"])
def test_every_system_has_train_and_predict(system):
    import typer.main
    group = typer.main.get_command(build_app([system])).commands[system]
    assert {"train", "predict"} <= set(group.commands)
    assert not {"apply"} & set(group.commands)


def test_boolean_options_have_no_value_placeholder(cli):
    code, out, _ = cli("denoise", "predict", "--help")
    line = next(l for l in out.splitlines() if "--overwrite" in l)
    assert code == 0 and "--no-overwrite" in line and "<bool>" not in line and "--report" in out and "--quiet" in out
    assert set(SYSTEMS) >= {"denoise", "unmix"}


@pytest.fixture(scope="module")
def pls_model(tmp_path_factory):
    from speclearn.cli.main import main
    from speclearn.core.spectra import Spectra
    tmp_path = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    axis = np.linspace(200.0, 300.0, 64)
    spectra = Spectra(np.exp(-0.5 * ((axis - rng.uniform(220, 280, (12, 1))) / 3.0) ** 2) + rng.normal(0, .05, (12, 64)),
                      axis, axis_kind="wavelength")
    write_spectra(spectra, tmp_path / "x.csv")
    targets = pd.DataFrame({"fat": np.linspace(1, 5, spectra.n_spectra)}, index=spectra.meta.index)
    write_table_csv(targets, tmp_path / "y.csv")
    assert main([str(a) for a in ("quantify", "train", "--spectra", tmp_path / "x.csv", "--targets", tmp_path / "y.csv",
                                  "--method", "pls", "--calibration-fraction", "0.25", "--out", tmp_path / "m",
                                  "--report", tmp_path / "train.html", "--quiet")]) == 0
    return tmp_path


def _embedded_only(html: str) -> bool:
    return "data:image/png;base64," in html and "src='" not in html.replace("src='data:", "")


def test_train_and_predict_reports_are_self_contained(cli, pls_model):
    folder = pls_model
    train = (folder / "train.html").read_text()
    assert _embedded_only(train) and "Fit to the training targets" in train and "quantify.pls" in train
    code, _, err = cli("quantify", "predict", "--model", folder / "m", "--spectra", folder / "x.csv",
                       "--out", folder / "p.csv", "--interval", "0.9", "--report", folder / "predict.html")
    assert code == 0, err
    html = (folder / "predict.html").read_text()
    assert _embedded_only(html) and "Results" in html and "fat_lo" in html and not list(folder.glob("*.png"))


def test_report_refuses_to_overwrite_before_any_work(cli, pls_model):
    folder = pls_model
    code, _, err = cli("quantify", "predict", "--model", folder / "m", "--spectra", folder / "x.csv",
                       "--out", folder / "p2.csv", "--report", folder / "train.html")
    assert code == 2 and "--overwrite" in err and not (folder / "p2.csv").exists()


def test_quiet_silences_status_lines_and_old_spelling_still_runs(cli, spectra, tmp_path):
    write_spectra(spectra, tmp_path / "x.csv")
    code, _, err = cli("denoise", "train", "--spectra", tmp_path / "x.csv", "--method", "classical",
                       "--out", tmp_path / "d", "--quiet")
    assert code == 0 and err == ""
    code, _, err = cli("denoise", "apply", "--model", tmp_path / "d", "--spectra", tmp_path / "x.csv",
                       "--out", tmp_path / "c.csv", "--report", tmp_path / "r.html")
    assert code == 0 and err.count("deprecated") == 1 and "denoise predict" in err
    assert "Output spectra" in (tmp_path / "r.html").read_text()
