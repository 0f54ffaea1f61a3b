"""ICP-MS quantification benchmark: CAEM-MT vs WNNLS, GD, PCA+NMF, RF, PLS and the noise floor."""
from __future__ import annotations

from speclearn.cli.bench import benchmark_parser
from speclearn.quantify.benchmark import merge_results, run_benchmark, settings


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--hard-scale", choices=["quick", "full"], default=None,
                        help="scale of the harder setting (default: --scale)")
    parser.add_argument("--setting", choices=list(settings()), default=None,
                        help="run one setting only (to run them as parallel processes), then --merge")
    parser.add_argument("--merge", action="store_true", help="combine the per-setting results and exit")
    args = parser.parse_args()
    if args.merge:
        merge_results(args.out)
    else:
        run_benchmark(args.out, scale=args.scale, seed=args.seed, hard_scale=args.hard_scale, only=args.setting)
        if args.setting:
            return
    print((args.out / "icpms_quantification.md").read_text())


if __name__ == "__main__":
    main()
