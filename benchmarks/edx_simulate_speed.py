"""Benchmark: stream a simulated EDX spectrum image to Zarr (time, peak memory)."""
import argparse
from pathlib import Path

from speclearn.simulate.edx_benchmark import run_benchmark

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["quick", "full"], default="quick")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(run_benchmark(args.out, scale=args.scale, seed=args.seed)["verdict"])
