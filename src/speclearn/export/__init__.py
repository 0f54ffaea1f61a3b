"""Export the network inside a saved speclearn model to ONNX or TorchScript for deployment.

`network(model_dir)` loads a saved model through its own loader and returns its torch module with
named inputs and what they mean; `export_model` writes `FILE` (.onnx or TorchScript .pt) and
`FILE.json` (the contract: model type, inputs, outputs, axis, targets). Where speclearn's own
pre/post-processing is a fixed scaling it is part of the exported graph (denoisers: raw spectra in,
cleaned spectra out; cVAE: latent + condition in, spectra out); elsewhere the graph starts at the
network's input, which the contract describes (e.g. spectra after the model's preprocessing
pipeline). The batch dimension is dynamic; the channel count is the model's.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speclearn.core.errors import InputError
from speclearn.metrics import best_times

FORMATS = ("onnx", "torchscript")


@dataclass
class Network:
    """A torch module with named inputs (width; the batch dimension comes first) and one output.
    `prepare(spectra)`, where given, turns spectra into the network's inputs as speclearn does."""

    model_type: str
    module: nn.Module
    inputs: dict[str, int]
    output: str
    meaning: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[Any], tuple[np.ndarray, ...]] | None = None

    def example(self, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        return tuple(torch.randn(batch, n, generator=generator) for n in self.inputs.values())


class _Scaled(nn.Module):
    """y -> net(y / scale) * scale: a denoiser as speclearn applies it, on raw intensities."""

    def __init__(self, net: nn.Module, scale: float):
        super().__init__()
        self.net, self.scale = net, float(scale)

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        return self.net(spectra / self.scale) * self.scale


class _Softmax(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(spectra), dim=1)


class _Decoder(nn.Module):
    """(z, condition) -> spectra: the cVAE's mean decoder, unscaled to intensities."""

    def __init__(self, net: nn.Module, mean: np.ndarray, scale: np.ndarray):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.net.decode(z, condition) * self.scale + self.mean


class _Output(nn.Module):
    """One output of a multi-output network, optionally unstandardised (out * std + mean)."""

    def __init__(self, net: nn.Module, index: int, mean: np.ndarray | None = None, std: np.ndarray | None = None):
        super().__init__()
        self.net, self.index = net, index
        self.register_buffer("mean", torch.as_tensor(0.0 if mean is None else mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(1.0 if std is None else std, dtype=torch.float32))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)[self.index] * self.std + self.mean


def network(directory: str | Path, *, secondary: str | None = None) -> Network:
    """The torch network of a saved model (denoise siamese/supervised, classify cnn, transfer
    vae-mlp/mlp, generate cvae, quantify caemmt/twohead). `secondary` picks a transfer model's
    secondary instrument (default: its only one)."""
    from speclearn.models import load
    directory = Path(directory)
    model = load(directory)
    model_type = model.model_type()
    if model.system == "denoise":
        if not hasattr(model, "module_"):
            raise InputError(f"{model_type} has no network to export (only siamese and supervised do)", file=directory)
        n_channels = len(model.axis_["values"])
        return Network(model_type, _Scaled(model.module_, model.scale_), {"spectra": n_channels}, "clean",
                       {"spectra": "raw spectra on the model's axis", "clean": "denoised spectra"},
                       {"axis": model.axis_}, lambda spectra: (spectra.values(),))
    if model_type == "classify.cnn":
        return Network(model_type, _Softmax(model.net_), {"spectra": len(model.axis_["values"])}, "probabilities",
                       {"spectra": "spectra after the model's preprocessing pipeline (config.json 'preprocessing'; "
                                   "speclearn: CNNClassifier.transform_input)",
                        "probabilities": "class probabilities, columns in the order of 'targets'"},
                       {"axis": model.axis_, "targets": [str(c) for c in model.classes_]},
                       lambda spectra: (model.transform_input(spectra),))
    if model.system == "transfer":
        name = model.resolve_secondary(secondary)
        n_in = len(model.secondary_axes_[name]["values"])
        if model_type == "transfer.mlp":
            module = model.net_
        elif model_type == "transfer.vae-mlp":
            module = nn.Sequential(model.mlps_[name], model.vae_.decoder)
        else:
            raise InputError(f"{model_type} has no network to export (only vae-mlp and mlp do)", file=directory)
        return Network(model_type, module, {"secondary": n_in}, "primary",
                       {"secondary": f"spectra of secondary {name!r} after its baseline removal and scaling "
                                     "(speclearn: the model's secondary_pipes_)",
                        "primary": "primary spectra, scaled (invert with the model's primary_pipe_)"},
                       {"secondary_name": name, "axis": model.axis_},
                       lambda spectra: (model.secondary_pipes_[name].transform(spectra.values()),))
    if model_type == "generate.cvae":
        n_condition = len(model.classes_) if model.condition_kind_ == "class" else len(model.condition_columns_)
        return Network(model_type, _Decoder(model.net_, model.mean_, model.scale_),
                       {"z": model.latent_dim, "condition": n_condition}, "spectra",
                       {"z": "latent point (standard normal)", "condition": "encoded condition (speclearn: "
                        "ConditionalVAE.encode_condition: one-hot classes or standardised values)",
                        "spectra": "generated mean spectra (no noise added)"},
                       {"axis": model.axis_, "targets": list(model.condition_columns_)})
    if model_type in ("quantify.caemmt", "quantify.twohead"):
        if model_type == "quantify.caemmt":
            seed = model.architecture_ == "seed"
            module = _Output(model.net_, 1, model.conc_mean_ if seed else None, model.conc_std_ if seed else None)
            n_in = int(model._inputs(np.ones((1, len(model.axis_["values"])))).shape[1])
            meaning = ("network input (speclearn: CAEMMT._inputs: the analyte region, scaled, with its shift and, "
                       "for the physics architecture, the amounts of the weighted solve)")
            prepare = lambda spectra: (model._inputs(spectra.values().astype(float)),)  # noqa: E731
        else:
            module, n_in = model.net_, int(sum(model.net_.sizes))
            meaning = ("features from the WNNLS amounts and instrument parameters (speclearn: "
                       "TwoHeadQuantifier._inputs)")
            prepare = None if model.net_.sizes[1] else (  # with instrument parameters the caller supplies them
                lambda spectra: (model._inputs(model.physics_.amounts(spectra.values().astype(float)), None),))
        return Network(model_type, module, {"inputs": n_in}, "concentrations",
                       {"inputs": meaning, "concentrations": "concentrations, columns in the order of 'targets'"},
                       {"axis": model.axis_, "targets": list(model.targets_)}, prepare)
    raise InputError(f"a {model_type!r} model holds no network to export; networks: denoise siamese/supervised, "
                     "classify cnn, transfer vae-mlp/mlp, generate cvae, quantify caemmt/twohead", file=directory)


def export(net: Network, path: str | Path, fmt: str, *, overwrite: bool = False) -> Path:
    """Write the network, atomically, as ONNX (opset 18, dynamic batch) or traced TorchScript."""
    from speclearn.io import atomic_path
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose {' or '.join(FORMATS)}")
    module = net.module.cpu().eval()
    example = net.example()
    with torch.no_grad(), atomic_path(path, overwrite=overwrite) as tmp:
        if fmt == "torchscript":
            torch.jit.trace(module, example).save(str(tmp))
        else:
            try:
                import onnx  # noqa: F401
                import onnxscript  # noqa: F401
            except ImportError:
                raise InputError("ONNX export needs onnx and onnxscript: pip install 'speclearn[export]'") from None
            _onnx(module, example, tmp, net)
    return Path(path)


def _onnx(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path, net: Network) -> None:
    """The TorchScript-based exporter (fast), else torch.export (dynamo: covers more operators, e.g. asinh)."""
    import warnings
    names = {"input_names": list(net.inputs), "output_names": [net.output]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # ONNX has Asinh (opset 9), the TorchScript-based exporter just lacks the mapping (CAEM-MT uses it)
        torch.onnx.register_custom_op_symbolic("aten::asinh", lambda g, x: g.op("Asinh", x), 9)
        try:
            torch.onnx.export(module, example, str(path), **names, opset_version=18, dynamo=False,
                              dynamic_axes={name: {0: "batch"} for name in [*net.inputs, net.output]})
        except Exception:  # noqa: BLE001 - an operator the old exporter lacks: the dynamo exporter has it
            torch.onnx.export(module, example, str(path), **names, opset_version=18, dynamo=True,
                              dynamic_shapes=tuple({0: torch.export.Dim("batch")} for _ in net.inputs),
                              external_data=False, verbose=False)


def max_difference(net: Network, path: str | Path, inputs: tuple[np.ndarray, ...] | None = None) -> float:
    """Largest |exported - PyTorch| output difference, relative to the largest PyTorch output."""
    inputs = inputs if inputs is not None else tuple(t.numpy() for t in net.example(8, seed=1))
    with torch.no_grad():
        reference = net.module.eval()(*(torch.as_tensor(a, dtype=torch.float32) for a in inputs)).numpy()
    out = Runner(path)(*inputs)
    return float(np.abs(out - reference).max() / max(np.abs(reference).max(), 1e-30))


def contract(net: Network, fmt: str, directory: str | Path) -> dict[str, Any]:
    """What `FILE.json` says about an exported network."""
    return {"model": str(directory), "model_type": net.model_type, "format": fmt,
            "inputs": {name: {"shape": ["batch", n], "dtype": "float32", "meaning": net.meaning[name]}
                       for name, n in net.inputs.items()},
            "output": {"name": net.output, "meaning": net.meaning[net.output]}, **net.extra}


class Runner:
    """Run an exported file: `Runner(path)(*arrays)` -> numpy output (ONNX Runtime or TorchScript).

    ONNX with `threads` > 1: the first call times a 1-thread and a `threads`-thread session on its
    input and keeps the faster (ONNX Runtime parallelises every operator, which slows small networks:
    the cVAE decoder ran at 0.94x PyTorch on 2 threads and 1.32x on 1)."""

    def __init__(self, path: str | Path, *, threads: int = 1):
        self.path = Path(path)
        if self.path.suffix == ".onnx":
            import onnxruntime as ort

            def session(n: int):
                options = ort.SessionOptions()
                options.intra_op_num_threads = options.inter_op_num_threads = n
                return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self.sessions = [session(n) for n in sorted({1, max(1, threads)})]
            self.names = [i.name for i in self.sessions[0].get_inputs()]
        else:
            self.module = torch.jit.load(str(self.path)).eval()

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        arrays = tuple(np.ascontiguousarray(a, dtype=np.float32) for a in arrays)
        if hasattr(self, "sessions"):
            feed = dict(zip(self.names, arrays))
            if len(self.sessions) > 1:
                seconds = best_times({k: (lambda s=s: s.run(None, feed)) for k, s in enumerate(self.sessions)}, 7)
                self.sessions = [self.sessions[min(seconds, key=seconds.get)]]
            return self.sessions[0].run(None, feed)[0]
        with torch.no_grad():
            return self.module(*(torch.from_numpy(a) for a in arrays)).numpy()


__all__ = ["FORMATS", "Network", "Runner", "contract", "export", "max_difference", "network"]
