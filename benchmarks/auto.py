"""`--method auto` against every single method through the CLI, on real spectra and the ICP-MS simulator
(issue 15; see speclearn.auto.benchmark)."""
from __future__ import annotations

from speclearn.auto.benchmark import NAME, SCALES, run_benchmark
from speclearn.cli.bench import benchmark_parser


def main() -> None:
    args = benchmark_parser(__doc__, scales=SCALES).parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result = run_benchmark(args.out, scale=args.scale, seed=args.seed)
    print((args.out / f"{NAME}.md").read_text())
    for name, met in result["summary"].items():
        print(name, "MET" if met else "NOT MET")


if __name__ == "__main__":
    main()
