"""Coverage and width of prediction intervals (simulated ICP-MS + real fermentation NIR)
(logic in speclearn.trust.benchmark)."""
from __future__ import annotations

from speclearn.cli.bench import benchmark_parser
from speclearn.trust.benchmark import run_benchmark


def main() -> None:
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    run_benchmark(args.out, scale=args.scale, seed=args.seed, part="uncertainty")
    print((args.out / "uncertainty.md").read_text())


if __name__ == "__main__":
    main()
