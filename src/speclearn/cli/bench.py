"""`speclearn bench NAME`: run one of the benchmarks (the same code as `benchmarks/NAME.py`)."""
from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from speclearn.cli.common import SeedOption, say
from speclearn.core.errors import InputError

#: benchmark name -> module holding `run_benchmark(out_dir, *, scale, seed)`
BENCHMARKS = {
    "icpms": "speclearn.quantify.benchmark",
    "matrix_effects": "speclearn.quantify.matrix_benchmark",
    "denoising": "speclearn.denoise.benchmark",
    "transfer": "speclearn.transfer.benchmark",
    "unmixing": "speclearn.unmix.benchmark",
    "simulate": "speclearn.simulate.benchmark",
    "classification": "speclearn.classify.benchmark",
    "augmentation": "speclearn.generate.benchmark",
    "trust": "speclearn.trust.benchmark",
    "mrs": "speclearn.mrs.benchmark",
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
    scale: Annotated[str, typer.Option(help="quick (minutes), full (the issue's protocol scale), or another the benchmark defines.")] = "quick",
    out: Annotated[Path, typer.Option(help="Folder for JSON, markdown and figures.")] = Path("benchmarks/results"),
    seed: SeedOption = 0,
) -> None:
    """Run a benchmark and write its JSON, markdown table and figures."""
    if name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    module = importlib.import_module(BENCHMARKS[name])
    scales = list(getattr(module, "SCALES", ("quick", "full")))
    if scale not in scales:
        raise InputError(f"--scale must be one of {', '.join(scales)} for {name}, got {scale!r}")
    out.mkdir(parents=True, exist_ok=True)
    result = module.run_benchmark(out, scale=scale, seed=seed)
    say(f"wrote benchmark results to {out}")
    typer.echo(json.dumps(result.get("summary", {}), indent=2, default=str))
