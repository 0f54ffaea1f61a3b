"""Denoising benchmark: SpectroscopyNet vs noise2noise, supervised and classical denoisers (see speclearn.denoise.benchmark)."""
from __future__ import annotations

from speclearn.cli.bench import benchmark_parser
from speclearn.denoise.benchmark import run_benchmark


def main() -> None:
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    result = run_benchmark(args.out, scale=args.scale, seed=args.seed)
    print((args.out / "denoising.md").read_text())
    print(f"wall time {result['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
