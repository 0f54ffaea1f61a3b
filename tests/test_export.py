"""`speclearn export`: every network kind to ONNX and TorchScript, reproducing PyTorch to 1e-5."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from speclearn.core.errors import InputError
from speclearn.export import Runner, export, max_difference, network
from speclearn.export.benchmark import KINDS, tiny_models

FORMATS = ["onnx", "torchscript"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.set_num_threads(1)
    return tiny_models(tmp_path_factory.mktemp("models"), seed=0)


def _reference(net, inputs):
    with torch.no_grad():
        return net.module.eval()(*(torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in inputs)).numpy()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_export_reproduces_pytorch(models, kind, fmt, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    path, sample = models[kind]
    net = network(path)
    assert net.model_type == kind
    inputs = net.prepare(sample) if net.prepare is not None else tuple(t.numpy() for t in net.example(7, seed=3))
    out_file = export(net, tmp_path / f"net.{fmt}", fmt)
    reference = _reference(net, inputs)
    exported = Runner(out_file)(*inputs)
    assert exported.shape == reference.shape and np.isfinite(reference).all()
    np.testing.assert_allclose(exported, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())
    single = Runner(out_file)(*(np.asarray(a)[:1] for a in inputs))  # the batch dimension is dynamic
    np.testing.assert_allclose(single, reference[:1], rtol=1e-5, atol=1e-5 * np.abs(reference).max())
    if fmt == "onnx":  # with 2 threads the first call keeps the faster session; every call agrees
        runner = Runner(out_file, threads=2)
        assert len(runner.sessions) == 2
        first, second = runner(*inputs), runner(*inputs)
        assert len(runner.sessions) == 1
        np.testing.assert_allclose(first, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())
        np.testing.assert_array_equal(first, second)


def test_exported_denoiser_and_quantifier_are_the_speclearn_predictions(models, tmp_path):
    from speclearn.denoise import Denoiser
    from speclearn.models import load
    from speclearn.quantify import Quantifier
    path, sample = models["denoise.supervised"]
    file = export(network(path), tmp_path / "d.pt", "torchscript")
    np.testing.assert_allclose(Runner(file)(sample.values()), load(path, Denoiser).transform(sample).values(),
                               rtol=1e-5, atol=1e-4)
    path, sample = models["quantify.caemmt"]
    net = network(path)
    file = export(net, tmp_path / "q.pt", "torchscript")
    np.testing.assert_allclose(Runner(file)(*net.prepare(sample)), load(path, Quantifier).predict(sample).to_numpy(),
                               rtol=1e-4, atol=1e-6)


def test_cli_export_writes_file_and_contract(models, tmp_path, cli):
    path, _ = models["classify.cnn"]
    out = tmp_path / "cnn.pt"
    code, _, err = cli("export", "--model", path, "--format", "torchscript", "--out", out)
    assert code == 0, err
    contract = json.loads((tmp_path / "cnn.pt.json").read_text())
    assert contract["model_type"] == "classify.cnn" and contract["inputs"]["spectra"]["shape"] == ["batch", 512]
    assert contract["targets"] == ["a", "b"] and contract["max_relative_difference_vs_pytorch"] < 1e-5
    assert max_difference(network(path), out) < 1e-5
    code, _, err = cli("export", "--model", path, "--format", "torchscript", "--out", out)
    assert code == 2 and "already exists" in err
    code, _, err = cli("export", "--model", path, "--format", "tflite", "--out", tmp_path / "x")
    assert code == 2 and "onnx or torchscript" in err


def test_models_without_network_are_refused(tmp_path):
    from speclearn.unmix import FixedSpectraUnmixer
    FixedSpectraUnmixer().fit(np.eye(3), {"kind": "channel", "unit": "", "values": [0, 1, 2]}).save(tmp_path / "u")
    with pytest.raises(InputError, match="no network to export"):
        network(tmp_path / "u")
    with pytest.raises(InputError, match="not a speclearn model folder"):
        network(tmp_path)
