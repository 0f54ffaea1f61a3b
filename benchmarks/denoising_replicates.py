"""Denoising on real replicate sets: held-out replicate agreement, nearest-centroid accuracy, speed
(see speclearn.denoise.replicate_benchmark)."""
from __future__ import annotations

from speclearn.cli.bench import benchmark_parser
from speclearn.denoise.replicate_benchmark import NAME, run_benchmark


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--only", nargs="+", help="Run only these sets (e.g. 'X-ray EDS'); the other sets' "
                                                  "earlier results in --out are kept.")
    args = parser.parse_args()
    result = run_benchmark(args.out, scale=args.scale, seed=args.seed, only=args.only)
    print((args.out / f"{NAME}.md").read_text())
    print(f"wall time {result['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
