"""Seed-002 workflow benchmarks: classification (coffee) and generative augmentation (LIBS).

Usage: python benchmarks/workflow.py [--scale quick|full] [--out benchmarks/results] [--only classification|augmentation]
"""
from __future__ import annotations

import json

from speclearn.cli.bench import benchmark_parser
from speclearn.classify.benchmark import run_benchmark as run_classification
from speclearn.generate.benchmark import run_benchmark as run_augmentation

BENCHMARKS = {"classification": run_classification, "augmentation": run_augmentation}

if __name__ == "__main__":
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", choices=tuple(BENCHMARKS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, run in BENCHMARKS.items():
        if args.only in (None, name):
            print(json.dumps(run(args.out, scale=args.scale, seed=args.seed)["summary"], indent=2, default=str))
