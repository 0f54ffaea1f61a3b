"""Benchmark: stream a simulated EDX spectrum image to Zarr (time, peak memory)."""

from speclearn.cli.bench import benchmark_parser
from speclearn.simulate.edx_benchmark import run_benchmark

if __name__ == "__main__":
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    print(run_benchmark(args.out, scale=args.scale, seed=args.seed)["verdict"])
