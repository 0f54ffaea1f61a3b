"""Seed 003 Table 1 for every spectral-transfer method, plus the Zarr streaming study (see speclearn.transfer.benchmark)."""
from __future__ import annotations

from speclearn.cli.bench import benchmark_parser
from speclearn.transfer.benchmark import rerun_streaming, run_benchmark


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--only-streaming", action="store_true",
                        help="redo only the Zarr streaming study and update an existing transfer.json")
    args = parser.parse_args()
    run = rerun_streaming if args.only_streaming else run_benchmark
    result = run(args.out, scale=args.scale, seed=args.seed)
    print((args.out / "transfer.md").read_text())
    for name, target in result["targets"].items():
        print(name, "MET" if target["met"] else "NOT MET")


if __name__ == "__main__":
    main()
