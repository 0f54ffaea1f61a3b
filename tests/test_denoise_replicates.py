"""Noise model, replicate (Noise2Noise) and blind-spot (Noise2Self) denoisers, real replicate sets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.denoise import BlindSpotDenoiser, Denoiser, ReplicateDenoiser
from speclearn.models import load
from speclearn.denoise.auto import replicate_disagreement
from speclearn.denoise.noise_model import estimate_noise_model
from speclearn.denoise.replicate_benchmark import nearest_centroid_accuracy
from speclearn.denoise.replicate_sets import split_counts
from speclearn.denoise.replicates import sum_channel_pairs
from speclearn.denoise.stabilised import SmoothedUNet, smooth
from speclearn.models import module_arrays

torch.set_num_threads(1)
AXIS = np.linspace(0, 1, 96)


def peaks(n_samples, replicates, rng, *, dose=40.0, offset=20.0, read_sd=2.0):
    """Poisson counts of random peaks + a dark offset + read noise; (noisy, clean, group codes)."""
    centres = rng.uniform(0.15, 0.85, (n_samples, 3))
    clean = dose * np.sum(np.exp(-0.5 * ((AXIS[None, None] - centres[..., None]) / 0.02) ** 2), axis=1) + 1.0
    clean = np.repeat(clean, replicates, axis=0)
    noisy = rng.poisson(clean) + offset + rng.normal(0, read_sd, clean.shape)
    return noisy, clean + offset, np.repeat(np.arange(n_samples), replicates)


def test_noise_model_recovers_gain_and_read_noise_from_replicates_and_single_spectra():
    rng = np.random.default_rng(0)
    mean = np.linspace(5, 500, 300)
    X = 2.0 * rng.poisson(mean, size=(60, 300)) + 100 + rng.normal(0, 3, (60, 300))  # gain 2, offset 100
    for model in (estimate_noise_model(X, np.arange(60) // 6), estimate_noise_model(X)):
        assert model.poisson and abs(model.gain - 2.0) < 0.2
        assert 100 <= model.offset < 125  # the floor of the spectra: offset + the weakest signal
        stabilised = model.forward(X)
        assert 0.8 < np.std(np.diff(stabilised, axis=0)) / np.sqrt(2) < 1.2  # unit noise after the transform
    gaussian = estimate_noise_model(rng.normal(0, 0.5, (40, 200)) + 3.0, np.arange(40) // 4)
    assert not gaussian.poisson and abs(np.sqrt(gaussian.read_variance) - 0.5) < 0.05


def test_split_counts_gives_independent_replicates_that_sum_to_the_measurement():
    rng = np.random.default_rng(1)
    counts = rng.poisson(50.0, 2000)
    parts = split_counts(counts, 4, rng)
    assert parts.shape == (4, 2000) and np.array_equal(parts.sum(axis=0), counts)
    assert abs(np.corrcoef(parts[0] - 12.5, parts[1] - 12.5)[0, 1]) < 0.1
    assert abs(parts.var(axis=1).mean() / parts.mean() - 1.0) < 0.15  # Poisson: variance = mean


def test_noise2noise_improves_held_out_replicate_agreement_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    noisy, clean, groups = peaks(20, 4, rng)
    model = ReplicateDenoiser(width=8, levels=2, epochs=15, max_seconds=10, seed=0, device="cpu").fit(
        Spectra(noisy, AXIS), groups=[f"g{g}" for g in groups])
    assert model.noise_model_.poisson and model.noise_model_.offset > 10  # the dark offset is estimated
    test_noisy, test_clean, test_groups = peaks(8, 4, rng)  # samples it never saw
    out = model.transform(Spectra(test_noisy, AXIS)).values()
    assert replicate_disagreement(out, test_noisy, test_groups) < 0.85 * replicate_disagreement(
        test_noisy, test_noisy, test_groups)
    assert np.sqrt(np.mean((out - test_clean) ** 2)) < 0.7 * np.sqrt(np.mean((test_noisy - test_clean) ** 2))
    assert nearest_centroid_accuracy(out, test_groups) >= nearest_centroid_accuracy(test_noisy, test_groups)
    model.save(tmp_path / "m")
    np.testing.assert_allclose(load(tmp_path / "m", Denoiser).transform(Spectra(test_noisy, AXIS)).values(), out,
                               rtol=1e-6)
    with pytest.raises(InputError, match="at least 2 replicates"):
        ReplicateDenoiser().fit(Spectra(noisy[:8], AXIS), groups=[f"g{i}" for i in range(8)])


def test_blind_spot_denoises_single_spectra_and_never_returns_worse_than_its_smoother():
    rng = np.random.default_rng(2)
    noisy, clean, _ = peaks(60, 1, rng)
    model = BlindSpotDenoiser(width=8, levels=2, epochs=15, max_seconds=10, seed=0, device="cpu").fit(
        Spectra(noisy, AXIS))
    test_noisy, test_clean, _ = peaks(10, 1, rng)
    out = model.transform(Spectra(test_noisy, AXIS)).values()
    assert np.sqrt(np.mean((out - test_clean) ** 2)) < 0.8 * np.sqrt(np.mean((test_noisy - test_clean) ** 2))
    history = model.history_
    assert history["smoother_val_loss"] is not None
    assert min(history["val_loss"]) < history["smoother_val_loss"] or "zeroed" in history["stopped"]


def test_white_noise_free_data_gets_no_smoothing_from_the_replicate_denoiser():
    """Replicates that agree exactly except for a common drift: nothing to remove, so no window is chosen."""
    rng = np.random.default_rng(3)
    base = np.cumsum(rng.normal(0, 1, (20, 96)), axis=1)  # rough, channel-level structure, no noise
    X = np.repeat(base, 3, axis=0) + np.repeat(rng.normal(0, 0.01, (60, 1)), 96, axis=1)
    model = ReplicateDenoiser(width=4, levels=1, epochs=3, seed=0, device="cpu").fit(
        Spectra(X, AXIS), groups=[f"g{g}" for g in np.arange(60) // 3])
    assert model.window_ == 0


def test_channel_pair_sums_are_replicates_the_summed_noise_model_stabilises():
    rng = np.random.default_rng(4)
    X = rng.poisson(np.linspace(5, 400, 256), size=(400, 256)) + 50 + rng.normal(0, 3, (400, 256))
    model = estimate_noise_model(X, np.arange(400) // 8)
    summed = sum_channel_pairs(X)
    assert summed.shape == (400, 128) and np.allclose(summed[:, 3], X[:, 6] + X[:, 7])
    assert model.summed(2).offset == 2 * model.offset and model.summed(2).read_variance == 2 * model.read_variance
    for stabilised in (model.forward(X), model.summed(2).forward(summed)):
        assert 0.85 < np.std(stabilised, axis=0).mean() < 1.15  # unit noise at both resolutions


def test_gated_network_starts_as_its_smoother_and_models_saved_without_a_gate_still_load():
    x = torch.as_tensor(np.random.default_rng(5).normal(10, 1, (3, 2, 40)), dtype=torch.float32)
    for gated in (False, True):
        module = SmoothedUNet(width=4, levels=2, kernel_size=3, window=7, gated=gated).eval()
        np.testing.assert_allclose(module(x).detach().numpy(), smooth(x[:, 1].numpy().astype(float), 7), atol=1e-4)
    noisy, _, groups = peaks(10, 3, np.random.default_rng(6))
    model = ReplicateDenoiser(width=4, levels=1, epochs=2, seed=0, device="cpu").fit(
        Spectra(noisy, AXIS), groups=[f"g{g}" for g in groups])
    losses = model.history_["architecture_val_loss"]  # "auto": both trained, the lower validation loss kept
    assert set(losses) == {"stabilised", "gated"} and model.history_["architecture"] == min(losses, key=losses.get)
    model = ReplicateDenoiser(width=4, levels=1, epochs=2, seed=0, device="cpu", architecture="gated").fit(
        Spectra(noisy, AXIS), groups=[f"g{g}" for g in groups])
    arrays, estimators, extra = model._state()
    assert model.module_.gated and extra["gated"]
    del extra["gated"]  # what a model saved before the gate holds: an ungated network
    model._restore(module_arrays(SmoothedUNet(4, 1, 5, model.window_)), estimators, extra)
    assert not model.module_.gated and model.transform(Spectra(noisy, AXIS)).values().shape == noisy.shape


def test_channel_pair_copies_teach_the_denoiser_peaks_narrower_than_any_in_training():
    """Trained on peaks of SD 0.02, tested on peaks of SD 0.01 (half as many channels wide)."""
    rng = np.random.default_rng(7)
    noisy, _, groups = peaks(24, 4, rng, dose=80.0)
    centres = rng.uniform(0.15, 0.85, (8, 3))
    signal = 80.0 * np.sum(np.exp(-0.5 * ((AXIS[None, None] - centres[..., None]) / 0.01) ** 2), axis=1) + 1.0
    test = rng.poisson(signal) + 20.0 + rng.normal(0, 2.0, signal.shape)
    errors = {}
    for rebin in (False, True):
        model = ReplicateDenoiser(width=8, levels=2, epochs=15, seed=0, device="cpu", rebin=rebin).fit(
            Spectra(noisy, AXIS), groups=[f"g{g}" for g in groups])
        errors[rebin] = np.sqrt(np.mean((model.transform(Spectra(test, AXIS)).values() - signal - 20.0) ** 2))
    assert errors[True] < 0.9 * errors[False], errors


def test_chemcam_target_counts_the_oxides_where_noise2noise_beats_both_raw_and_classical():
    from speclearn.denoise.benchmark import NOISE2NOISE, check_targets

    oxides = ["A", "B", "C"]
    errors = {"raw": [1.0, 1.0, 1.0], "classical (arPLS + Savitzky-Golay)": [0.5, 2.0, 1.0],
              NOISE2NOISE: [0.8, 0.9, 0.9]}
    rows = [{"scenario": "s", "method": m,
             **{f"rmse_{k}_{o}": e for k in ("icpt", "noicpt") for o, e in zip(oxides, v)}} for m, v in errors.items()]
    speed = {"configs": {"default": {"spectra_per_s": 60.0}}}
    check = next(c for c in check_targets(rows, oxides, speed) if c["target"].startswith(NOISE2NOISE))
    assert not check["met"] and check["detail"] == "2 of 3: B, C"  # A: below raw, not below classical
