"""Matrix effects: two-headed quantifier with instrument parameters vs without and vs the classical correction
(logic in speclearn.quantify.matrix_benchmark)."""
from __future__ import annotations

import json

import torch

from speclearn.cli.bench import benchmark_parser
from speclearn.quantify.matrix_benchmark import run_benchmark


def main() -> None:
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = run_benchmark(args.out, scale=args.scale, seed=args.seed)
    print(json.dumps({"rows": result["rows"], "summary": result["summary"]}, indent=1))


if __name__ == "__main__":
    main()
