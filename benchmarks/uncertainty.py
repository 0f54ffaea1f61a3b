"""Coverage and width of prediction intervals (simulated ICP-MS + real fermentation NIR)
(logic in speclearn.trust.benchmark)."""
from __future__ import annotations

import argparse
from pathlib import Path

from speclearn.trust.benchmark import run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["quick", "full"], default="quick")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run_benchmark(args.out, scale=args.scale, seed=args.seed, part="uncertainty")
    print((args.out / "uncertainty.md").read_text())


if __name__ == "__main__":
    main()
