"""ICP-MS quantification benchmark: CAEM-MT vs WNNLS, GD, PCA+NMF, RF, PLS and the noise floor."""
from __future__ import annotations

import argparse
from pathlib import Path

from speclearn.quantify.benchmark import run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["quick", "full"], default="quick")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hard-scale", choices=["quick", "full"], default=None,
                        help="scale of the harder setting (default: --scale)")
    args = parser.parse_args()
    run_benchmark(args.out, scale=args.scale, seed=args.seed, hard_scale=args.hard_scale)
    print((args.out / "icpms_quantification.md").read_text())


if __name__ == "__main__":
    main()
