"""Matrix effects: two-headed quantifier with instrument parameters vs without and vs the classical correction
(logic in speclearn.quantify.matrix_benchmark)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from speclearn.quantify.matrix_benchmark import run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["quick", "full"], default="quick")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = run_benchmark(args.out, scale=args.scale, seed=args.seed)
    print(json.dumps({"rows": result["rows"], "summary": result["summary"]}, indent=1))


if __name__ == "__main__":
    main()
