"""The one model format: round trip, axis refusal, no pickle, device choice, shared training loop."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cross_decomposition import PLSRegression

from speclearn.core.errors import InputError
from speclearn.models import (SavedModel, TrainingConfig, load_model, load_module_arrays, module_arrays,
                              resolve_device, save_model, train)
from speclearn.preprocessing import build_pipeline


def test_round_trip_with_estimators_and_arrays(tmp_path, spectra):
    X, y = spectra.values(), spectra.values()[:, 10]
    pls = PLSRegression(2).fit(X, y)
    pipeline = build_pipeline([{"savgol": {"window_length": 5, "polyorder": 2}}, {"scale": {}}], spectra.axis).fit(X)
    model = SavedModel("pls", {"n_components": 2}, spectra.axis_spec(), ["Cd"], [{"scale": {}}],
                       arrays={"w": np.arange(3.0)}, estimators={"regressor": pls, "preprocessing": pipeline})
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m", expected_types=("pls",))
    np.testing.assert_allclose(back.estimators["regressor"].predict(X), pls.predict(X))
    np.testing.assert_allclose(back.estimators["preprocessing"].transform(X), pipeline.transform(X))
    np.testing.assert_array_equal(back.arrays["w"], np.arange(3.0))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["targets"] == ["Cd"] and config["speclearn_version"] and config["axis"]["kind"] == "wavelength"
    assert not list((tmp_path / "m").glob("*.pkl"))
    with pytest.raises(InputError, match="'pls' model"):
        load_model(tmp_path / "m", expected_types=("caemmt",))


def test_model_refuses_other_axis(tmp_path, spectra):
    save_model(SavedModel("x", {}, spectra.axis_spec()), tmp_path / "m")
    model = load_model(tmp_path / "m")
    model.check_spectra(spectra)
    shifted = spectra.with_intensity(spectra.values(), axis=spectra.axis + 0.5)
    with pytest.raises(InputError, match="axis mismatch.*channel 1 is at 200.5"):
        model.check_spectra(shifted)
    with pytest.raises(InputError, match="32 channels, but the model"):
        model.check_spectra(spectra.with_intensity(spectra.values()[:, :32], axis=spectra.axis[:32]))


def test_not_a_model_folder(tmp_path):
    with pytest.raises(InputError, match="not a speclearn model folder"):
        load_model(tmp_path)


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_training_loop_fits_stops_early_and_is_reproducible(tmp_path):
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.normal(size=(200, 3)), dtype=torch.float32)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]])

    def fit(seed):
        torch.manual_seed(seed)
        net = torch.nn.Linear(3, 1)
        history = train(net, lambda m, b: torch.mean((m(b[0]) - b[1]) ** 2), (X[:150], y[:150]), (X[150:], y[150:]),
                        TrainingConfig(epochs=300, batch_size=32, learning_rate=0.05, patience=5, seed=seed, progress=False))
        return net, history

    net, history = fit(1)
    assert history.val_loss[history.best_epoch] < 1e-2 * float(y.var())
    assert history.stopped == "early stopping" and len(history.val_loss) < 300
    again, _ = fit(1)
    torch.testing.assert_close(net.weight, again.weight)
    copy = load_module_arrays(torch.nn.Linear(3, 1), module_arrays(net))
    torch.testing.assert_close(copy.weight, net.weight)


def test_use_device_moves_torch_models_and_refuses_cuda_for_cpu_only_ones():
    from sklearn.linear_model import Ridge

    from speclearn.models import use_device

    class TorchLike(Ridge):
        def __init__(self, alpha=1.0, device="auto"):
            super().__init__(alpha=alpha)
            self.device = device

    assert use_device(TorchLike(), "cpu").device == "cpu"
    assert use_device(Ridge(), "auto").get_params()["alpha"] == 1.0
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            use_device(TorchLike(), "cuda")


def test_predict_batches_leaves_networks_already_on_the_device_in_place(monkeypatch):
    from speclearn.models.training import predict_batches

    net = torch.nn.Linear(3, 2)
    X = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)

    def moved(*args, **kwargs):
        raise AssertionError("a network already on the CPU was moved")

    monkeypatch.setattr(net, "to", moved)
    monkeypatch.setattr(net, "cpu", moved)
    out = predict_batches(lambda b: net(b), X, batch_size=128, modules=[net])
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_device_auto_never_breaks_cpu_methods_on_a_gpu_machine(cli, tmp_path, spectra, monkeypatch):
    """With torch reporting CUDA, every command of a CPU-only method (train and predict) still runs with the
    default --device auto (torch models would be sent to the faked GPU, so they are checked per estimator in
    test_contract.py)."""
    import pandas as pd

    from speclearn.io import write_spectra, write_table_csv
    from speclearn.models import use_device

    write_spectra(spectra, tmp_path / "s.csv")
    write_table_csv(pd.DataFrame({"fat": np.linspace(1, 5, 12)}, index=spectra.meta.index), tmp_path / "t.csv")
    write_table_csv(pd.DataFrame({"label": ["a", "b", "c"] * 4}, index=spectra.meta.index), tmp_path / "l.csv")
    np.save(tmp_path / "cube.npy", np.abs(spectra.values()).reshape(3, 4, -1))
    trained = [
        ("quantify", "train", "--spectra", tmp_path / "s.csv", "--targets", tmp_path / "t.csv", "--method", "pls", "--out", tmp_path / "q"),
        ("classify", "train", "--spectra", tmp_path / "s.csv", "--targets", tmp_path / "l.csv", "--method", "plsda", "--out", tmp_path / "c"),
        ("denoise", "train", "--spectra", tmp_path / "s.csv", "--method", "classical", "--out", tmp_path / "d"),
    ]
    for args in trained:
        assert cli(*args)[0] == 0
    from speclearn.mrs.io import write_mrs
    from speclearn.mrs.simulate import MRSSimConfig, simulate_mrs
    write_mrs(simulate_mrs(1, seed=1, config=MRSSimConfig(transients=4)).transients, tmp_path / "scan.npz")
    nai = Path(__file__).parent / "data" / "gamma" / "nai_detector.spe"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    runs = [
        ("quantify", "predict", "--model", tmp_path / "q", "--spectra", tmp_path / "s.csv", "--out", tmp_path / "q.csv"),
        ("classify", "predict", "--model", tmp_path / "c", "--spectra", tmp_path / "s.csv", "--out", tmp_path / "c.csv"),
        ("denoise", "predict", "--model", tmp_path / "d", "--spectra", tmp_path / "s.csv", "--out", tmp_path / "d.csv"),
        ("unmix", "train", "--spectra", tmp_path / "cube.npy", "--components", "2", "--method", "nmf", "--out", tmp_path / "u"),
        ("unmix", "predict", "--model", tmp_path / "u", "--spectra", tmp_path / "cube.npy", "--out", tmp_path / "ua"),
        ("transfer", "train", "--targets", tmp_path / "s.csv", "--spectra", tmp_path / "s.csv", "--method", "pls",
         "--baseline-window", "5", "--out", tmp_path / "tr"),
        ("transfer", "predict", "--model", tmp_path / "tr", "--spectra", tmp_path / "s.csv", "--out", tmp_path / "tr.csv"),
        ("gamma", "identify", "--spectra", nai, "--method", "peaks", "--out", tmp_path / "g.csv"),
        ("mrs", "fit", "--spectra", tmp_path / "scan.npz", "--out", tmp_path / "m.csv"),
        ("mrs", "align", "--spectra", tmp_path / "scan.npz", "--method", "registration", "--out", tmp_path / "a.npz"),
    ]
    for args in runs:
        code, _, err = cli(*args)
        assert code == 0, (args[:2], err)
    from sklearn.linear_model import Ridge
    with pytest.raises(InputError, match="computes on the CPU"):
        use_device(Ridge(), "cuda")


def test_training_config_of_takes_the_estimators_matching_hyperparameters():
    from speclearn.generate.cvae import ConditionalVAE

    config = TrainingConfig.of(ConditionalVAE(epochs=7, batch_size=5, weight_decay=0.1, seed=3), patience=2)
    assert (config.epochs, config.batch_size, config.weight_decay, config.seed, config.patience) == (7, 5, 0.1, 3, 2)
    assert config.optimizer == "adam"  # not a ConditionalVAE hyperparameter: the default
