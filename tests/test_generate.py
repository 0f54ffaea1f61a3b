"""Conditional VAE: conditioning respected, seeded, persistence, both CLI forms and bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cross_decomposition import PLSRegression

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.generate import ConditionalVAE
from speclearn.io import read_spectra, write_spectra, write_table_csv
from speclearn.models import load

COMPONENTS = ("A", "B")


def mixtures(n: int, seed: int) -> tuple[Spectra, pd.DataFrame]:
    """Two-component band mixtures: intensity = a * band_A + b * band_B + shift-free noise."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(0.0, 1.0, 96)
    pure = np.stack([np.exp(-0.5 * ((axis - 0.3) / 0.04) ** 2), np.exp(-0.5 * ((axis - 0.7) / 0.06) ** 2)])
    amounts = rng.uniform(0.0, 10.0, (n, 2))
    scale = rng.lognormal(0, 0.03, (n, 1))
    X = scale * (amounts @ pure) + 0.5 + rng.normal(0, 0.05, (n, axis.size))
    ids = pd.Index([f"x{i:03d}" for i in range(n)], name="id")
    return (Spectra(X, axis * 100 + 400, axis_kind="wavelength", meta=pd.DataFrame(index=ids)),
            pd.DataFrame(amounts, index=ids, columns=list(COMPONENTS)))


@pytest.fixture(scope="module")
def fitted() -> tuple[ConditionalVAE, Spectra, pd.DataFrame]:
    spectra, targets = mixtures(160, seed=0)
    vae = ConditionalVAE(epochs=120, latent_dim=2, hidden=64, batch_size=64, learning_rate=2e-3, device="cpu", seed=0,
                         patience=30).fit(spectra, targets)
    return vae, spectra, targets


def test_generated_spectra_respect_the_requested_composition(fitted):
    vae, spectra, targets = fitted
    pls = PLSRegression(2).fit(spectra.values(), targets.to_numpy())
    real_error = np.sqrt(np.mean((pls.predict(spectra.values()) - targets.to_numpy()) ** 2))
    wanted = pd.DataFrame({"A": [1.0, 5.0, 9.0, 2.0], "B": [8.0, 5.0, 1.0, 2.0]},
                          index=pd.Index(list("pqrs"), name="id"))
    generated, conditions = vae.generate(wanted, n_per_row=20, seed=1)
    assert generated.n_spectra == 80 and list(generated.ids[:2]) == ["p_g0", "p_g1"]
    np.testing.assert_array_equal(generated.axis, spectra.axis)
    predicted = pls.predict(generated.values())
    per_row = predicted.reshape(4, 20, 2).mean(axis=1)
    np.testing.assert_allclose(per_row, wanted.to_numpy(), atol=1.0)  # range of each component: 0..10
    spread = np.sqrt(np.mean((predicted - conditions.to_numpy()) ** 2))
    assert spread < 4 * real_error + 0.5, (spread, real_error)


def test_same_seed_same_output_and_save_load(fitted, tmp_path):
    vae, _, _ = fitted
    wanted = pd.DataFrame({"A": [3.0], "B": [4.0]}, index=pd.Index(["w"], name="id"))
    first = vae.generate(wanted, n_per_row=3, seed=5)[0].values()
    np.testing.assert_array_equal(first, vae.generate(wanted, n_per_row=3, seed=5)[0].values())
    assert not np.allclose(first, vae.generate(wanted, n_per_row=3, seed=6)[0].values())
    vae.save(tmp_path / "m")
    np.testing.assert_allclose(load(tmp_path / "m", ConditionalVAE).generate(wanted, n_per_row=3, seed=5)[0].values(),
                               first, rtol=1e-6, atol=1e-9)


def test_class_condition():
    spectra, amounts = mixtures(60, seed=2)
    labels = pd.DataFrame({"kind": np.where(amounts.A > amounts.B, "A-rich", "B-rich")}, index=amounts.index)
    vae = ConditionalVAE(epochs=60, latent_dim=2, hidden=64, device="cpu", seed=0).fit(spectra, labels)
    generated, _ = vae.generate(pd.DataFrame({"kind": ["A-rich", "B-rich"]}, index=pd.Index(["a", "b"], name="id")),
                                n_per_row=30, seed=0)
    X = generated.values()
    band_a, band_b = X[:, 28:30].mean(axis=1), X[:, 66:68].mean(axis=1)
    assert np.mean(band_a[:30] - band_b[:30]) > 1.0 and np.mean(band_b[30:] - band_a[30:]) > 1.0
    with pytest.raises(InputError, match="unknown class 'C-rich'"):
        vae.generate(pd.DataFrame({"kind": ["C-rich"]}, index=pd.Index(["c"], name="id")))


def test_cli_train_then_generate(cli, tmp_path):
    spectra, targets = mixtures(40, seed=3)
    x = write_spectra(spectra, tmp_path / "X.csv")
    t = write_table_csv(targets, tmp_path / "T.csv")
    code, _, err = cli("generate", "train", "--spectra", x, "--targets", t, "--out", tmp_path / "m", "--epochs", "5",
                       "--device", "cpu")
    assert code == 0, err
    wanted = write_table_csv(targets.iloc[:3], tmp_path / "W.csv")
    code, _, err = cli("generate", "predict", "--model", tmp_path / "m", "--targets", wanted, "--out", tmp_path / "G.csv",
                       "--n-per-row", "2", "--seed", "4", "--targets-out", tmp_path / "GT.csv")
    assert code == 0, err
    generated = read_spectra(tmp_path / "G.csv")
    assert generated.n_spectra == 6 and generated.axis_kind == "wavelength"
    np.testing.assert_allclose(generated.axis, spectra.axis)
    assert pd.read_csv(tmp_path / "GT.csv", index_col="id").index.tolist()[:2] == ["x000_g0", "x000_g1"]
    code, _, err = cli("generate", "predict", "--model", tmp_path / "m", "--targets", wanted, "--out", tmp_path / "G2.csv",
                       "--n-per-row", "2", "--seed", "4")
    assert code == 0
    np.testing.assert_array_equal(read_spectra(tmp_path / "G2.csv").values(), generated.values())
    # bad input: missing target column, missing option, targets not matching ids
    write_table_csv(targets[["A"]].iloc[:2], tmp_path / "onlyA.csv")
    code, _, err = cli("generate", "predict", "--model", tmp_path / "m", "--targets", tmp_path / "onlyA.csv", "--out",
                       tmp_path / "G3.csv")
    assert code == 2 and "missing column 'B'" in err and "onlyA.csv" in err
    code, _, err = cli("generate", "predict", "--model", tmp_path / "m", "--out", tmp_path / "G3.csv")
    assert code == 2 and "--targets" in err
    write_table_csv(targets.iloc[:-1], tmp_path / "short.csv")
    code, _, err = cli("generate", "train", "--spectra", x, "--targets", tmp_path / "short.csv", "--out",
                       tmp_path / "m2")
    assert code == 2 and "short.csv" in err and "x039" in err


def test_simulated_augmentation_is_chosen_only_where_it_lowers_the_held_out_error():
    from speclearn.generate.simulated import choose_simulated_augmentation

    def bands(amounts, rng, noise):
        axis = np.linspace(0.0, 1.0, 64)
        pure = np.stack([np.exp(-0.5 * ((axis - c) / 0.05) ** 2) for c in (0.3, 0.5, 0.7)])
        return amounts @ pure + rng.normal(0, noise, (len(amounts), axis.size))

    rng = np.random.default_rng(0)
    real_Y = rng.uniform(0, 10, (24, 3))
    groups = np.repeat(np.arange(12), 2)
    real = bands(real_Y, rng, 2.0)  # few, very noisy real spectra
    twins = bands(real_Y, rng, 0.05)
    new_Y = rng.uniform(0, 10, (240, 3))
    simulated = bands(new_Y, rng, 0.05)  # a faithful simulator: clean spectra at new compositions
    ratio, _ = choose_simulated_augmentation(real, real_Y, twins, groups, simulated, new_Y, components=3)
    assert ratio > 0
    wrong = bands(new_Y[:, ::-1], rng, 0.05)  # a simulator that swaps the components
    ratio, corrected = choose_simulated_augmentation(real, real_Y, twins, groups, wrong, new_Y, components=3)
    assert (ratio, corrected) == (0, False)
