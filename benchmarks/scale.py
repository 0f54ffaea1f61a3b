"""Scale benchmark: Zarr spectrum images unmixed and denoised on a dask LocalCluster (2 workers x 2 GB).

Usage: python benchmarks/scale.py [--scale quick|full|protocol] [--out benchmarks/results]
"""
from __future__ import annotations

import json

from speclearn.cli.bench import benchmark_parser
from speclearn.distributed import SCALES, run_benchmark

if __name__ == "__main__":
    args = benchmark_parser(__doc__.splitlines()[0], scales=tuple(SCALES)).parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run_benchmark(args.out, scale=args.scale, seed=args.seed)["summary"], indent=2, default=str))
