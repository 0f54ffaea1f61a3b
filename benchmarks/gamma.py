"""Gamma-ray spectroscopy benchmark: identification, materials, composition, Savitzky-Golay, real spectra.

Usage: python benchmarks/gamma.py [--scale quick|full] [--out benchmarks/results] [--seed 0]
       [--sections identification real]   (rerun only these; the others keep the previous results)
"""
from __future__ import annotations

import json

from speclearn.cli.bench import benchmark_parser
from speclearn.gamma.benchmark import run_benchmark

if __name__ == "__main__":
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", help="identification, real, savitzky_golay, composition, "
                                                      "classification, generation, auto (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run_benchmark(args.out, scale=args.scale, seed=args.seed, sections=args.sections)["summary"],
                     indent=2, default=str))
