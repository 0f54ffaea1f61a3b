"""Speed and memory of the synthetic-spectra generators (logic in speclearn.simulate.benchmark)."""
from __future__ import annotations

import json

from speclearn.cli.bench import benchmark_parser
from speclearn.simulate.benchmark import run_benchmark


def main() -> None:
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    result = run_benchmark(args.out, scale=args.scale, seed=args.seed)
    print(json.dumps(result["rows"], indent=1))


if __name__ == "__main__":
    main()
