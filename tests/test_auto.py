"""`--method auto`: candidates ranked by cross-validation, collapse detection, internal standards, the
ranking stored in the model folder and shown by `speclearn inspect`."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import write_spectra, write_table_csv
from speclearn.models.selection import Candidate, Collapsed, folds, rank
from speclearn.quantify.base import collapse_reason


@pytest.fixture(scope="module")
def fermentation(tmp_path_factory):
    from speclearn.demo import load_fermentation

    folder = tmp_path_factory.mktemp("ferm")
    spectra, glucose = load_fermentation()
    write_spectra(spectra, folder / "nir.csv")
    write_table_csv(glucose.to_frame("glucose (g/L)"), folder / "glucose.csv")
    return folder


def test_quantify_auto_picks_pls_on_property_targets_where_the_physics_default_failed(cli, fermentation):
    f = fermentation
    code, _, err = cli("quantify", "train", "--spectra", f / "nir.csv", "--targets", f / "glucose.csv",
                       "--out", f / "wnnls", "--method", "wnnls")
    assert code == 2 and "element" in err  # the old default
    code, _, err = cli("quantify", "train", "--spectra", f / "nir.csv", "--targets", f / "glucose.csv",
                       "--out", f / "is", "--internal-standard", "Rh")
    assert code == 2 and "ICP-MS" in err  # no internal standard for property targets
    code, _, err = cli("quantify", "train", "--spectra", f / "nir.csv", "--targets", f / "glucose.csv",
                       "--out", f / "auto", "--budget-s", "1")
    assert code == 0, err
    config = json.loads((f / "auto" / "config.json").read_text())
    assert config["model_type"] == "quantify.pls"
    ranking = config["extra"]["selection"]
    assert ranking["winner"].startswith("pls") and ranking["cv"] == "KFold x 3 repeats" and ranking["folds"] == 15
    scored = [r for r in ranking["rows"] if r["score"] is not None]
    assert min(r["score"] for r in scored) == next(r["score"] for r in scored if r["candidate"] == ranking["winner"])
    assert config["extra"]["unit"] == "g/L" and config["extra"]["limits"] is None
    code, out, err = cli("quantify", "predict", "--model", f / "auto", "--spectra", f / "nir.csv",
                         "--out", f / "pred.csv", "--interval", "0.8")
    assert code == 0, err
    assert not (f / "pred.flags.csv").exists()  # no LOD/LOQ flags for a property
    pred = pd.read_csv(f / "pred.csv")
    assert (pred["glucose (g/L)_lo"] < pred["glucose (g/L)_hi"]).all()
    code, out, _ = cli("inspect", f / "auto")
    assert code == 0 and ranking["winner"] in out and "sd over folds" in out


def test_collapsed_candidate_loses_and_collapse_reason():
    Y = np.linspace(0, 1, 20)[:, None]
    assert "near-constant" in collapse_reason(Y, np.full_like(Y, 0.5) + 1e-9 * Y, ["fat"])
    assert collapse_reason(Y, Y + 0.01, ["fat"]) is None

    def evaluate(candidate, train, test):
        return (0.1 if candidate.name == "constant" else 0.5), candidate.name

    def check(candidate, payloads):
        if candidate.name == "constant":
            raise Collapsed("near-constant predictions")

    ranking = rank([Candidate("constant"), Candidate("good"), Candidate("skip", excluded="not for these data")],
                   evaluate, folds(20, seed=0), metric="rmse", check=check)
    rows = {r["candidate"]: r for r in ranking.rows}
    assert ranking.winner == "good" and rows["constant"]["excluded"].startswith("collapsed")
    assert rows["skip"]["excluded"] == "not for these data" and rows["skip"]["score"] is None
    with pytest.raises(InputError, match="no candidate"):
        rank([Candidate("constant")], evaluate, folds(20, seed=0), metric="rmse", check=check)
    assert folds(12, ["a", "a", "b", "b", "c", "c"] * 2)[0] == "GroupKFold"


@pytest.fixture(scope="module")
def icpms(tmp_path_factory):
    from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms

    folder = tmp_path_factory.mktemp("icpms")
    instrument = ICPMSInstrument(mz_min=42.0, mz_max=108.0, n_channels=900)
    for standard in ("Rh", "Sc"):
        config = ICPMSConfig(analytes=("Cr", "Ni", "Cu"), internal_standard=standard, interferents=("Zr",),
                             instrument=instrument)
        for name, n, seed in (("train", 30, 1), ("test", 15, 2)):
            data = simulate_icpms(n, seed=seed, config=config, workers=1)
            write_spectra(data.spectra, folder / f"{standard}_{name}.csv")
            write_table_csv(data.targets, folder / f"{standard}_{name}_targets.csv")
    return folder


def _median_relative_error(pred_path, truth_path) -> float:
    pred, truth = pd.read_csv(pred_path, index_col="id"), pd.read_csv(truth_path, index_col="id")
    return float(np.median(np.abs(pred[truth.columns].to_numpy() / truth.to_numpy() - 1)))


def test_icpms_auto_finds_rh_and_explicit_sc_works(cli, icpms):
    f = icpms
    code, _, err = cli("quantify", "train", "--spectra", f / "Rh_train.csv", "--targets", f / "Rh_train_targets.csv",
                       "--out", f / "auto", "--budget-s", "1")  # the physics candidate comes first
    assert code == 0, err
    assert "internal standard: Rh" in err
    config = json.loads((f / "auto" / "config.json").read_text())
    assert config["model_type"] == "quantify.wnnls" and config["params"]["internal_standard"] == "Rh"
    assert config["extra"]["unit"] == "ug/L"
    code, _, err = cli("quantify", "predict", "--model", f / "auto", "--spectra", f / "Rh_test.csv",
                       "--out", f / "auto.csv")
    assert code == 0, err
    assert _median_relative_error(f / "auto.csv", f / "Rh_test_targets.csv") < 0.05
    flags = pd.read_csv(f / "auto.flags.csv", index_col="id")
    assert flags["internal_standard_recovery"].between(0.5, 2).all()
    code, _, err = cli("quantify", "train", "--spectra", f / "Sc_train.csv", "--targets", f / "Sc_train_targets.csv",
                       "--out", f / "sc", "--method", "wnnls", "--internal-standard", "Sc")
    assert code == 0, err
    code, _, err = cli("quantify", "predict", "--model", f / "sc", "--spectra", f / "Sc_test.csv",
                       "--out", f / "sc.csv")
    assert code == 0, err
    assert _median_relative_error(f / "sc.csv", f / "Sc_test_targets.csv") < 0.05
    code, _, err = cli("quantify", "train", "--spectra", f / "Sc_train.csv", "--targets", f / "Sc_train_targets.csv",
                       "--out", f / "bad", "--method", "wnnls", "--internal-standard", "Xx")
    assert code == 2 and "element symbol" in err


def _replicates(noise: float, seed: int = 0):
    from speclearn.core.spectra import Spectra

    rng = np.random.default_rng(seed)
    axis = np.linspace(0, 100, 200)
    groups = np.repeat(np.arange(12), 4)
    centres = rng.uniform(20, 80, (12, 3))
    clean = sum(np.exp(-0.5 * ((axis - centres[groups, k, None]) / 4.0) ** 2) for k in range(3))
    ids = pd.Index([f"r{i:02d}" for i in range(len(groups))], name="id")
    return (Spectra(clean + rng.normal(0, noise, clean.shape), axis, meta=pd.DataFrame(index=ids)),
            pd.DataFrame({"group": [f"g{g}" for g in groups]}, index=ids))


@pytest.mark.parametrize("noise, expect_identity", [(0.0, True), (0.2, False)])
def test_denoise_auto_identity_on_clean_data_else_a_smoother(cli, tmp_path, noise, expect_identity):
    spectra, groups = _replicates(noise)
    write_spectra(spectra, tmp_path / "x.csv")
    write_table_csv(groups, tmp_path / "groups.csv")
    code, _, err = cli("denoise", "train", "--spectra", tmp_path / "x.csv", "--groups", tmp_path / "groups.csv",
                       "--out", tmp_path / "model", "--budget-s", "1")
    assert code == 0, err
    ranking = json.loads((tmp_path / "model" / "config.json").read_text())["extra"]["selection"]
    assert ranking["cv"] == "GroupKFold"
    assert (ranking["winner"] == "identity") == expect_identity, ranking["winner"]
    scores = {r["candidate"]: r["score"] for r in ranking["rows"] if r["score"] is not None}
    assert scores[ranking["winner"]] <= scores["identity"]
    code, _, err = cli("denoise", "predict", "--model", tmp_path / "model", "--spectra", tmp_path / "x.csv",
                       "--out", tmp_path / "y.csv")
    assert code == 0, err
    if expect_identity:
        np.testing.assert_allclose(pd.read_csv(tmp_path / "y.csv", index_col="id").to_numpy(), spectra.values(),
                                   atol=1e-6)
    code, _, err = cli("denoise", "train", "--spectra", tmp_path / "x.csv", "--out", tmp_path / "blind",
                       "--budget-s", "1")  # no groups: blind-spot loss
    assert code == 0, err
    assert "blind-spot" in json.loads((tmp_path / "blind" / "config.json").read_text())["extra"]["selection"]["metric"]


def test_transfer_auto_beats_none_on_a_simulated_pair(cli, tmp_path):
    from speclearn.core.spectra import Spectra

    rng = np.random.default_rng(0)
    axis = np.linspace(1000, 1600, 150)
    n = 40
    amounts = rng.uniform(0, 1, (n, 3))
    bands = np.stack([np.exp(-0.5 * ((axis - c) / 15) ** 2) for c in (1150, 1300, 1450)])
    ids = pd.Index([f"p{i:02d}" for i in range(n)], name="id")
    primary = Spectra(amounts @ bands + rng.normal(0, 0.002, (n, axis.size)), axis, meta=pd.DataFrame(index=ids))
    shifted = np.stack([np.exp(-0.5 * ((axis - c - 8) / 20) ** 2) for c in (1150, 1300, 1450)])  # other instrument
    secondary = Spectra(0.7 * amounts @ shifted + rng.normal(0, 0.002, (n, axis.size)), axis,
                        meta=pd.DataFrame(index=ids))
    write_spectra(primary, tmp_path / "p.csv")
    write_spectra(secondary, tmp_path / "s.csv")
    code, _, err = cli("transfer", "train", "--targets", tmp_path / "p.csv", "--spectra", tmp_path / "s.csv",
                       "--out", tmp_path / "model", "--budget-s", "1", "--baseline-window", "300",
                       "--baseline-sigma", "1")
    assert code == 0, err
    ranking = json.loads((tmp_path / "model" / "config.json").read_text())["extra"]["selection"]
    scores = {r["candidate"]: r["score"] for r in ranking["rows"] if r["score"] is not None}
    assert ranking["winner"] != "none" and scores[ranking["winner"]] < 0.5 * scores["none"]
    code, out, _ = cli("inspect", tmp_path / "model")
    assert code == 0 and "none" in out and ranking["winner"] in out


def test_classify_auto_ranks_by_grouped_cv(cli, tmp_path):
    from speclearn.core.spectra import Spectra

    rng = np.random.default_rng(0)
    axis = np.linspace(400, 800, 100)
    classes = np.repeat([0, 1, 2], 12)
    centres = np.array([500, 600, 700])[classes]
    ids = pd.Index([f"c{i:02d}" for i in range(len(classes))], name="id")
    X = np.exp(-0.5 * ((axis - centres[:, None]) / 20) ** 2) + rng.normal(0, 0.05, (len(classes), axis.size))
    write_spectra(Spectra(X, axis, meta=pd.DataFrame(index=ids)), tmp_path / "x.csv")
    write_table_csv(pd.DataFrame({"label": [f"m{c}" for c in classes]}, index=ids), tmp_path / "y.csv")
    write_table_csv(pd.DataFrame({"sample": [f"s{i // 2}" for i in range(len(classes))]}, index=ids),
                    tmp_path / "g.csv")  # pairs of replicates
    code, _, err = cli("classify", "train", "--spectra", tmp_path / "x.csv", "--targets", tmp_path / "y.csv",
                       "--groups", tmp_path / "g.csv", "--out", tmp_path / "model", "--budget-s", "1")
    assert code == 0, err
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    ranking = config["extra"]["selection"]
    assert ranking["cv"] == "StratifiedGroupKFold" and config["model_type"] == "classify." + ranking["winner"]
    assert next(r["score"] for r in ranking["rows"] if r["candidate"] == ranking["winner"]) < 0.2
    code, _, err = cli("classify", "predict", "--model", tmp_path / "model", "--spectra", tmp_path / "x.csv",
                       "--out", tmp_path / "p.csv")
    assert code == 0, err


def test_interval_pls_stage_finds_the_informative_part_of_the_axis():
    """The target lives in the first half of the axis; the second half carries strong unrelated bands."""
    from speclearn.quantify.auto import make, normalised_rmse, range_candidates

    rng = np.random.default_rng(3)
    axis = np.linspace(1000.0, 2000.0, 100)
    y = rng.uniform(0, 10, 40)
    signal = y[:, None] * np.exp(-0.5 * ((axis - 1250) / 40) ** 2)
    clutter = sum(rng.uniform(0, 30, (40, 1)) * np.exp(-0.5 * ((axis - c) / w) ** 2)
                  for c, w in ((1600, 30), (1700, 60), (1850, 25), (1950, 40), (1550, 15)))
    spectra = Spectra(signal + clutter + rng.normal(0, 0.3, (40, 100)), axis, axis_kind="wavenumber")
    targets = pd.DataFrame({"y": y}, index=spectra.meta.index)
    ids = np.asarray(spectra.ids)

    def evaluate(candidate, train, test):
        model = make(candidate).fit(spectra.select(list(ids[train])), targets.iloc[train])
        predicted = model.predict(spectra.select(list(ids[test]))).to_numpy(float)
        return normalised_rmse(targets.to_numpy(float)[test], predicted, np.array([y.std()])), None

    best = Candidate("pls-none", {"method": "pls", "preprocess": "none", "seed": 0})
    ranking = rank([best, *range_candidates(best, axis)], evaluate, folds(40, n_splits=4, seed=0), metric="nrmse")
    scores = {r["candidate"]: r["score"] for r in ranking.rows}
    assert ranking.winner != "pls-none" and scores[ranking.winner] < scores["pls-none"]
    assert ranking.candidate(ranking.winner).params["stop"] <= 1750
