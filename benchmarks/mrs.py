"""MRS: alignment spread (CNN vs spectral registration), quantification error of the DL quantifier vs the
linear-combination fit vs the CRLB, interval coverage, out-of-range slope, corrupted-transient detection,
speed (logic in speclearn.mrs.benchmark)."""
from __future__ import annotations

from speclearn.cli.bench import benchmark_parser
from speclearn.mrs.benchmark import run_benchmark


def main() -> None:
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    run_benchmark(args.out, scale=args.scale, seed=args.seed)
    print((args.out / "mrs.md").read_text())


if __name__ == "__main__":
    main()
