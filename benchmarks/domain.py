"""Spectra unlike a model's training spectra: how often the training domain flags them, and how often it
flags held-out spectra of the training set itself (see speclearn.trust.domain_benchmark)."""
from __future__ import annotations

from speclearn.cli.bench import benchmark_parser
from speclearn.trust.domain_benchmark import NAME, SCALES, run_benchmark


def main() -> None:
    args = benchmark_parser(__doc__, scales=SCALES).parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    run_benchmark(args.out, scale=args.scale, seed=args.seed)
    print((args.out / f"{NAME}.md").read_text())


if __name__ == "__main__":
    main()
