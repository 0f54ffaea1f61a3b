"""Spectral transfer (seed 003): every method beats the mean spectrum, metrics, persistence, latent sharing, CLI."""
from __future__ import annotations

import copy
import platform

import numpy as np
import pandas as pd
import pytest
import torch

from speclearn.core.errors import InputError
from speclearn.core.memory import return_freed_memory
from speclearn.core.spectra import Spectra
from speclearn.io import read_spectra, write_spectra
from speclearn.metrics import k_score, relative_squared_error
from speclearn.models import load
from speclearn.transfer import METHODS, TransferModel, VAEMLPTransfer
from speclearn.transfer.evaluation import ClusterScorer, transfer_scores
from speclearn.transfer.networks import InstrumentDrift, cyclical_beta

PRIMARY_AXIS = np.linspace(245.0, 407.0, 160)
SMALL_NET = dict(hidden=(96, 48), latent=6, mlp_hidden=(48, 48), learning_rate=2e-3, batch_size=32)
FAST = {
    "vae-mlp": dict(SMALL_NET, vae_epochs=40, mlp_epochs=80, patience=15),
    "mlp": dict(SMALL_NET, epochs=80, patience=15),
    "pls": {}, "knn": {}, "ds": {}, "pds": {},
}
PREP = dict(baseline_window=15, baseline_sigma=5.0)


def paired(n: int, seed: int, secondary_axis: np.ndarray | None = None, response: float = 0.3,
           prefix: str = "p") -> tuple[Spectra, Spectra]:
    """Mixtures of 4 phases of emission lines seen by two instruments (different range, width, response)."""
    rng = np.random.default_rng(seed)
    lines = np.random.default_rng(7).uniform(250.0, 400.0, 30)
    phases = np.random.default_rng(8).gamma(1.0, 1.0, (4, 30))
    secondary_axis = np.linspace(260.0, 370.0, 130) if secondary_axis is None else secondary_axis
    amplitudes = rng.dirichlet(np.full(4, 0.3), n) @ phases * rng.lognormal(0.0, 0.1, (n, 1))

    def render(axis: np.ndarray, width: float) -> np.ndarray:
        return amplitudes @ np.exp(-0.5 * ((axis[None, :] - lines[:, None]) / width) ** 2)

    primary = 100 * render(PRIMARY_AXIS, 1.2) + 5 + 0.02 * PRIMARY_AXIS + rng.normal(0, 0.5, (n, PRIMARY_AXIS.size))
    secondary = 60 * render(secondary_axis, 0.9) * (1 + response * np.sin(secondary_axis / 20)) + 3 \
        + rng.normal(0, 0.5, (n, secondary_axis.size))
    meta = pd.DataFrame(index=pd.Index([f"{prefix}{seed}_{i:03d}" for i in range(n)], name="id"))
    return (Spectra(primary, PRIMARY_AXIS, axis_kind="wavelength", meta=meta),
            Spectra(secondary, secondary_axis, axis_kind="wavelength", meta=meta))


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return {"train": paired(240, 0), "test": paired(60, 1)}


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted model per method, shared by the tests of this module (copy before changing it)."""
    cache = {}

    def get(method: str):
        if method not in cache:
            cache[method] = METHODS[method](**FAST[method], **PREP).fit(*data["train"])
        return cache[method]
    return get


@pytest.mark.parametrize("method", [m for m in METHODS if m != "none"])  # none: auto's "do nothing" candidate
def test_method_beats_mean_spectrum_and_round_trips(method, data, fitted, tmp_path):
    (primary, _), (primary_test, secondary_test) = data["train"], data["test"]
    model = fitted(method)
    predicted = model.predict(secondary_test)
    assert predicted.n_channels == PRIMARY_AXIS.size and predicted.ids == secondary_test.ids
    np.testing.assert_allclose(predicted.axis, PRIMARY_AXIS)
    truth = model.reference(primary_test).values()
    mean_spectrum = np.broadcast_to(model.reference(primary).values().mean(axis=0), truth.shape)
    rse = relative_squared_error(predicted.values(), truth)
    assert rse < 0.25 < relative_squared_error(mean_spectrum, truth), rse
    model.save(tmp_path / "model")
    loaded = load(tmp_path / "model", TransferModel)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(secondary_test).values(), predicted.values())


def test_rse_hand_example():
    true = np.array([[1.0, 2.0], [3.0, 6.0]])      # mean test spectrum (2, 4)
    predicted = np.array([[1.0, 3.0], [2.0, 6.0]])  # squared errors 0 + 1 + 1 + 0 = 2
    # denominator: (1-2)^2 + (2-4)^2 + (3-2)^2 + (6-4)^2 = 10 (x_bar from the measured spectra, not x_hat)
    assert relative_squared_error(predicted, true) == pytest.approx(0.2)
    assert relative_squared_error(np.broadcast_to(true.mean(0), true.shape), true) == pytest.approx(1.0)
    scores = transfer_scores(true, predicted)
    assert scores["euclid"] == pytest.approx(1.0)
    assert scores["cosine_seed_sign"] == pytest.approx(-scores["cosine"])
    assert scores["cosine"] == pytest.approx(np.mean([7 / np.sqrt(5 * 10), 42 / np.sqrt(45 * 40)]))


def test_k_score_and_silhouette_choice():
    assert k_score([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (5, 6))
    blobs = lambda n: centres[np.arange(n) % 5] + rng.normal(0, 0.3, (n, 6))  # noqa: E731
    scorer = ClusterScorer(grid=(3, 4, 5, 6, 8), seed=0).fit(blobs(200), blobs(100))
    assert scorer.k_ == 5
    test = blobs(50)
    assert scorer.score(test, test + rng.normal(0, 0.1, test.shape)) == 1.0
    assert scorer.score(test, test[::-1]) < 0.5


def test_add_secondary_trains_only_its_mlp(data, fitted):
    primary_test = data["test"][0]
    model = copy.deepcopy(fitted("vae-mlp"))
    vae_before = {k: v.clone() for k, v in model.vae_.state_dict().items()}
    first_before = model.predict(data["test"][1]).values()
    other_axis = np.linspace(280.0, 380.0, 90)
    primary2, secondary2 = paired(240, 0, secondary_axis=other_axis, response=-0.4)
    model.add_secondary(primary2, secondary2, "narrow")
    assert model.secondaries == ["secondary", "narrow"]
    for key, value in model.vae_.state_dict().items():
        assert torch.equal(value, vae_before[key]), key
    np.testing.assert_array_equal(model.predict(data["test"][1], "secondary").values(), first_before)
    _, secondary2_test = paired(60, 1, secondary_axis=other_axis, response=-0.4)
    truth = model.reference(primary_test).values()
    assert relative_squared_error(model.predict(secondary2_test, "narrow").values(), truth) < 0.25
    with pytest.raises(InputError, match="several secondaries"):
        model.predict(secondary2_test)
    with pytest.raises(InputError, match="axis mismatch|channels"):
        model.predict(secondary2_test, "secondary")


def test_latent_sampling_and_compression_ratio(fitted):
    model = fitted("vae-mlp")
    drawn = model.sample(20, seed=3)
    assert drawn.values().shape == (20, PRIMARY_AXIS.size) and np.isfinite(drawn.values()).all()
    np.testing.assert_array_equal(drawn.values(), model.sample(20, seed=3).values())
    assert not np.array_equal(drawn.values(), model.sample(20, seed=4).values())
    decoder = sum(p.numel() for p in model.vae_.decoder.parameters())
    n = model.n_train_
    assert model.compression_ratio() == pytest.approx(PRIMARY_AXIS.size * n / (6 * n + decoder))


def test_cyclical_annealing_schedule():
    betas = [cyclical_beta(step, 400) for step in range(400)]
    assert betas[0] == 0.0 and max(betas) == 0.5
    assert betas[50] == pytest.approx(0.5) and betas[99] == 0.5 and betas[100] == 0.0  # 4 cycles of 100 steps


def test_instrument_drift_augmentation():
    rng = np.random.default_rng(0)
    raw = rng.uniform(1.0, 2.0, (5, 50))
    mean, scale = raw.mean(0), raw.std(0) + 0.1
    x = torch.from_numpy((raw - mean) / scale).float()
    assert torch.allclose(InstrumentDrift(mean, scale, response_sd=0.0, max_shift=0.0)(x), x, atol=1e-5)
    drifted = InstrumentDrift(mean, scale, response_sd=0.2, max_shift=0.0, seed=1)(x).numpy() * scale + mean
    ratio = drifted / raw  # a smooth positive response per spectrum (degree <= 2 in log)
    assert (ratio > 0).all() and not np.allclose(ratio, 1.0)
    log_ratio = np.log(ratio)
    assert np.allclose(log_ratio, np.polynomial.polynomial.polyval(
        np.linspace(-1, 1, 50), np.polynomial.polynomial.polyfit(np.linspace(-1, 1, 50), log_ratio.T, 2)), atol=1e-4)
    shifted = InstrumentDrift(mean, scale, response_sd=0.0, max_shift=1.0, seed=2)(x).numpy() * scale + mean
    assert (shifted >= raw.min() - 1e-4).all() and (shifted <= raw.max() + 1e-4).all()
    assert not np.allclose(shifted, raw)


def test_streams_from_zarr_like_memory(data, tmp_path):
    primary, secondary = data["train"]
    write_spectra(primary, tmp_path / "p.zarr")
    write_spectra(secondary, tmp_path / "s.zarr")
    lazy_p, lazy_s = read_spectra(tmp_path / "p.zarr"), read_spectra(tmp_path / "s.zarr")
    assert lazy_p.is_lazy
    params = dict(FAST["vae-mlp"], vae_epochs=3, mlp_epochs=3, **PREP)
    eager = VAEMLPTransfer(**params).fit(primary, secondary).predict(data["test"][1]).values()
    streamed = VAEMLPTransfer(**params).fit(lazy_p, lazy_s).predict(data["test"][1]).values()
    np.testing.assert_allclose(streamed, eager, rtol=1e-4, atol=1e-3)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the trim threshold is a glibc malloc setting")
def test_streaming_sets_the_malloc_trim_threshold():
    """mallopt answers 0 for a parameter it does not know: True means glibc took M_TRIM_THRESHOLD."""
    assert return_freed_memory(65536) is True


def test_bad_inputs(data):
    primary, secondary = data["train"]
    with pytest.raises(InputError, match="has no paired"):
        METHODS["pls"](**PREP).fit(primary, secondary.select(secondary.ids[:-1]))
    with pytest.raises(InputError, match="needs at least"):
        METHODS["knn"](**PREP).fit(primary.select(primary.ids[:5]), secondary.select(secondary.ids[:5]))


def _csv_pair(tmp_path, spectra_pair, stem):
    paths = tmp_path / f"{stem}_p.csv", tmp_path / f"{stem}_s.csv"
    for spectra, path in zip(spectra_pair, paths):
        write_spectra(spectra, path)
    return paths


def test_cli_train_add_secondary_apply(cli, data, tmp_path):
    p_csv, s_csv = _csv_pair(tmp_path, data["train"], "train")
    _, st_csv = _csv_pair(tmp_path, data["test"], "test")
    prep = ["--baseline-window", 15, "--baseline-sigma", 5]
    code, _, err = cli("transfer", "train", "--targets", p_csv, "--spectra", s_csv, "--out", tmp_path / "m",
                       "--method", "vae-mlp", "--epochs", 2, "--device", "cpu", *prep)
    assert code == 0, err
    other_axis = np.linspace(280.0, 380.0, 90)
    p2_csv, s2_csv = _csv_pair(tmp_path, paired(240, 0, secondary_axis=other_axis), "second")
    code, _, err = cli("transfer", "add-secondary", "--model", tmp_path / "m", "--targets", p2_csv,
                       "--spectra", s2_csv, "--name", "narrow", "--out", tmp_path / "m2", "--epochs", 2)
    assert code == 0, err
    code, _, err = cli("transfer", "predict", "--model", tmp_path / "m2", "--spectra", st_csv, "--name",
                       "secondary", "--out", tmp_path / "hat.csv")
    assert code == 0, err
    # says which baseline step a model of the primary must share (the one it was trained with)
    assert "baseline: {method: rolling_min, window: 15, sigma: 5}" in " ".join(err.split())
    predicted = read_spectra(tmp_path / "hat.csv")
    np.testing.assert_allclose(predicted.axis, PRIMARY_AXIS)
    assert predicted.ids == data["test"][1].ids
    # the same model applied twice gives the same spectra; an existing output is kept without --overwrite
    code, _, err = cli("transfer", "predict", "--model", tmp_path / "m2", "--spectra", st_csv, "--name",
                       "secondary", "--out", tmp_path / "hat.csv")
    assert code == 2 and "--overwrite" in err
    code, _, _ = cli("transfer", "train", "--targets", p_csv, "--spectra", s_csv, "--out", tmp_path / "pls",
                     "--method", "pls", *prep)
    assert code == 0
    code, _, err = cli("transfer", "add-secondary", "--model", tmp_path / "pls", "--targets", p2_csv,
                       "--spectra", s2_csv, "--name", "x", "--out", tmp_path / "pls2")
    assert code == 2 and "vae-mlp" in err


def test_cli_bad_inputs(cli, data, tmp_path):
    p_csv, s_csv = _csv_pair(tmp_path, data["train"], "train")
    primary, secondary = data["train"]
    write_spectra(secondary.select(secondary.ids[3:]), tmp_path / "unpaired.csv")
    code, _, err = cli("transfer", "train", "--targets", p_csv, "--spectra", tmp_path / "unpaired.csv",
                       "--out", tmp_path / "m", "--method", "ds")
    assert code == 2 and "no paired secondary" in err and "p0_000" in err
    for name, spectra in (("few_p", primary), ("few_s", secondary)):
        write_spectra(spectra.select(spectra.ids[:6]), tmp_path / f"{name}.csv")
    code, _, err = cli("transfer", "train", "--targets", tmp_path / "few_p.csv", "--spectra",
                       tmp_path / "few_s.csv", "--out", tmp_path / "m", "--method", "pls")
    assert code == 2 and "only 6 paired spectra" in err
    code, _, err = cli("transfer", "train", "--targets", p_csv, "--spectra", s_csv, "--out", tmp_path / "m",
                       "--method", "nope")
    assert code == 2 and "unknown method" in err
    code, _, _ = cli("transfer", "train", "--targets", p_csv, "--spectra", s_csv, "--out", tmp_path / "m",
                     "--method", "knn", "--baseline-window", 15, "--baseline-sigma", 5)
    assert code == 0
    # secondary spectra on another axis than the model's
    code, _, err = cli("transfer", "predict", "--model", tmp_path / "m", "--spectra", p_csv, "--out", tmp_path / "x.csv")
    assert code == 2 and "channels, but the model's secondary" in err
    assert not (tmp_path / "x.csv").exists()
