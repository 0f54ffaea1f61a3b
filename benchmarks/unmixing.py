"""Benchmark: PSNMF vs NMF (Frobenius, KL) and PCA-NMF on simulated EDX maps over a dose sweep; memory vs map size."""

from speclearn.cli.bench import benchmark_parser
from speclearn.unmix.benchmark import run_benchmark

if __name__ == "__main__":
    parser = benchmark_parser(__doc__)
    parser.add_argument("--only", choices=["sweep", "memory"], help="Run one part; keep the other from the last run.")
    args = parser.parse_args()
    parts = (args.only,) if args.only else ("sweep", "memory")
    print("\n".join(run_benchmark(args.out, scale=args.scale, seed=args.seed, parts=parts)["targets"]))
