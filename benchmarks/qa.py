"""QA anomaly flags on simulated runs with injected faults: ROC AUC, drift detection delay
(logic in speclearn.trust.benchmark)."""
from __future__ import annotations

from speclearn.cli.bench import benchmark_parser
from speclearn.trust.benchmark import run_benchmark


def main() -> None:
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    run_benchmark(args.out, scale=args.scale, seed=args.seed, part="qa")
    print((args.out / "qa.md").read_text())


if __name__ == "__main__":
    main()
