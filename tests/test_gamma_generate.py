"""speclearn.gamma: ReVAE generation, `--method auto` ranking, CLI for both."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from speclearn.core.errors import InputError
from speclearn.gamma.generate import ReVAEGenerator
from speclearn.gamma.simulate import simulate_materials
from speclearn.models import load

MATERIALS = ("water", "salt", "TNT", "urea")


@pytest.fixture(scope="module")
def fitted():
    sim = simulate_materials("nai", 32, seed=4, materials=MATERIALS)
    return sim, ReVAEGenerator(epochs=200, hidden=128, batch_size=8, seed=0).fit(sim.spectra, sim.truth["material"])


def test_revae_generates_requested_materials(fitted):
    sim, model = fitted
    spectra, truth = model.generate(list(MATERIALS), 5, seed=1, counts=(1e5, 1e5))
    X = spectra.values()
    assert X.shape[0] == 20 and np.array_equal(X, np.round(X)) and (X >= 0).all()
    assert np.allclose(X.sum(axis=1), 1e5, rtol=0.05)
    assert truth["label"].tolist()[:6] == ["water"] * 5 + ["salt"]
    # a classifier trained on the simulated spectra names most generated ones as requested (chance: 1/4)
    from speclearn.gamma.materials_cnn import ClassicalMaterialClassifier
    named = ClassicalMaterialClassifier("knn").fit(sim.spectra, sim.truth["material"]).predict(spectra)["label"]
    assert (named.to_numpy() == truth["label"].to_numpy()).mean() >= 0.7


def test_revae_mixtures_seed_and_errors(fitted, tmp_path):
    _, model = fitted
    w = model.weights("water:3+salt:1")
    assert w[list(model.classes_).index("water")] == pytest.approx(0.75) and w.sum() == pytest.approx(1.0)
    _, truth = model.generate("water:0.5+salt:0.5", 2, seed=3)
    assert truth[["water", "salt"]].to_numpy().tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert truth["label"].iloc[0] == "salt:0.5+water:0.5"
    a, _ = model.generate("TNT", 3, seed=7)
    b, _ = load(model.save(tmp_path / "m"), ReVAEGenerator).generate("TNT", 3, seed=7)
    assert np.array_equal(a.values(), b.values())
    with pytest.raises(InputError, match="unknown material"):
        model.generate("gold", 1)
    with pytest.raises(InputError, match="not a number"):
        model.generate("water:lots", 1)


def test_revae_domain_condition_generates_the_requested_setting(tmp_path):
    """Trained on two settings (a second with broader peaks and weaker inelastic lines), each
    domain's generated spectra sit nearer that setting's simulation than the other's."""
    from speclearn.core.spectra import Spectra
    from speclearn.gamma.generate import grid_counts
    from speclearn.gamma.grid import sqrt_grid
    from speclearn.gamma.materials_cnn import GRID
    nominal = simulate_materials("nai", 32, seed=4, materials=MATERIALS)
    other = simulate_materials("nai", 32, seed=5, materials=MATERIALS, resolution=1.6, inelastic=0.4)
    both = Spectra(np.vstack([grid_counts(nominal.spectra), grid_counts(other.spectra)]),
                   sqrt_grid(*GRID), axis_kind="energy", axis_unit="keV")
    labels = list(nominal.truth["material"]) + list(other.truth["material"])
    model = ReVAEGenerator(epochs=200, hidden=128, batch_size=8, seed=0).fit(
        both, labels, domains=["nominal"] * 32 + ["other"] * 32)
    assert model.domains_ == ["nominal", "other"]
    mean = {}
    for name, sim in (("nominal", nominal), ("other", other)):
        counts = grid_counts(sim.spectra)
        mean[name] = (counts / counts.sum(axis=1, keepdims=True)).mean(axis=0)
    for domain in ("nominal", "other"):
        spectra, _ = model.generate(list(MATERIALS), 8, seed=1, counts=(1e6, 1e6), domain=domain)
        shares = (spectra.values() / spectra.values().sum(axis=1, keepdims=True)).mean(axis=0)
        distance = {k: np.abs(shares - v).sum() for k, v in mean.items()}
        assert min(distance, key=distance.get) == domain
    with pytest.raises(InputError, match="name the domain"):
        model.generate("water", 1)
    with pytest.raises(InputError, match="domain 'measured'"):
        model.generate("water", 1, domain="measured")
    a, _ = model.generate("TNT", 2, seed=7, domain="other")
    b, _ = load(model.save(tmp_path / "m"), ReVAEGenerator).generate("TNT", 2, seed=7, domain="other")
    assert np.array_equal(a.values(), b.values())


def test_auto_ranks_material_candidates():
    from speclearn.gamma.auto import select_material_classifier
    sim = simulate_materials("nai", 24, seed=6, materials=MATERIALS)
    test = simulate_materials("nai", 20, seed=7, materials=MATERIALS)
    methods = ("plsda", "svm", "knn")  # the CNNs are left out here: they train for minutes
    winner, ranking = select_material_classifier(sim.spectra, sim.truth["material"], epochs=3, seed=0, methods=methods)
    rows = {r["candidate"]: r for r in ranking.rows}
    assert set(rows) == set(methods) and ranking.splitter == "StratifiedKFold"
    scored = {k: r["score"] for k, r in rows.items() if r["score"] is not None}
    assert set(methods) == set(scored)
    assert scored[ranking.winner] == min(scored.values())
    accuracy = (winner.predict(test.spectra)["label"] == test.truth["material"].to_numpy()).mean()
    assert accuracy > 0.8


def test_cli_revae_generate_and_auto(cli, tmp_path):
    code, _, err = cli("simulate", "gamma", "--mode", "materials", "--n", "18", "--seed", "1", "--out", tmp_path / "mat")
    assert code == 0, err
    code, _, err = cli("gamma", "train", "--spectra", tmp_path / "mat" / "spectra.csv", "--labels",
                       tmp_path / "mat" / "labels.csv",
                       "--method", "revae", "--epochs", "5", "--out", tmp_path / "gen")
    assert code == 0, err
    code, _, err = cli("gamma", "generate", "--model", tmp_path / "gen", "--request", "water", "--request",
                       "water:0.5+salt:0.5", "--n", "3", "--out", tmp_path / "out")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "out" / "labels.csv")["label"].tolist()[:3] == ["water"] * 3
    assert pd.read_csv(tmp_path / "out" / "spectra.csv", index_col=0).shape[0] == 6
    code, _, err = cli("gamma", "generate", "--model", tmp_path / "gen", "--request", "gold", "--out", tmp_path / "bad")
    assert code == 2 and "unknown material" in err
    code, _, err = cli("gamma", "train", "--spectra", tmp_path / "mat" / "spectra.csv", "--targets",
                       tmp_path / "mat" / "targets.csv", "--method", "auto", "--epochs", "2", "--out", tmp_path / "comp")
    assert code == 0, err
    config = json.loads((tmp_path / "comp" / "config.json").read_text())
    assert {r["candidate"] for r in config["extra"]["selection"]["rows"]} == {"ae", "nnls"}
