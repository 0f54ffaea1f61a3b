"""Classification: every method beats chance, CNN persistence round trip, CLI and bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speclearn.classify import CNNClassifier, SpectralClassifier
from speclearn.models import load, methods
from speclearn.classify.benchmark import load_coffee_spectra
from speclearn.classify.pretraining import simulate_band_classes
from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import write_spectra, write_table_csv

FAST_CNN = {"epochs": 25, "pretrain_epochs": 2, "pretrain_classes": 4, "pretrain_per_class": 8, "device": "cpu",
            "learning_rate": 3e-3}


def _fast(name: str, cls, **extra):
    return cls(**FAST_CNN, **extra) if name == "cnn" else cls(**extra)


@pytest.fixture(scope="module")
def separable() -> tuple[Spectra, pd.Series]:
    """Three simulated band 'materials' on 128 channels, 14 spectra each (seed unrelated to pretraining)."""
    X, codes = simulate_band_classes(128, n_classes=3, n_per_class=14, n_families=3, seed=42)
    ids = pd.Index([f"m{i:03d}" for i in range(len(X))], name="id")
    spectra = Spectra(X, np.linspace(400, 1800, 128), axis_kind="wavenumber", meta=pd.DataFrame(index=ids))
    return spectra, pd.Series(np.array(["alpha", "beta", "gamma"])[codes], index=ids)


def _split(spectra: Spectra, labels: pd.Series, every: int = 2):
    train = [i for k, i in enumerate(spectra.ids) if k % every]
    test = [i for k, i in enumerate(spectra.ids) if not k % every]
    return spectra.select(train), labels.loc[train], spectra.select(test), labels.loc[test]


@pytest.mark.parametrize("method", ["cnn", "knn", "svm", "rf", "plsda"])
def test_every_method_beats_chance_on_separable_simulated_set(method, separable):
    train_x, train_y, test_x, test_y = _split(*separable)
    predicted = _fast(method, methods("classify")[method], seed=0).fit(train_x, train_y).predict(test_x)
    accuracy = np.mean(predicted["class"].to_numpy() == test_y.to_numpy())
    assert accuracy > 0.8, accuracy  # chance is 1/3
    assert np.allclose(predicted[["top1_probability", "top2_probability", "top3_probability"]].sum(axis=1), 1.0,
                       atol=1e-6)
    assert (predicted["top1_probability"] >= predicted["top2_probability"]).all()
    assert (predicted["class"] == predicted["top1"]).all()


@pytest.mark.parametrize("method", ["knn", "svm", "plsda"])
def test_classical_methods_beat_chance_on_coffee(method):
    spectra, labels = load_coffee_spectra()
    train_x, train_y, test_x, test_y = _split(spectra, labels)
    predicted = methods("classify")[method]().fit(train_x, train_y).predict(test_x)
    assert np.mean(predicted["class"].to_numpy() == test_y.to_numpy()) > 0.6  # chance is 1/3


def test_cnn_beats_chance_on_coffee():
    spectra, labels = load_coffee_spectra()
    train_x, train_y, test_x, test_y = _split(spectra, labels)
    cnn = CNNClassifier(epochs=40, pretrain=False, device="cpu", seed=0).fit(train_x, train_y)
    assert np.mean(cnn.predict(test_x)["class"].to_numpy() == test_y.to_numpy()) > 0.6


def test_cnn_save_load_round_trip_gives_identical_probabilities(separable, tmp_path):
    spectra, labels = separable
    cnn = CNNClassifier(**{**FAST_CNN, "epochs": 5}, seed=3).fit(spectra, labels)
    cnn.save(tmp_path / "model")
    loaded = load(tmp_path / "model", SpectralClassifier)
    assert isinstance(loaded, CNNClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(spectra), cnn.predict_proba(spectra))
    assert list(loaded.classes_) == ["alpha", "beta", "gamma"]


def test_fine_tuning_starts_from_the_pretrained_features(separable):
    spectra, labels = separable
    encoder = CNNClassifier(**FAST_CNN, seed=0).pretrained_encoder(spectra.n_channels)
    frozen = CNNClassifier(**{**FAST_CNN, "epochs": 1, "learning_rate": 0.0}, seed=0).fit(spectra, labels,
                                                                                          encoder=encoder)
    conv = frozen.net_.features[0][0].weight.detach().numpy()
    np.testing.assert_array_equal(conv, encoder["features.0.0.weight"])
    scratch = CNNClassifier(**{**FAST_CNN, "epochs": 1, "learning_rate": 0.0}, pretrain=False, seed=0)
    assert not np.allclose(scratch.fit(spectra, labels).net_.features[0][0].weight.detach().numpy(), conv)


def test_saved_classifier_refuses_other_axis(separable, tmp_path):
    spectra, labels = separable
    model = methods("classify")["knn"]().fit(spectra, labels)
    model.save(tmp_path / "m")
    other = Spectra(spectra.values()[:, :100], spectra.axis[:100], axis_kind="wavenumber")
    with pytest.raises(InputError, match="channels"):
        load(tmp_path / "m", SpectralClassifier).predict(other)


# --- CLI ---------------------------------------------------------------------------------------
@pytest.fixture
def files(separable, tmp_path):
    spectra, labels = separable
    x = write_spectra(spectra, tmp_path / "X.csv")
    y = write_table_csv(labels.to_frame("label"), tmp_path / "labels.csv")
    return tmp_path, x, y, labels


@pytest.mark.parametrize("method", ["plsda", "cnn"])
def test_cli_train_and_predict(cli, files, method):
    folder, x, y, labels = files
    extra = ["--epochs", "15", "--pretrain-epochs", "1", "--device", "cpu"] if method == "cnn" else []
    code, _, err = cli("classify", "train", "--spectra", x, "--targets", y, "--out", folder / "model",
                       "--method", method, *extra)
    assert code == 0, err
    code, _, err = cli("classify", "predict", "--model", folder / "model", "--spectra", x, "--out", folder / "p.csv")
    assert code == 0, err
    table = pd.read_csv(folder / "p.csv", index_col="id")
    assert list(table.columns) == ["class", "probability", "top1", "top1_probability", "top2", "top2_probability",
                                   "top3", "top3_probability"]
    assert np.mean(table.loc[labels.index, "class"].to_numpy() == labels.to_numpy()) > 0.8
    code, _, err = cli("classify", "predict", "--model", folder / "model", "--spectra", x, "--out", folder / "p.csv")
    assert code == 2 and "--overwrite" in err


def test_cli_accepts_a_class_column(cli, files):
    folder, x, _, labels = files
    y = write_table_csv(labels.to_frame("class"), folder / "classes.csv")
    code, _, err = cli("classify", "train", "--spectra", x, "--targets", y, "--out", folder / "m", "--method", "knn")
    assert code == 0, err


def test_cli_class_with_one_example(cli, files):
    folder, x, _, labels = files
    bad = labels.copy()
    bad.iloc[0] = "lonely"
    y = write_table_csv(bad.to_frame("label"), folder / "bad.csv")
    code, _, err = cli("classify", "train", "--spectra", x, "--targets", y, "--out", folder / "m", "--method", "knn")
    assert code == 2
    assert "'lonely' has only one example" in err and "bad.csv" in err


def test_cli_labels_not_matching_ids(cli, files):
    folder, x, _, labels = files
    bad = labels.rename(index={labels.index[4]: "stranger"})
    y = write_table_csv(bad.to_frame("label"), folder / "bad.csv")
    code, _, err = cli("classify", "train", "--spectra", x, "--targets", y, "--out", folder / "m", "--method", "knn")
    assert code == 2
    assert "bad.csv" in err and "m004" in err


def test_cli_missing_label_value_and_missing_option(cli, files):
    folder, x, _, labels = files
    (folder / "gap.csv").write_text("id,label\n" + "\n".join(
        f"{i},{'' if k == 2 else v}" for k, (i, v) in enumerate(labels.items())) + "\n")
    code, _, err = cli("classify", "train", "--spectra", x, "--targets", folder / "gap.csv", "--out", folder / "m")
    assert code == 2 and "missing label" in err and "row 3" in err
    code, _, err = cli("classify", "train", "--spectra", x, "--out", folder / "m")
    assert code == 2 and "--targets" in err
    code, _, err = cli("classify", "train", "--spectra", x, "--targets", folder / "gap.csv", "--out", folder / "m",
                       "--method", "magic")
    assert code == 2 and "unknown --method" in err
