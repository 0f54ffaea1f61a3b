"""Gamma-ray spectroscopy benchmark: identification, materials, composition, Savitzky-Golay, real spectra.

Usage: python benchmarks/gamma.py [--scale quick|full] [--out benchmarks/results] [--seed 0]
"""
from __future__ import annotations

import json

from speclearn.cli.bench import benchmark_parser
from speclearn.gamma.benchmark import run_benchmark

if __name__ == "__main__":
    args = benchmark_parser(__doc__.splitlines()[0]).parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run_benchmark(args.out, scale=args.scale, seed=args.seed)["summary"], indent=2, default=str))
