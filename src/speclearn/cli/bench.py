"""`speclearn bench NAME`: run one of the benchmarks (the same code as `benchmarks/NAME.py`)."""
from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from speclearn.cli.common import OverwriteOption, SeedOption, say
from speclearn.core.errors import InputError

#: benchmark name -> module holding `run_benchmark(out_dir, *, scale, seed)`
BENCHMARKS = {
    "icpms": "speclearn.quantify.benchmark",
    "matrix_effects": "speclearn.quantify.matrix_benchmark",
    "denoising": "speclearn.denoise.benchmark",
    "denoising_replicates": "speclearn.denoise.replicate_benchmark",
    "transfer": "speclearn.transfer.benchmark",
    "unmixing": "speclearn.unmix.benchmark",
    "simulate": "speclearn.simulate.benchmark",
    "classification": "speclearn.classify.benchmark",
    "augmentation": "speclearn.generate.benchmark",
    "trust": "speclearn.trust.benchmark",
    "reliability": "speclearn.reliability",
    "export": "speclearn.export.benchmark",
    "auto": "speclearn.auto.benchmark",
    "gamma": "speclearn.gamma.benchmark",
    "mrs": "speclearn.mrs.benchmark",
    "scale": "speclearn.distributed",
    "domain": "speclearn.trust.domain_benchmark",
}


def benchmark_parser(description: str | None, scales=("quick", "full")) -> argparse.ArgumentParser:
    """The options every `benchmarks/*.py` script shares: --scale, --out, --seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--scale", choices=list(scales), default="quick")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--seed", type=int, default=0)
    return parser


def bench(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(BENCHMARKS)}.")],
    scale: Annotated[str, typer.Option(help="quick (minutes), full (the published protocol's scale), or another the benchmark defines.")] = "quick",
    out: Annotated[Path, typer.Option(help="Folder for JSON, markdown and figures.")] = Path("speclearn-bench"),
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
) -> None:
    """Run a benchmark and write its JSON, markdown table and figures into --out."""
    if name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    module = importlib.import_module(BENCHMARKS[name])
    scales = list(getattr(module, "SCALES", ("quick", "full")))
    if scale not in scales:
        raise InputError(f"--scale must be one of {', '.join(scales)} for {name}, got {scale!r}")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError("folder already holds files; pass --overwrite to let the benchmark replace "
                         "its own results there", file=out)
    if not out.parent.is_dir():
        raise InputError(f"output folder {out.parent} does not exist", file=out)
    out.mkdir(exist_ok=True)
    result = module.run_benchmark(out, scale=scale, seed=seed)
    say(f"wrote benchmark results to {out}")
    typer.echo(json.dumps(result.get("summary", {}), indent=2, default=str))
