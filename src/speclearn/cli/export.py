"""`speclearn export --model MODEL --format onnx|torchscript --out FILE`: a saved network for deployment."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from speclearn.cli.common import OverwriteOption, say
from speclearn.core.errors import InputError


def export(
    model: Annotated[Path, typer.Option("--model", help="Saved model folder (a network: denoise, classify cnn, "
                                                        "transfer vae-mlp/mlp, generate cvae, quantify caemmt/twohead).")],
    out: Annotated[Path, typer.Option("--out", help="Output file (.onnx or .pt); FILE.json describes its inputs.")],
    fmt: Annotated[str, typer.Option("--format", help="onnx or torchscript.")] = "onnx",
    secondary: Annotated[str | None, typer.Option("--secondary", help="Transfer models: which secondary "
                                                                      "instrument (default: the only one).")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Export a saved model's network to ONNX or TorchScript, checked against PyTorch on sample inputs."""
    from speclearn.export import FORMATS, contract, export as write, max_difference, network
    from speclearn.io import atomic_path, check_output
    if fmt not in FORMATS:
        raise InputError(f"unknown --format {fmt!r}; choose {' or '.join(FORMATS)}")
    sidecar = out.with_name(out.name + ".json")
    for path in (out, sidecar):
        check_output(path, overwrite=overwrite, inputs=[model])
    net = network(model, secondary=secondary)
    write(net, out, fmt, overwrite=overwrite)
    difference = max_difference(net, out)
    with atomic_path(sidecar, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps({**contract(net, fmt, model), "max_relative_difference_vs_pytorch": difference},
                                  indent=2))
    say(f"wrote {net.model_type} network as {fmt} to {out} (inputs: "
        f"{', '.join(f'{k} (batch x {v})' for k, v in net.inputs.items())}; max relative difference to PyTorch "
        f"{difference:.1e}); contract in {sidecar}")
