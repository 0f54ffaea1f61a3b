"""MRS: alignment spread (CNN vs spectral registration), quantification error of the DL quantifier vs the
linear-combination fit vs the CRLB, interval coverage, out-of-range slope, corrupted-transient detection,
speed, denoising of few-average spectra and coil combination (logic in speclearn.mrs.benchmark)."""
from __future__ import annotations

from speclearn.cli.bench import benchmark_parser
from speclearn.mrs.benchmark import SECTIONS, run_benchmark


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="main -> mrs.json/.md; denoising (few-average spectra) -> mrs_denoising.json/.md; "
                             "coils (combining uncombined coils) -> mrs_coils.json/.md")
    args = parser.parse_args()
    run_benchmark(args.out, scale=args.scale, seed=args.seed, sections=tuple(args.sections))
    for section, name in (("main", "mrs.md"), ("denoising", "mrs_denoising.md"), ("coils", "mrs_coils.md")):
        if section in args.sections:
            print((args.out / name).read_text())


if __name__ == "__main__":
    main()
