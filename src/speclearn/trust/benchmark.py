"""Benchmarks of the trust system (logic of benchmarks/uncertainty.py and benchmarks/qa.py).

Uncertainty: empirical coverage of 80/90/95 % intervals and their width, per quantifier and interval
method, on held-out simulated ICP-MS spectra from the training distribution and from a shifted one
(more sensitivity drift, plasma/matrix interference, interferent elements and mass-calibration error
than training), and on the chemotools fermentation NIR set (PLS, conformal scores by leave-one-out on
the 21 training spectra, tested on the 34 HPLC-referenced spectra of another fermentation).

QA: simulated runs with one injected fault each (see `faults`), ROC AUC per fault type of the QA
anomaly score, its EWMA/CUSUM drift charts, the GRU sequence detector and a plain control chart on
the internal-standard recovery; detection delay of the drifts and false-alarm rate before onset.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from speclearn.metrics import interval_coverage, timed
from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms
from speclearn.models.conformal import SplitConformal
from speclearn.quantify.counting import CountingStatistics
from speclearn.quantify.dropout import MCDropout
from speclearn.quantify.ensemble import DeepEnsemble, EnsembleSpread
from speclearn.quantify.intervals import split_ids
from speclearn.io.atomic import markdown_table, write_result

LEVELS = (0.8, 0.9, 0.95)
SCALES = {
    "quick": {"n_train": 320, "n_test": 300, "channels": 3000, "epochs": 40, "max_seconds": 90, "members": 3,
              "n_reference": 240, "runs": 4, "run_length": 80, "qa_epochs": 150},
    "full": {"n_train": 1000, "n_test": 1000, "channels": 6000, "epochs": 150, "max_seconds": 400, "members": 5,
             "n_reference": 600, "runs": 10, "run_length": 120, "qa_epochs": 300},
}
ANALYTES = ("Cr", "Ni", "Cu", "As", "Cd", "Pb")
CALIBRATION_FRACTION = 0.25


def icpms_config(channels: int) -> ICPMSConfig:
    return ICPMSConfig(analytes=ANALYTES, instrument=ICPMSInstrument(mz_min=45.0, mz_max=215.0, n_channels=channels))


def shifted(config: ICPMSConfig) -> ICPMSConfig:
    """More drift and interference than training: 3x sensitivity drift, 2x mass-calibration error,
    2x plasma polyatomics, wider matrix variation, 5x interferent elements."""
    return replace(config, sensitivity_drift_sd=3 * config.sensitivity_drift_sd, mass_shift_sd=2 * config.mass_shift_sd,
                   polyatomic_scale=2 * config.polyatomic_scale, matrix_sd=1.5 * config.matrix_sd,
                   interferent_median=5 * config.interferent_median)


# --- uncertainty --------------------------------------------------------------------------------
def _interval_rows(name: str, y_cal, p_cal, s_cal, tests: dict, spread: str | None, gaussian, scale: dict) -> list:
    """Rows for every interval method of one fitted model. tests: label -> (y, p, sigma)."""
    methods = {f"conformal-{score}": SplitConformal(score).calibrate(y_cal, p_cal) for score in
               ("absolute", "relative", "log")}
    if spread:
        methods[f"conformal-scaled({spread})"] = SplitConformal("scaled").calibrate(y_cal, p_cal, s_cal)
        methods[f"{spread} (Gaussian)"] = gaussian
    rows = []
    for method, estimator in methods.items():
        for level in LEVELS:
            row = {"model": name, "interval": method, "nominal": level}
            for label, (y, p, sigma) in tests.items():
                lo, hi = estimator.interval(p, level, sigma)
                per_target = interval_coverage(y, lo, hi, axis=0)
                row[f"coverage_{label}"] = float(per_target.mean())
                row[f"coverage_{label}_min_target"] = float(per_target.min())
                row[f"width_{label}"] = float(np.mean(hi - lo))
                row[f"relative_width_{label}"] = float(np.median((hi - lo) / np.maximum(y, 1e-9)))
            rows.append(row | scale)
    return rows


def _sigma(spread: str | None, model, X: np.ndarray, seed: int):
    if spread == "counting":
        return CountingStatistics().sigma(model, X)
    if spread == "dropout":
        return MCDropout(rate=0.1, samples=20, seed=seed).sigma(model, X)
    if spread == "ensemble":
        return EnsembleSpread().sigma(model, X)
    return None


def icpms_uncertainty(s: dict, seed: int) -> list[dict]:
    from speclearn.quantify.caemmt import CAEMMT
    from speclearn.quantify.pls import PLS
    from speclearn.quantify.wnnls import WNNLS

    config = icpms_config(s["channels"])
    train = simulate_icpms(s["n_train"], seed=seed, config=config)
    test = simulate_icpms(s["n_test"], seed=seed + 1, config=config)
    shift = simulate_icpms(s["n_test"], seed=seed + 2, config=shifted(config))
    fit_ids, cal_ids = split_ids(train.spectra.ids, CALIBRATION_FRACTION, seed)
    neural = {"epochs": s["epochs"], "max_seconds": s["max_seconds"], "progress": False, "seed": seed}
    models = [("wnnls", lambda: WNNLS(), "counting"), ("pls (log targets)", lambda: PLS(log_targets=True), None),
              ("caemmt (physics)", lambda: CAEMMT(**neural), None),  # its concentrations bypass the MLP: no dropout
              (f"ensemble of {s['members']} caemmt", lambda: DeepEnsemble("caemmt", neural, s["members"], seed),
               "ensemble")]
    rows = []
    for name, make, spread in models:
        model, seconds = timed(lambda: make().fit(train.spectra.select(fit_ids), train.targets.loc[fit_ids]))
        predicted = {}
        for label, data in (("cal", train.spectra.select(cal_ids)), ("test", test.spectra), ("shift", shift.spectra)):
            X = data.values().astype(float)
            predicted[label] = (model.predict(data).to_numpy(float), _sigma(spread, model, X, seed))
        gaussian = {"counting": CountingStatistics(), "dropout": MCDropout(), "ensemble": EnsembleSpread()}.get(spread)
        tests = {"test": (test.targets.to_numpy(float), *predicted["test"]),
                 "shift": (shift.targets.to_numpy(float), *predicted["shift"])}
        scale = {"dataset": "ICP-MS simulator", "n_fit": len(fit_ids), "n_calibration": len(cal_ids),
                 "n_test": s["n_test"], "channels": s["channels"],
                 "epochs": s["epochs"] if "caemmt" in name else None, "fit_seconds": round(seconds, 1)}
        rows += _interval_rows(name, train.targets.loc[cal_ids].to_numpy(float), *predicted["cal"], tests, spread,
                               gaussian, scale)
    return rows


def fermentation_uncertainty(seed: int) -> list[dict]:
    """PLS on chemotools' fermentation NIR: leave-one-out conformal scores, test on another fermentation.

    Test spectra are taken every 1.25 min (chemotools' description; the mapping minimises the error),
    so the HPLC sample at t hours is matched to spectrum round(48 t): either that single spectrum or
    the mean of the 11 spectra around it (+-6 min; single test spectra are much noisier than the
    training spectra).
    """
    from chemotools.datasets import load_fermentation_test, load_fermentation_train
    from speclearn.core.spectra import Spectra
    from speclearn.preprocessing import preprocess
    from speclearn.quantify.pls import PLS

    X, y = load_fermentation_train()
    X_all, y_test = load_fermentation_test()
    centre = np.clip(np.rint(48 * y_test["time"].to_numpy(float)).astype(int), 0, len(X_all) - 1)
    axis = X.columns.to_numpy(float)
    spec = [{"crop": {"start": 950, "stop": 1550}}, {"savgol": {"window_length": 15, "polyorder": 2, "deriv": 1}}]
    train, pipeline = preprocess(Spectra(X.to_numpy(float), axis, axis_kind="wavenumber"), spec)
    targets = pd.DataFrame({"glucose": y["glucose"].to_numpy(float)}, index=train.meta.index)
    make = lambda: PLS(max_components=10, max_features=5000, seed=seed)  # noqa: E731
    start = time.perf_counter()
    loo = np.empty(len(targets))
    for i, sid in enumerate(train.ids):  # leave-one-out predictions = calibration residuals
        keep = [k for k in train.ids if k != sid]
        loo[i] = make().fit(train.select(keep), targets.loc[keep]).predict(train.select([sid])).to_numpy()[0, 0]
    model = make().fit(train, targets)
    seconds = time.perf_counter() - start
    truth = y_test[["glucose"]].to_numpy(float)
    values = X_all.to_numpy(float)
    rows = []
    for half, label in ((0, "single test spectra"), (5, "test = mean of 11 spectra (+-6 min)")):
        spectra = np.stack([values[max(c - half, 0): c + half + 1].mean(axis=0) for c in centre])
        test, _ = preprocess(Spectra(spectra, axis, axis_kind="wavenumber"), spec, pipeline=pipeline)
        p = model.predict(test).to_numpy(float)
        scale = {"dataset": "chemotools fermentation NIR (real)", "n_fit": len(targets),
                 "n_calibration": len(targets), "n_test": len(truth), "channels": train.n_channels, "epochs": None,
                 "fit_seconds": round(seconds, 1), "test_rmse": float(np.sqrt(np.mean((p - truth) ** 2)))}
        rows += _interval_rows(f"pls, leave-one-out conformal; {label}", targets.to_numpy(float), loo[:, None],
                               None, {"shift": (truth, p, None)}, None, None, scale)
    return rows


# --- QA -------------------------------------------------------------------------------------------
def qa_benchmark(s: dict, seed: int, out_dir: Path) -> dict:
    from speclearn.trust.charts import cusum_chart, ewma_chart, first_alarm, shewhart_chart
    from speclearn.trust.cli import plot_run
    from speclearn.trust.faults import FAULTS, inject
    from speclearn.trust.qa import RunQA
    from speclearn.trust.sequence import SequenceDetector

    config = icpms_config(s["channels"])
    reference = simulate_icpms(s["n_reference"], seed=seed + 10, config=config)
    qa, qa_seconds = timed(lambda: RunQA(epochs=s["qa_epochs"], seed=seed, device="cpu").fit(reference.spectra))
    start = time.perf_counter()
    in_control = simulate_icpms(s["n_reference"], seed=seed + 11, config=config)
    gru = SequenceDetector(seed=seed).fit(qa.sequence_features(in_control.spectra))
    gru_seconds = time.perf_counter() - start
    n_is = 1  # the drift-chart inputs start with log IS recovery, signal level, 3 latent scores
    detectors = ("qa score", "ewma (drift inputs)", "cusum (drift inputs)", "gru sequence", "IS control chart")
    scores: dict[str, dict[str, list]] = {f: {d: [] for d in detectors} | {"label": [], "use": []} for f in FAULTS}
    delays: dict[str, dict[str, list]] = {f: {d: [] for d in detectors} for f in ("sensitivity_drop", "clogging")}
    false_alarms = {d: [] for d in detectors}
    L = s["run_length"]
    example = None
    for r in range(s["runs"]):
        run = simulate_icpms(L, seed=seed + 100 + r, config=config)
        rng = np.random.default_rng(seed + r)
        for fault in FAULTS:
            onset = int(rng.integers(L // 3, 2 * L // 3))
            faulty = inject(run, fault, start=onset, seed=seed + r)
            spectra = faulty.simulation.spectra
            table = qa.predict(spectra)
            features = qa.sequence_features(spectra)
            drift_inputs = np.clip(features[:, :5], -4, 4)
            values = {
                "qa score": table["anomaly_score"].to_numpy(),
                "ewma (drift inputs)": ewma_chart(drift_inputs).max(axis=1),
                "cusum (drift inputs)": cusum_chart(drift_inputs).max(axis=1),
                "gru sequence": gru.score(features) / 0.5,  # 1 = probability 0.5
                "IS control chart": shewhart_chart(features[:, :n_is])[:, 0],
            }
            use = np.ones(L, bool)
            if fault == "clogging":  # drifting but < 10 % loss: neither clean nor labelled
                use[onset:] = faulty.labels[onset:]
            for d, v in values.items():
                scores[fault][d].append(v)
                false_alarms[d].append(float((v[:onset] > 1).mean()))
                if fault in delays:
                    alarm = first_alarm(v, onset)
                    delays[fault][d].append(np.nan if alarm is None else alarm - onset)
            scores[fault]["label"].append(faulty.labels)
            scores[fault]["use"].append(use)
            if fault == "clogging" and r == 0:
                example = (table, faulty)
    plot_run(example[0].assign(flagged=example[0]["flagged"].astype(bool)), None, out_dir / "qa_clogging_run.png")
    rows = []
    for fault in FAULTS:
        label = np.concatenate(scores[fault]["label"])
        use = np.concatenate(scores[fault]["use"])
        row = {"fault": fault, "positives": int(label[use].sum()), "negatives": int((~label[use]).sum())}
        for d in detectors:
            v = np.concatenate(scores[fault][d])
            row[f"auc {d}"] = float(roc_auc_score(label[use], v[use]))
        if fault in delays:
            for d in detectors:
                found = np.asarray(delays[fault][d], float)
                row[f"delay {d}"] = float(np.nanmedian(found)) if np.isfinite(found).any() else None
                row[f"missed {d}"] = int(np.isnan(found).sum())
        rows.append(row)
    gru_wins = sum(r["auc gru sequence"] > max(r["auc qa score"], r["auc ewma (drift inputs)"],
                                               r["auc cusum (drift inputs)"]) for r in rows)
    return {"rows": rows, "false_alarm_rate_before_onset": {d: float(np.mean(v)) for d, v in false_alarms.items()},
            "gru_beats_statistics_on": gru_wins, "qa_fit_seconds": round(qa_seconds, 1),
            "gru_fit_seconds": round(gru_seconds, 1),
            "scale": {"reference_spectra": s["n_reference"], "runs_per_fault": s["runs"], "run_length": L,
                      "channels": s["channels"], "qa_epochs": s["qa_epochs"]}}


# --- report -----------------------------------------------------------------------------------------
def _markdown_uncertainty(rows: list[dict], seconds: float, scale: str) -> str:
    lines = [f"# Prediction-interval coverage (scale {scale}, {seconds:.0f} s wall on a shared 2-core CPU)", "",
             "Empirical coverage (%) at nominal 80 / 90 / 95 %, mean over analytes; goal: within ±3 points. "
             "test = held-out spectra from the training distribution; shift = more drift and interference than "
             "training (ICP-MS) or another fermentation (NIR: there is no in-distribution test set). Width = mean "
             "width of the 90 % interval (µg/L, g/L); rel = its median width / true value.", "",
             "| dataset | model | interval | coverage test | coverage shift | width test | rel test | width shift | "
             "±3 on test | scale |", "|---|---|---|---|---|---|---|---|---|---|"]
    frame = pd.DataFrame(rows)
    for (dataset, model, method), group in frame.groupby(["dataset", "model", "interval"], sort=False):
        group = group.set_index("nominal")
        r = group.loc[0.9].to_dict()
        cov = lambda k: "–" if group[k].isna().all() else " / ".join(f"{100 * v:.1f}" for v in group[k])  # noqa
        num = lambda k: "–" if pd.isna(r.get(k)) else f"{r[k]:.3g}"  # noqa: E731
        ok = "n/a" if group["coverage_test"].isna().all() else (
            "yes" if (abs(group["coverage_test"] - group.index) <= 0.03).all() else "no")
        scale_text = (f"fit {r['n_fit']}, cal {r['n_calibration']}, test {r['n_test']} x {r['channels']} ch"
                      + (f", {r['epochs']:.0f} epochs" if not pd.isna(r.get("epochs")) else "")
                      + f", fit {r['fit_seconds']} s"
                      + (f", test RMSE {r['test_rmse']:.2f}" if not pd.isna(r.get("test_rmse")) else ""))
        lines.append(f"| {dataset} | {model} | {method} | {cov('coverage_test')} | {cov('coverage_shift')} | "
                     f"{num('width_test')} | {num('relative_width_test')} | {num('width_shift')} | {ok} | "
                     f"{scale_text} |")
    return "\n".join(lines) + "\n"


def _markdown_qa(result: dict, seconds: float, scale: str) -> str:
    rows = result["rows"]
    detectors = [k[4:] for k in rows[0] if k.startswith("auc ")]
    sc = result["scale"]
    lines = [f"# QA: ROC AUC per injected fault (scale {scale}: {sc['runs_per_fault']} runs of {sc['run_length']} "
             f"spectra x {sc['channels']} channels per fault, reference {sc['reference_spectra']} spectra; "
             f"{seconds:.0f} s wall, shared 2-core CPU)", "",
             "Goal: AUC >= 0.95. 'qa score' = the shipped `speclearn qa` score (max of its components); "
             "'IS control chart' = plain Shewhart chart (3 sd) on the internal-standard recovery (the baseline).", "",
             *markdown_table(rows, {"fault": "{fault}", "positives / negatives": "{positives} / {negatives}",
                                    **{f"AUC {d}": lambda r, d=d: f"{r['auc ' + d]:.3f}" for d in detectors}})]
    lines += ["", "Delay to detect a drift (median spectra after onset until the first alarm; missed = runs with "
              "no alarm):", "", *markdown_table([r for r in rows if f"delay {detectors[0]}" in r], {
                  "fault": "{fault}",
                  **{d: lambda r, d=d: ("–" if r["delay " + d] is None else f"{r['delay ' + d]:.0f}")
                     + f" (missed {r['missed ' + d]})" for d in detectors}})]
    lines += ["", "False-alarm rate before onset: " + ", ".join(
        f"{d} {100 * v:.1f} %" for d, v in result["false_alarm_rate_before_onset"].items()),
        "", f"GRU sequence model beats every statistic (qa score, EWMA, CUSUM) on {result['gru_beats_statistics_on']} "
        f"of {len(rows)} fault types" + (" -> `speclearn qa` uses the statistics." if
                                         result["gru_beats_statistics_on"] <= len(rows) // 2 else "."),
        f"Fit times: QA model {result['qa_fit_seconds']} s, GRU {result['gru_fit_seconds']} s."]
    return "\n".join(lines) + "\n"


def plot_coverage(rows: list[dict], path: Path) -> Path:
    """Empirical vs nominal coverage per model and interval method (±3-point band shaded)."""
    from speclearn.report import pyplot, save_figure
    plt = pyplot()

    frame = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(16, 6), sharey=True)
    styles = ["-", "--", ":", "-."]
    for ax, label in zip(axes, ("test", "shift")):
        groups = frame.groupby(["dataset", "model", "interval"], sort=False)
        for k, ((dataset, model, method), group) in enumerate(groups):
            if group[f"coverage_{label}"].notna().any():
                ax.plot(group["nominal"] * 100, group[f"coverage_{label}"] * 100, marker="o", ms=3, lw=1,
                        ls=styles[k // 10 % len(styles)], color=f"C{k % 10}",
                        label=f"{model}: {method}" + (" [NIR]" if "NIR" in dataset else ""))
        ax.plot([78, 97], [78, 97], "k--", lw=1)
        ax.fill_between([78, 97], [75, 94], [81, 100], color="0.85", zorder=0)
        ax.set(xlabel="nominal %", title=f"coverage: {label}")
    axes[0].set_ylabel("empirical coverage %")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="center right")
    fig.tight_layout(rect=(0, 0, 0.66, 1))
    return save_figure(fig, path)


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0, part: str = "all") -> dict:
    """part: 'uncertainty', 'qa' or 'all'. Writes uncertainty.{json,md,png} and/or qa.{json,md} + PNG."""
    s = SCALES[scale]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"scale": scale, "seed": seed}
    if part in ("uncertainty", "all"):
        rows, seconds = timed(lambda: fermentation_uncertainty(seed) + icpms_uncertainty(s, seed))
        write_result(out_dir / "uncertainty.json", {"rows": rows, "wall_seconds": seconds, "scale": scale})
        write_result(out_dir / "uncertainty.md", _markdown_uncertainty(rows, seconds, scale))
        plot_coverage(rows, out_dir / "uncertainty_coverage.png")
        result["uncertainty"] = rows
    if part in ("qa", "all"):
        qa, seconds = timed(lambda: qa_benchmark(s, seed, out_dir))
        write_result(out_dir / "qa.json", qa | {"wall_seconds": seconds, "scale_name": scale})
        write_result(out_dir / "qa.md", _markdown_qa(qa, seconds, scale))
        result["qa"] = qa
    return result
