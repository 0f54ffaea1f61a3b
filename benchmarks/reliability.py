"""Every command fed malformed and hostile inputs (full: all cases; quick: every fourth)."""
from speclearn.cli.bench import benchmark_parser
from speclearn.reliability import run_benchmark

if __name__ == "__main__":
    args = benchmark_parser(__doc__).parse_args()
    run_benchmark(args.out, scale=args.scale, seed=args.seed)
