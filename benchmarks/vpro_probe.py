"""Probe: variable-projection inversion (vpro) vs WNNLS vs the noise floor on the ICP-MS benchmark settings.

Per setting (`settings()` of the quantification benchmark): train spectra (seed), test spectra (seed + 1,
concentration range x 1.5), blanks (seed + 2) for the WNNLS LOQ; relative errors over test items above
it, as the benchmark does. "vpro (oracle shape)" is vpro given the simulator's true peak shape (only the
per-spectrum shift and bias estimated), to separate shape estimation from the per-spectrum nuisance.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/vpro_probe.py --train 300 --test 100
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import ttest_rel, wilcoxon

from speclearn.io.atomic import write_result
from speclearn.quantify.analyst import detection_limits
from speclearn.quantify.benchmark import noise_floor, settings
from speclearn.quantify.physics import SHAPE_BOUNDS
from speclearn.quantify.vpro import VarProQuantifier
from speclearn.quantify.wnnls import WNNLS
from speclearn.simulate.icpms import simulate_icpms


class OracleShape(VarProQuantifier):
    """vpro with the simulator's true peak shape (a diagnostic, reads the truth)."""

    true_shape: dict = {}

    def _fit_shape(self, axis, X, shifts):
        return dict(self.true_shape)


def run(name: str, config, n_train: int, n_test: int, n_blanks: int, seed: int) -> dict:
    train = simulate_icpms(n_train, seed=seed, config=config)
    test = simulate_icpms(n_test, seed=seed + 1, config=config, concentration_range_factor=1.5)
    blank_config = type(config)(**{**config.__dict__, "concentration_median": 1e-9, "concentration_sigma": 0.0})
    blanks = simulate_icpms(n_blanks, seed=seed + 2, config=blank_config)
    inst = config.instrument
    OracleShape.true_shape = {k: float(getattr(inst, k)) for k in SHAPE_BOUNDS}
    OracleShape.true_shape["eta"] = inst.eta if inst.shape == "pseudo_voigt" else 0.0
    truth = test.targets.to_numpy()
    predictions, timing = {}, {}
    start = time.perf_counter()
    predictions["noise floor"] = noise_floor(test)
    timing["noise floor"] = (0.0, 1000 * (time.perf_counter() - start) / n_test)
    models = {}
    for label, cls in (("wnnls", WNNLS), ("vpro", VarProQuantifier), ("vpro (oracle shape)", OracleShape)):
        model = cls()
        start = time.perf_counter()
        model.fit(train.spectra, train.targets)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        predictions[label] = model.predict(test.spectra).to_numpy()
        timing[label] = (fit_s, 1000 * (time.perf_counter() - start) / n_test)
        models[label] = model
    loq = detection_limits(models["wnnls"].predict(blanks.spectra))["loq"]
    above = truth > loq[test.targets.columns].to_numpy()[None, :]
    errors = {k: (np.abs(p - truth) / truth)[above] for k, p in predictions.items()}
    rows = {k: {"median_relative_error": float(np.median(e)), "mean_relative_error": float(np.mean(e)),
                "training_seconds": timing[k][0], "ms_per_spectrum": timing[k][1]} for k, e in errors.items()}
    tests = {}
    for k in ("vpro", "vpro (oracle shape)"):
        d = errors[k] - errors["wnnls"]
        tests[k] = {"mean_difference": float(d.mean()), "t_test_p": float(ttest_rel(errors[k], errors["wnnls"]).pvalue),
                    "wilcoxon_p": float(wilcoxon(errors[k], errors["wnnls"]).pvalue), "n": int(d.size)}
    vp = models["vpro"]
    bias_true, bias_est = test.params["mass_bias"].to_numpy(), vp.last_biases_
    shift_true = test.params["mass_shift"].to_numpy()
    return {"setting": name, "scale": {"train": n_train, "test": n_test, "blanks": n_blanks},
            "n_items_above_loq": int(above.sum()), "n_items": int(above.size), "results": rows, "paired_vs_wnnls": tests,
            "fitted_shape": vp.shape_, "true_shape": OracleShape.true_shape,
            "reference_group": [vp.species_[j] for j in vp.group_],
            "bias_estimate": {"corr": float(np.corrcoef(bias_true, bias_est)[0, 1]) if np.std(bias_est) > 0 else 0.0,
                              "rmse": float(np.sqrt(np.mean((bias_est - bias_true) ** 2))),
                              "true_sd": float(np.std(bias_true))},
            "shift_rmse_da": float(np.sqrt(np.mean((vp.last_shifts_ - shift_true) ** 2)))}


def markdown(result: dict) -> str:
    lines = ["# vpro probe: variable-projection ICP-MS inversion vs WNNLS vs noise floor", ""]
    for s in result["settings"]:
        sc = s["scale"]
        lines += [f"## Setting `{s['setting']}`: train {sc['train']}, test {sc['test']} (concentration range x 1.5), "
                  f"{sc['blanks']} blanks; {s['n_items_above_loq']}/{s['n_items']} test items above the WNNLS LOQ", "",
                  "| Method | Median rel. error | Mean rel. error | Training (s) | Predict (ms/spectrum) |",
                  "|---|---|---|---|---|"]
        for k, r in s["results"].items():
            lines.append(f"| {k} | {100 * r['median_relative_error']:.2f} % | {100 * r['mean_relative_error']:.2f} % | "
                         f"{r['training_seconds']:.1f} | {r['ms_per_spectrum']:.1f} |")
        lines += ["", "Paired per-item tests vs WNNLS:", ""]
        for k, t in s["paired_vs_wnnls"].items():
            lines.append(f"- {k}: mean difference {100 * t['mean_difference']:+.2f} points, t-test p = {t['t_test_p']:.2g}, "
                         f"Wilcoxon p = {t['wilcoxon_p']:.2g}, n = {t['n']}")
        lines += ["", f"Fitted shape: {json.dumps({k: round(v, 5) for k, v in s['fitted_shape'].items()})}; "
                  f"true: {json.dumps({k: round(v, 5) for k, v in s['true_shape'].items()})}",
                  f"Reference group found: {', '.join(s['reference_group']) or 'none'}; per-spectrum mass bias vs truth: "
                  f"corr {s['bias_estimate']['corr']:.3f}, RMSE {s['bias_estimate']['rmse']:.4f} (true sd "
                  f"{s['bias_estimate']['true_sd']:.4f}); mass-shift RMSE {s['shift_rmse_da']:.4f} Da", ""]
    lines += [f"Seed {result['seed']}, wall time {result['wall_seconds']:.0f} s, 1 BLAS thread on a shared 2-core machine "
              "(timings are upper bounds).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--blanks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    start = time.perf_counter()
    result = {"seed": args.seed, "settings": []}
    for name, config in settings().items():
        if args.only and name != args.only:
            continue
        result["settings"].append(run(name, config, args.train, args.test, args.blanks, args.seed))
        result["wall_seconds"] = time.perf_counter() - start
        print(markdown(result), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "vpro_probe" + (f"_{args.only}" if args.only else "")
    write_result(args.out / f"{stem}.json", result)
    write_result(args.out / f"{stem}.md", markdown(result))


if __name__ == "__main__":
    main()
