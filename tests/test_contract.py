"""One contract for every registered estimator (the pybaselines `BaseTester` pattern).

`RECIPES` says how to fit and apply each model type on small data; a registered type without a
recipe fails `test_every_registered_estimator_has_a_recipe`, so a new estimator gets every contract
test by adding one line here. Each estimator is checked for: save/load round trip giving identical
outputs, refusal of spectra on another axis, inputs left unchanged, the same seed giving the same
result, `--device auto` resolving with (faked) CUDA present, and nothing but safetensors/skops/JSON
in its model folder. The MRS estimators are on the same base and format (their input is complex FIDs,
not `Spectra`); their round trips are tested in test_mrs*.py. Gamma models rebin any calibrated energy
axis onto their own grid, so they take part in every test but the axis refusal.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import torch

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.models import MODEL_TYPES, load, methods, use_device
from speclearn.models.estimator import SYSTEMS

CONTRACT_SYSTEMS = ("quantify", "classify", "denoise", "transfer", "generate", "unmix", "trust", "gamma")
for _system in CONTRACT_SYSTEMS:
    methods(_system)


def _generic(n: int = 24, channels: int = 48, seed: int = 0) -> tuple[Spectra, pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    axis = np.linspace(400.0, 500.0, channels)
    centres = np.array([420.0, 450.0, 480.0])
    amounts = rng.uniform(0.5, 3.0, (n, 3))
    bands = np.exp(-0.5 * ((axis[None, :] - centres[:, None]) / 4.0) ** 2)
    X = amounts @ bands + rng.normal(0, 0.02, (n, channels)) + 0.5
    ids = pd.Index([f"s{i:02d}" for i in range(n)], name="id")
    spectra = Spectra(X, axis, axis_kind="wavelength", axis_unit="nm", meta=pd.DataFrame(index=ids))
    targets = pd.DataFrame({"a": amounts[:, 0], "b": amounts[:, 1]}, index=ids)
    labels = pd.Series(np.where(amounts[:, 0] > np.median(amounts[:, 0]), "high", "low"), index=ids)
    return spectra, targets, labels


def _icpms(n: int = 16, seed: int = 0):
    from speclearn.simulate.icpms import PROCESS_PARAMETERS, ICPMSConfig, ICPMSInstrument, ProcessConfig, simulate_icpms
    config = ICPMSConfig(analytes=("Co", "Zn", "Cd"), interferents=("Sn",),
                         instrument=ICPMSInstrument(mz_min=55.0, mz_max=120.0, n_channels=650), process=ProcessConfig())
    sim = simulate_icpms(n, seed=seed, config=config, workers=1)
    return sim.spectra, sim.targets, sim.params[list(PROCESS_PARAMETERS)]


@dataclass
class Recipe:
    """How to build, fit and apply one model type on small data."""

    params: dict[str, Any]
    data: Callable[[], tuple]  # -> (fit args, apply input Spectra, extra apply kwargs)
    apply: str = "predict"

    def output(self, estimator, spectra: Spectra, kwargs: dict) -> np.ndarray:
        result = getattr(estimator, self.apply)(spectra, **kwargs)
        if isinstance(result, Spectra):
            return result.values()
        return np.asarray(result.select_dtypes("number") if isinstance(result, pd.DataFrame) else result, float)


def _quantify():
    spectra, targets, _ = _generic()
    return (spectra, targets), spectra, {}


def _quantify_icpms():
    spectra, targets, _ = _icpms()
    return (spectra, targets), spectra, {}


def _quantify_params():
    spectra, targets, params = _icpms()
    return (spectra, targets), spectra, {"params": params}, {"params": params}


def _classify():
    spectra, _, labels = _generic()
    return (spectra, labels), spectra, {}


def _denoise():
    spectra, _, _ = _generic()
    return (spectra,), spectra, {}, {"groups": [f"g{i % 6}" for i in range(spectra.n_spectra)]}


def _transfer():
    primary, _, _ = _generic(n=30)
    secondary = primary.with_intensity(0.8 * primary.values() + 0.1)
    return (primary, secondary), secondary, {}


def _generate():
    spectra, _, labels = _generic()
    return (spectra, labels.to_frame("label")), None, {}


def _unmix():
    spectra, _, _ = _generic()
    cube = Spectra(np.abs(spectra.values()).reshape(4, 6, -1), spectra.axis, axis_kind=spectra.axis_kind,
                   axis_unit=spectra.axis_unit)
    return (np.abs(spectra.values()[:3]), spectra.axis_spec()), cube, {}


def _gamma_nuclides():
    from speclearn.gamma.simulate import simulate_nuclides
    sim = simulate_nuclides("nai", 24, seed=2)
    return (sim.spectra, sim.truth["labels"]), sim.spectra, {}


def _gamma_materials(targets: bool = False):
    from speclearn.gamma.lines import ELEMENTS
    from speclearn.gamma.simulate import simulate_materials
    sim = simulate_materials("nai", 16, seed=2)
    labels = sim.truth[list(ELEMENTS)] if targets else sim.truth["material"]
    return (sim.spectra, labels), sim.spectra, {}


def _qa():
    spectra, _, _ = _icpms(n=30)
    return (spectra,), spectra, {}


FAST_NET = {"epochs": 2}
RECIPES: dict[str, Recipe] = {
    "quantify.pls": Recipe({"max_components": 4}, _quantify),
    "quantify.rf": Recipe({"n_estimators": 10}, _quantify),
    "quantify.cnn": Recipe(FAST_NET, _quantify),
    "quantify.wnnls": Recipe({}, _quantify_icpms),
    "quantify.vpro": Recipe({}, _quantify_icpms),
    "quantify.gd": Recipe({"isotopes_per_element": 1}, _quantify_icpms),
    "quantify.bss": Recipe({"max_iter": 50}, _quantify_icpms),
    "quantify.caemmt": Recipe({"epochs": 2, "progress": False}, _quantify_icpms),
    "quantify.twohead": Recipe({"epochs": 2, "progress": False}, _quantify_params),
    "quantify.wnnls_params": Recipe({}, _quantify_params),
    "quantify.ensemble": Recipe({"base_method": "pls", "n_members": 2}, _quantify),
    "classify.cnn": Recipe({"epochs": 2, "pretrain": False, "device": "cpu"}, _classify),
    "classify.rf": Recipe({}, _classify),
    "classify.knn": Recipe({}, _classify),
    "classify.plsda": Recipe({}, _classify),
    "classify.svm": Recipe({}, _classify),
    "denoise.classical": Recipe({}, _denoise, "transform"),
    "denoise.siamese": Recipe({"epochs": 2, "device": "cpu"}, _denoise, "transform"),
    "denoise.supervised": Recipe({"epochs": 2, "device": "cpu"}, lambda: (*_denoise()[:3], {"clean": _generic()[0]}),
                                 "transform"),
    "denoise.noise2noise": Recipe({"epochs": 2, "device": "cpu"}, _denoise, "transform"),
    "denoise.blindspot": Recipe({"epochs": 2, "device": "cpu"}, _denoise, "transform"),
    "transfer.ds": Recipe({}, _transfer),
    "transfer.pds": Recipe({}, _transfer),
    "transfer.pls": Recipe({}, _transfer),
    "transfer.knn": Recipe({}, _transfer),
    "transfer.none": Recipe({}, _transfer),
    "transfer.mlp": Recipe({"epochs": 2, "device": "cpu"}, _transfer),
    "transfer.vae-mlp": Recipe({"vae_epochs": 2, "mlp_epochs": 2, "device": "cpu"}, _transfer),
    "generate.cvae": Recipe({"epochs": 2, "device": "cpu"}, _generate, "generate"),
    "unmix.components": Recipe({}, _unmix, "transform"),
    "trust.qa": Recipe({"epochs": 2}, _qa),
    "gamma.identifier": Recipe({"epochs": 2, "hidden": 32, "n_bins": 256}, _gamma_nuclides, "decision_function"),
    "gamma.material-cnn": Recipe({"epochs": 2, "pretrain": False, "width": 4}, _gamma_materials, "predict_proba"),
    "gamma.composition-nnls": Recipe({}, lambda: _gamma_materials(targets=True)),
    "gamma.composition-ae": Recipe({"epochs": 2, "hidden": 32}, lambda: _gamma_materials(targets=True)),
    "gamma.revae": Recipe({"epochs": 2, "hidden": 32}, _gamma_materials, "generate"),
}
CONTRACT_TYPES = sorted(name for name in MODEL_TYPES if name.split(".")[0] in CONTRACT_SYSTEMS)


def test_every_registered_estimator_has_a_recipe():
    assert set(CONTRACT_TYPES) <= set(RECIPES), sorted(set(CONTRACT_TYPES) - set(RECIPES))
    assert set(CONTRACT_SYSTEMS) <= set(SYSTEMS)


def _fitted(model_type: str, seed: int = 0):
    recipe = RECIPES[model_type]
    cls = MODEL_TYPES[model_type]
    parts = recipe.data()
    fit_args, spectra, apply_kwargs = parts[:3]
    fit_kwargs = parts[3] if len(parts) > 3 else {}
    params = dict(recipe.params)
    if "seed" in cls().get_params():
        params["seed"] = seed
    estimator = cls(**params)
    return estimator.fit(*fit_args, **fit_kwargs), fit_args, spectra, apply_kwargs


def _output(model_type: str, estimator, spectra, kwargs) -> np.ndarray:
    recipe = RECIPES[model_type]
    if recipe.apply == "generate" and model_type == "gamma.revae":
        return estimator.generate([str(estimator.classes_[0])], 2, seed=3)[0].values()
    if recipe.apply == "generate":
        wanted = pd.DataFrame({"label": ["high", "low"]}, index=pd.Index(["w0", "w1"], name="id"))
        return estimator.generate(wanted, n_per_row=2, seed=3)[0].values()
    return recipe.output(estimator, spectra, kwargs)


def _other_axis(spectra: Spectra) -> Spectra:
    return Spectra(spectra.values(), spectra.axis + 0.37 * np.diff(spectra.axis).mean(), axis_kind=spectra.axis_kind,
                   axis_unit=spectra.axis_unit, meta=spectra.meta)


@pytest.fixture(scope="module")
def fitted():
    cache: dict[str, tuple] = {}

    def get(model_type: str):
        if model_type not in cache:
            torch.manual_seed(0)
            cache[model_type] = _fitted(model_type)
        return cache[model_type]
    return get


@pytest.mark.parametrize("model_type", CONTRACT_TYPES)
class TestEstimatorContract:
    def test_save_load_round_trip_gives_identical_outputs(self, model_type, fitted, tmp_path):
        estimator, _, spectra, kwargs = fitted(model_type)
        estimator.save(tmp_path / "m")
        again = load(tmp_path / "m")
        assert type(again) is type(estimator) and again.get_params() == estimator.get_params()
        np.testing.assert_allclose(_output(model_type, again, spectra, kwargs),
                                   _output(model_type, estimator, spectra, kwargs), rtol=1e-6, atol=1e-9)
        if isinstance(spectra, Spectra) and getattr(estimator, "domain_", None) is not None:  # quantify, classify, denoise, transfer
            np.testing.assert_array_equal(again.domain_distance(spectra), estimator.domain_distance(spectra))
        files = {p.name for p in (tmp_path / "m").iterdir()}
        assert files <= {"config.json", "weights.safetensors", ".speclearn-output.json"} | {
            f for f in files if f.endswith(".skops")}, files

    def test_refuses_spectra_on_another_axis(self, model_type, fitted):
        estimator, _, spectra, kwargs = fitted(model_type)
        if spectra is None or model_type.startswith("gamma."):
            pytest.skip("generates spectra, or rebins any energy axis onto its grid")
        if model_type.startswith("transfer."):
            with pytest.raises(InputError):
                estimator.predict(_other_axis(spectra))
            return
        with pytest.raises(InputError):
            _output(model_type, estimator, _other_axis(spectra), kwargs)

    def test_inputs_are_not_modified(self, model_type):
        recipe = RECIPES[model_type]
        parts = recipe.data()
        before = [a.values().copy() if isinstance(a, Spectra) else a.copy() for a in parts[0]
                  if isinstance(a, (Spectra, np.ndarray, pd.DataFrame, pd.Series))]
        estimator = MODEL_TYPES[model_type](**recipe.params).fit(*parts[0], **(parts[3] if len(parts) > 3 else {}))
        if parts[1] is not None:
            snapshot = parts[1].values().copy()
            _output(model_type, estimator, parts[1], parts[2])
            np.testing.assert_array_equal(parts[1].values(), snapshot)
        after = [a.values() if isinstance(a, Spectra) else a for a in parts[0]
                 if isinstance(a, (Spectra, np.ndarray, pd.DataFrame, pd.Series))]
        for a, b in zip(before, after):
            if isinstance(a, (pd.DataFrame, pd.Series)):
                assert pd.DataFrame(a).equals(pd.DataFrame(b))
            else:
                np.testing.assert_array_equal(a, b)

    def test_same_seed_same_result(self, model_type, fitted):
        estimator, _, spectra, kwargs = fitted(model_type)
        torch.manual_seed(123)  # a global seed must not matter: the estimator's own seed decides
        again = _fitted(model_type)[0]
        np.testing.assert_array_equal(_output(model_type, again, spectra, kwargs),
                                      _output(model_type, estimator, spectra, kwargs))

    def test_device_auto_with_cuda_present(self, model_type, fitted, monkeypatch):
        """`--device auto` never refuses a model when a GPU is present: torch models are sent to CUDA,
        CPU methods stay on the CPU (CUDA is faked; nothing is run on it)."""
        from speclearn.models import resolve_device
        estimator = fitted(model_type)[0]
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        moved = use_device(estimator, "auto")
        assert moved is estimator
        if "device" in estimator.get_params():  # a torch model: auto means the GPU
            assert resolve_device(moved.get_params()["device"]).type == "cuda"
        else:  # a CPU method: an explicit cuda is refused, auto is not
            with pytest.raises(InputError, match="CPU"):
                use_device(estimator, "cuda")

    def test_torch_models_train_and_predict_on_their_device(self, model_type, monkeypatch):
        """With `auto` meaning a GPU, training and prediction run there and no tensor is left behind on the CPU."""
        if "device" not in MODEL_TYPES[model_type]().get_params():
            pytest.skip("computes on the CPU")
        trained, _, spectra, kwargs = _fitted(model_type)  # on the CPU
        _on_fake_gpu(monkeypatch)
        recipe, parts = RECIPES[model_type], RECIPES[model_type].data()
        estimator = MODEL_TYPES[model_type](**{**recipe.params, "device": "auto"})
        _ran_on_fake_gpu(lambda: estimator.fit(*parts[0], **(parts[3] if len(parts) > 3 else {})))
        _ran_on_fake_gpu(lambda: _output(model_type, trained.set_params(device="auto"), spectra, kwargs),
                         required=model_type not in CPU_OUTPUTS)


#: torch models whose output in these recipes is computed on the CPU by design
CPU_OUTPUTS = {"gamma.revae": "the generator draws its random numbers on the CPU",
               "transfer.vae-mlp": "on few pairs the prior's linear map stands in for the network"}


def _on_fake_gpu(monkeypatch) -> None:
    """Make `auto` and `cuda` resolve to torch's meta device, a stand-in GPU: its tensors have shapes but no
    data, so a computation mixing in a CPU tensor fails with 'not on the expected device', as on a GPU,
    and reading a result back fails with 'meta tensors' (where a GPU would hand back numbers)."""
    import sys

    from speclearn.models import device as device_module
    original = device_module.resolve_device

    def fake(name: str = "auto") -> torch.device:
        if name not in device_module.DEVICES:
            return original(name)
        return torch.device("cpu" if name == "cpu" else "meta")
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("speclearn") and getattr(module, "resolve_device", None) is original:
            monkeypatch.setattr(module, "resolve_device", fake)


def _ran_on_fake_gpu(call: Callable[[], Any], *, required: bool = True) -> None:
    """`call` reached the point of reading a result back from the fake GPU (`required`: it must get there;
    else it may also finish on the CPU) and never mixed devices."""
    try:
        call()
    except (RuntimeError, NotImplementedError) as error:
        text = str(error)
        assert not any(m in text for m in ("expected device", "same device")), text
        assert "meta" in text, text
        return
    assert not required, "ran on the CPU although a GPU was present"


def test_shipped_models_with_the_older_type_names_load_through_the_one_front_door():
    from importlib import resources
    shipped = {"mrs/data/models/aligner": "mrs.cnn-aligner", "mrs/data/models/detector": "mrs.transient-detector",
               "gamma/default_model": "gamma.identifier"}
    for folder, model_type in shipped.items():
        model = load(resources.files("speclearn") / folder)
        assert model.model_type() == model_type and model.axis_


MRS_RECIPES = {
    "mrs.cnn-aligner": ({"n_scans": 6, "augment": 1, "epochs": 1}, lambda model, data: np.stack(model.estimate(data))),
    "mrs.transient-detector": ({"n_scans": 6, "epochs": 1}, lambda model, data: model.score(data)),
    "mrs.dl-quantifier": ({"method": "varpro", "epochs": 1, "calibration_fraction": 0.25, "refine": 1},
                          lambda model, data: model.predict(data)[0].to_numpy(float)),
}


@pytest.fixture(scope="module")
def mrs_data():
    from speclearn.mrs.basis import load_basis
    from speclearn.mrs.simulate import MRSSimConfig, simulate_mrs
    basis = load_basis()
    sim = simulate_mrs(8, seed=8, basis=basis, config=MRSSimConfig(transients=1, snr=(80.0, 80.0)))
    return basis, sim


def _fit_mrs(model_type: str, basis, sim, seed: int = 0):
    params, _ = MRS_RECIPES[model_type]
    model = methods("mrs")[model_type.split(".", 1)[1]](**params, seed=seed)
    return model.fit(sim.spectra, basis, sim.concentrations) if model_type == "mrs.dl-quantifier" else model.fit(basis)


@pytest.mark.parametrize("model_type", sorted(MRS_RECIPES))
def test_mrs_estimators_meet_the_contract(model_type, mrs_data, tmp_path, monkeypatch):
    """The same contract for the MRS models, whose input is complex FIDs with an acquisition record."""
    methods("mrs")
    basis, sim = mrs_data
    output = MRS_RECIPES[model_type][1]
    data, before = sim.spectra, sim.spectra.fid.copy()
    model = _fit_mrs(model_type, basis, sim)
    expected = output(model, data)
    model.save(tmp_path / "m")
    np.testing.assert_allclose(output(load(tmp_path / "m"), data), expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(data.fid, before)
    torch.manual_seed(123)
    np.testing.assert_array_equal(output(_fit_mrs(model_type, basis, sim), data), expected)
    with pytest.raises(InputError, match="dwell time"):
        output(model, data.with_fid(data.fid, dwell_time_s=2 * data.dwell_time_s))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    from speclearn.models import resolve_device
    assert use_device(model, "auto") is model and resolve_device(model.get_params()["device"]).type == "cuda"


@pytest.mark.parametrize("model_type", sorted(MRS_RECIPES))
def test_mrs_estimators_train_and_predict_on_their_device(model_type, mrs_data, monkeypatch):
    basis, sim = mrs_data
    trained = _fit_mrs(model_type, basis, sim)  # on the CPU
    _on_fake_gpu(monkeypatch)
    _ran_on_fake_gpu(lambda: _fit_mrs(model_type, basis, sim))
    _ran_on_fake_gpu(lambda: MRS_RECIPES[model_type][1](trained.set_params(device="auto"), sim.spectra))
    if model_type == "mrs.dl-quantifier":  # its other method: amplitudes from the network, MC-dropout draws
        supervised = trained.set_params(device="cpu", method="supervised", calibration_fraction=0.0)
        _ran_on_fake_gpu(lambda: supervised.set_params(device="auto").fit(sim.spectra, basis, sim.concentrations))
        supervised.set_params(device="cpu").fit(sim.spectra, basis, sim.concentrations)
        _ran_on_fake_gpu(lambda: supervised.set_params(device="auto").predict(sim.spectra))
