"""Denoising benchmark: SpectroscopyNet vs supervised and classical denoisers (see speclearn.denoise.benchmark)."""
from __future__ import annotations

import argparse
from pathlib import Path

from speclearn.denoise.benchmark import run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=("quick", "full"), default="quick")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run_benchmark(args.out, scale=args.scale, seed=args.seed)
    print((args.out / "denoising.md").read_text())
    print(f"wall time {result['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
