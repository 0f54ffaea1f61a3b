"""Speed and memory of the synthetic-spectra generators (logic in speclearn.simulate.benchmark)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from speclearn.simulate.benchmark import run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["quick", "full"], default="quick")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run_benchmark(args.out, scale=args.scale, seed=args.seed)
    print(json.dumps(result["rows"], indent=1))


if __name__ == "__main__":
    main()
