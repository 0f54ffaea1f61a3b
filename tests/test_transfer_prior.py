"""VAE+MLP transfer with a library-pretrained VAE and the PDS/ridge prior (issue 17): the residual
never makes validation worse than its linear start, the prior and library persist, bad options fail."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import Ridge

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import read_spectra, write_spectra
from speclearn.metrics import relative_squared_error
from speclearn.models import load
from speclearn.transfer import TransferModel, VAEMLPTransfer
from speclearn.transfer.vae_mlp import ridge_path

PRIMARY_AXIS = np.linspace(245.0, 407.0, 160)
SECONDARY_AXIS = np.linspace(260.0, 370.0, 130)  # the primary's ends are never seen by the secondary
NET = dict(hidden=(96, 48), latent=6, mlp_hidden=(48, 48), learning_rate=2e-3, batch_size=32, vae_epochs=25,
           mlp_epochs=25, patience=8, baseline_window=15, baseline_sigma=5.0, device="cpu")


def simulate(n: int, seed: int, *, with_secondary: bool = True, prefix: str = "s"):
    """Mixtures of 4 phases of emission lines seen by two instruments (different range, width, response)."""
    rng = np.random.default_rng(seed)
    lines = np.random.default_rng(7).uniform(246.0, 406.0, 30)
    phases = np.random.default_rng(8).gamma(1.0, 1.0, (4, 30))
    amplitudes = rng.dirichlet(np.full(4, 0.3), n) @ phases * rng.lognormal(0.0, 0.1, (n, 1))

    def render(axis, width):
        return amplitudes @ np.exp(-0.5 * ((axis[None, :] - lines[:, None]) / width) ** 2)

    meta = pd.DataFrame(index=pd.Index([f"{prefix}{seed}_{i:04d}" for i in range(n)], name="id"))
    primary = Spectra(100 * render(PRIMARY_AXIS, 1.2) + 5 + rng.normal(0, 0.5, (n, PRIMARY_AXIS.size)),
                      PRIMARY_AXIS, axis_kind="wavelength", meta=meta)
    if not with_secondary:
        return primary
    secondary = 60 * render(SECONDARY_AXIS, 0.9) * (1 + 0.3 * np.sin(SECONDARY_AXIS / 20)) + 3 \
        + rng.normal(0, 0.5, (n, SECONDARY_AXIS.size))
    return primary, Spectra(secondary, SECONDARY_AXIS, axis_kind="wavelength", meta=meta)


@pytest.fixture(scope="module")
def sets():
    torch.set_num_threads(1)
    return {"train": simulate(40, 0), "validation": simulate(30, 1), "test": simulate(60, 2),
            "library": simulate(300, 3, with_secondary=False, prefix="lib")}


@pytest.fixture(scope="module")
def model(sets):
    return VAEMLPTransfer(**NET).fit(*sets["train"], validation=sets["validation"], library=sets["library"])


def _mse(model, pair) -> float:
    primary, secondary = pair
    return float(np.mean((model.predict(secondary).values() - model.reference(primary).values()) ** 2))


def _prior_only(model):
    alone = copy.deepcopy(model)
    for mlp in alone.mlps_.values():
        torch.nn.init.zeros_(mlp[-1].weight)
        torch.nn.init.zeros_(mlp[-1].bias)
    return alone


def test_residual_never_worse_than_its_linear_start_on_validation(model, sets):
    info = model.prior_info_["secondary"]
    final, start = _mse(model, sets["validation"]), _mse(_prior_only(model), sets["validation"])
    assert final <= start * (1 + 1e-6)
    assert final == pytest.approx(min(info["validation_mse"], info["validation_mse_with_residual"]), rel=1e-4)
    assert info["residual_kept"] == (final < start)
    assert model.n_library_ == 300 and 0 < model.reconstruction_rse_ < 0.3


def test_prior_and_library_beat_the_seed_configuration(model, sets):
    """On 40 pairs the prior + library reach the channels the secondary never sees; the plain MLP cannot."""
    seed = VAEMLPTransfer(**NET, prior="none").fit(*sets["train"], validation=sets["validation"])
    primary, secondary = sets["test"]
    truth = model.reference(primary).values()
    ends = (PRIMARY_AXIS < SECONDARY_AXIS.min()) | (PRIMARY_AXIS > SECONDARY_AXIS.max())
    rse = relative_squared_error(model.predict(secondary).values(), truth)
    rse_ends = relative_squared_error(model.predict(secondary).values()[:, ends], truth[:, ends])
    assert rse < 0.25 and rse_ends < 0.5, (rse, rse_ends)
    assert rse < 0.7 * relative_squared_error(seed.predict(secondary).values(), truth)


def test_prior_round_trip_and_add_secondary(model, sets, tmp_path):
    grown = copy.deepcopy(model).add_secondary(*simulate(40, 4), "second", library=sets["library"])
    assert set(grown.priors_) == {"secondary", "second"} and grown.prior_info_["second"]["half_width"] >= 1
    grown.save(tmp_path / "m")
    loaded = load(tmp_path / "m", TransferModel)
    assert loaded.prior == "pds" and loaded.prior_info_ == grown.prior_info_ and loaded.n_library_ == 300
    for name in ("secondary", "second"):
        for key, value in grown.priors_[name].items():
            np.testing.assert_array_equal(loaded.priors_[name][key], value)
        np.testing.assert_array_equal(loaded.predict(sets["test"][1], name).values(),
                                      grown.predict(sets["test"][1], name).values())
    assert loaded.reconstruction_rse_ == pytest.approx(model.reconstruction_rse_)


def test_ridge_path_matches_scikit_learn():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 20)), rng.normal(size=(50, 3))
    s = np.linalg.svd(X - X.mean(0), compute_uv=False)
    for strength, (W, b) in zip((1e-3, 1e-1), ridge_path(X, Y, (1e-3, 1e-1))):
        reference = Ridge(alpha=strength * np.mean(s ** 2)).fit(X, Y)
        np.testing.assert_allclose(X @ W + b, reference.predict(X), rtol=1e-6, atol=1e-8)


def test_bad_prior_and_library(sets):
    with pytest.raises(InputError, match="prior must be"):
        VAEMLPTransfer(**NET, prior="linear").fit(*sets["train"])
    other_axis = Spectra(sets["library"].values()[:, :100], PRIMARY_AXIS[:100], axis_kind="wavelength")
    with pytest.raises(InputError):
        VAEMLPTransfer(**NET).fit(*sets["train"], library=other_axis)
    primary, secondary = sets["train"]
    elsewhere = secondary.with_intensity(secondary.values(), axis=np.linspace(500.0, 600.0, SECONDARY_AXIS.size))
    fitted = VAEMLPTransfer(**dict(NET, vae_epochs=2, mlp_epochs=2)).fit(primary, elsewhere)
    assert fitted.priors_ == {} and fitted.predict(elsewhere).n_channels == PRIMARY_AXIS.size  # the seed's MLP


def test_cli_library(cli, sets, tmp_path):
    paths = {}
    for key, spectra in (("p", sets["train"][0]), ("s", sets["train"][1]), ("lib", sets["library"]),
                         ("test", sets["test"][1])):
        paths[key] = tmp_path / f"{key}.csv"
        write_spectra(spectra, paths[key])
    prep = ["--baseline-window", 15, "--baseline-sigma", 5, "--device", "cpu", "--epochs", 2]
    code, _, err = cli("transfer", "train", "--targets", paths["p"], "--spectra", paths["s"], "--library",
                       paths["lib"], "--method", "vae-mlp", "--out", tmp_path / "m", *prep)
    assert code == 0, err
    assert load(tmp_path / "m", TransferModel).n_library_ == 300
    code, _, err = cli("transfer", "add-secondary", "--model", tmp_path / "m", "--targets", paths["p"], "--spectra",
                       paths["s"], "--library", paths["lib"], "--name", "again", "--out", tmp_path / "m2")
    assert code == 0, err
    assert set(load(tmp_path / "m2", TransferModel).priors_) == {"secondary", "again"}
    code, _, err = cli("transfer", "predict", "--model", tmp_path / "m2", "--spectra", paths["test"], "--name",
                       "again", "--out", tmp_path / "hat.csv")
    assert code == 0 and read_spectra(tmp_path / "hat.csv").n_channels == PRIMARY_AXIS.size, err
    code, _, err = cli("transfer", "train", "--targets", paths["p"], "--spectra", paths["s"], "--library",
                       paths["lib"], "--method", "pls", "--out", tmp_path / "pls")
    assert code == 2 and "vae-mlp only" in err


def same_range_pairs(n: int, seed: int):
    """Two instruments on the same axis differing by a 2 % smooth response and an offset: far less than
    the default drift model (10 % response), as on real NIR pairs of one session."""
    primary = simulate(n, seed, with_secondary=False)
    rng = np.random.default_rng(seed + 100)
    response = 1 + 0.02 * np.sin(PRIMARY_AXIS / 15)
    values = primary.values() * response + 1.0 + rng.normal(0, 0.5, (n, PRIMARY_AXIS.size))
    return primary, primary.with_intensity(values)


def test_few_pairs_without_library_fall_back_to_plain_pds():
    """60 pairs, no library, a VAE trained 3 epochs: the prior's PDS predicts the covered (here: all)
    channels itself, without the drift augmentation it cannot afford, and matches PDS."""
    from speclearn.transfer import PDSTransfer

    train, test = same_range_pairs(60, 10), same_range_pairs(40, 11)
    model = VAEMLPTransfer(**dict(NET, vae_epochs=3)).fit(*train)
    info = model.prior_info_["secondary"]
    assert info["output"] == "direct" and info["augmented"] is False and not info["residual_kept"]
    assert info["validation_mse"] == info["validation_mse_plain"]
    pds = PDSTransfer(baseline_window=15, baseline_sigma=5.0).fit(*train)
    assert _mse(model, test) <= 1.1 * _mse(pds, test), (_mse(model, test), _mse(pds, test))
    decoded = copy.deepcopy(model)
    decoded.prior_info_["secondary"]["output"] = "decoded"
    assert _mse(model, test) < 0.5 * _mse(decoded, test)  # the decoder of 48 spectra is what it avoids


def test_output_is_the_validation_best_of_decoded_direct_and_linear(model, sets, tmp_path):
    info = model.prior_info_["secondary"]
    scores = info["validation_scores"]
    assert {key.rsplit(",", 1)[1] for key in scores} == {"decoded", "direct", "linear"}
    assert info["validation_mse"] == pytest.approx(min(scores.values()))
    assert scores[f"{info['half_width']},{info['ridge']},{info['output']}"] == info["validation_mse"]


def test_linear_output_fills_the_ends_from_the_library_and_round_trips(sets, monkeypatch, tmp_path):
    """Covered channels from PDS, the channels the secondary never sees by a ridge map fitted on primary
    spectra only (no decoder)."""
    from speclearn.transfer import vae_mlp

    monkeypatch.setattr(vae_mlp, "OUTPUTS", ("linear",))
    linear = VAEMLPTransfer(**dict(NET, vae_epochs=2, mlp_epochs=2)).fit(*sets["train"], validation=sets["validation"],
                                                                       library=sets["library"])
    assert linear.prior_info_["secondary"]["output"] == "linear" and "W_out" in linear.priors_["secondary"]
    ends = (PRIMARY_AXIS < SECONDARY_AXIS.min()) | (PRIMARY_AXIS > SECONDARY_AXIS.max())
    primary, secondary = sets["test"]
    truth, predicted = linear.reference(primary).values(), linear.predict(secondary).values()
    assert relative_squared_error(predicted[:, ends], truth[:, ends]) < 0.5
    assert relative_squared_error(predicted, truth) < 0.25  # with a VAE of 2 epochs: the decoder is not used
    linear.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m", TransferModel).predict(secondary).values(), predicted)
