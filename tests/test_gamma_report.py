"""`--report` on the gamma commands that train or predict (train, identify), and on every command that trains,
predicts, fits or flags with a model."""
from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest
import typer.main

from speclearn.cli.main import SYSTEMS

NAI = Path(__file__).parent / "data" / "gamma" / "nai_detector.spe"


def _embedded_only(html: str) -> bool:
    return "data:image/png;base64," in html and "src='" not in html.replace("src='data:", "")


@pytest.fixture(scope="module")
def materials(tmp_path_factory):
    from speclearn.cli.main import main
    out = tmp_path_factory.mktemp("gamma") / "mat"
    assert main(["simulate", "gamma", "--mode", "materials", "--detector", "nai", "--n", "36", "--out", str(out)]) == 0
    return out


def test_gamma_train_and_identify_write_self_contained_reports(cli, tmp_path, materials):
    spectra = materials / "spectra.csv"
    code, _, err = cli("gamma", "train", "--spectra", spectra, "--targets", materials / "targets.csv",
                       "--method", "nnls", "--out", tmp_path / "nnls", "--report", tmp_path / "train.html")
    assert code == 0, err
    html = (tmp_path / "train.html").read_text()
    assert _embedded_only(html) and "gamma train" in html and "Fit to the training targets" in html
    assert "gamma.composition-nnls" in html and not list(tmp_path.glob("*.png"))
    code, _, err = cli("gamma", "train", "--spectra", spectra, "--labels", materials / "labels.csv",
                       "--method", "knn", "--out", tmp_path / "knn", "--report", tmp_path / "knn.html", "--quiet")
    assert code == 0 and err == "", err
    html = (tmp_path / "knn.html").read_text()
    assert _embedded_only(html) and "Input spectra" in html and "Fit to the training targets" not in html
    code, _, err = cli("gamma", "identify", "--spectra", NAI, "--method", "peaks", "--out", tmp_path / "ids.csv",
                       "--report", tmp_path / "ids.html")
    assert code == 0, err
    html = (tmp_path / "ids.html").read_text()
    assert _embedded_only(html) and "Results" in html and "K-40" in html
    assert set(pd.read_csv(tmp_path / "ids.csv")["nuclide"]) >= {"K-40"}


def test_gamma_train_refuses_an_existing_report_before_any_work(cli, tmp_path, materials):
    (tmp_path / "r.html").write_text("keep")
    code, _, err = cli("gamma", "train", "--spectra", materials / "spectra.csv", "--targets", materials / "targets.csv", "--method", "nnls", "--out", tmp_path / "m",
                       "--report", tmp_path / "r.html")
    assert code == 2 and "--overwrite" in err and not (tmp_path / "m").exists()
    assert (tmp_path / "r.html").read_text() == "keep"


def test_every_train_and_predict_command_takes_report():
    missing, checked = [], []
    for system, (module, _) in SYSTEMS.items():
        group = typer.main.get_command(importlib.import_module(module).app)
        for name, command in getattr(group, "commands", {}).items():
            if name in ("train", "predict", "identify", "fit", "qa", "add-secondary", "generate", "denoise"):
                checked.append(f"{system} {name}")
                if "--report" not in {o for p in command.params for o in p.opts}:
                    missing.append(f"{system} {name}")
    assert missing == [] and len(checked) >= 24 and {"gamma train", "mrs fit", "mrs denoise", "transfer add-secondary"} <= set(checked)


def test_mrs_fit_and_qa_write_reports(cli, tmp_path):
    assert cli("simulate", "mrs", "--n", "2", "--seed", "1", "--transients", "4", "--out", tmp_path / "sim")[0] == 0
    code, _, err = cli("mrs", "fit", "--spectra", tmp_path / "sim" / "transients.npz", "--water",
                       tmp_path / "sim" / "water.npz", "--out", tmp_path / "conc.csv", "--report", tmp_path / "fit.html")
    assert code == 0, err
    assert "NAA_sd" in (tmp_path / "fit.html").read_text() and "mrs fit" in (tmp_path / "fit.html").read_text()
    code, _, err = cli("mrs", "qa", "--spectra", tmp_path / "sim" / "transients.npz", "--out", tmp_path / "flags.csv",
                       "--report", tmp_path / "qa.html", "--quiet")
    assert code == 0 and err == "", err
    assert "corrupted" in (tmp_path / "qa.html").read_text()
