"""Seed 003 Table 1 for every spectral-transfer method, plus the Zarr streaming study (see speclearn.transfer.benchmark)."""
from __future__ import annotations

import json

from speclearn.cli.bench import benchmark_parser
from speclearn.transfer.benchmark import BLOCKS, SCALES, result_stem, run_benchmark, run_streaming


def main() -> None:
    parser = benchmark_parser(__doc__, scales=SCALES)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--only-streaming", action="store_true",
                       help="run only the Zarr streaming study (transfer_streaming.json)")
    group.add_argument("--skip-streaming", action="store_true",
                       help="run only Table 1 and keep the existing transfer_streaming.json")
    parser.add_argument("--blocks", nargs="+", choices=BLOCKS, default=list(BLOCKS),
                        help="Table 1 blocks to run (the result holds only those)")
    args = parser.parse_args()
    if args.only_streaming:
        print(json.dumps(run_streaming(args.out, scale=args.scale, seed=args.seed), indent=2))
        return
    result = run_benchmark(args.out, scale=args.scale, seed=args.seed, streaming=not args.skip_streaming,
                           blocks=tuple(args.blocks))
    print((args.out / f"{result_stem(args.scale)}.md").read_text())
    for name, target in result["targets"].items():
        print(name, "MET" if target["met"] else "NOT MET")


if __name__ == "__main__":
    main()
