"""Gamma benchmark: identification, material classification, composition, Savitzky-Golay, real spectra.

1. Nuclide identification on simulated mixtures (1-3 nuclides + natural background, NaI and HPGe,
   1e3-1e6 counts, seeds unseen in training): micro-F1 of the shipped MLP vs the peak search.
2. The real becquerel sample spectra: which nuclides each method names.
3. Classification of the 18 library materials: a "measured" setting (resolution x1.15, inelastic
   lines x0.7, more background, 1 % gain drift, 8 % composition spread) stands in for measurements;
   3 measured spectra per material (54 <= 64) train; 20 per material test. CNN pretrained on the
   nominal simulation and fine-tuned vs the same CNN on the small set alone vs PLS-DA/SVM/RF/kNN.
4. Composition (H, C, N, O, Cl atom fractions): physics-decoder autoencoder trained on simulations
   with randomised settings vs NNLS on the nominal line library, on nominal and measured test sets.
5. Savitzky-Golay smoothing of Poisson spectra: bias of the net peak area and change of FWHM.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from speclearn.gamma.lines import ELEMENTS

NAME = "gamma"
SCALES = {"quick": {"id_per_detector": 150, "pretrain_n": 1800, "pretrain_epochs": 25, "epochs": 60,
                    "test_per_material": 10, "ae_train": 1800, "ae_epochs": 60, "comp_test": 180, "repeats": 1},
          "full": {"id_per_detector": 600, "pretrain_n": 3600, "pretrain_epochs": 40, "epochs": 80,
                   "test_per_material": 20, "ae_train": 5400, "ae_epochs": 120, "comp_test": 540, "repeats": 3}}
MEASURED = dict(resolution=1.15, inelastic=0.7, background=0.25, gain_drift=0.01, composition_jitter=0.08)
COUNT_BINS = ((1e3, 1e4), (1e4, 1e5), (1e5, 1e6))
REAL = Path(__file__).resolve().parents[3] / "tests" / "data" / "gamma"
MACHINE = "2 shared CPU cores (contended, 1 torch thread)"


def _f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = float((truth * predicted).sum())
    return 2 * tp / max(float(truth.sum() + predicted.sum()), 1.0)


def identification(config: dict, seed: int) -> list[dict]:
    from speclearn.gamma.learned import MLPIdentifier, label_matrix
    from speclearn.gamma.peaksearch import PeakSearchIdentifier
    from speclearn.gamma.simulate import simulate_nuclides
    model = MLPIdentifier.load()
    peaks = PeakSearchIdentifier().fit()
    rows = []
    for detector in ("nai", "hpge"):
        for k, counts in enumerate(COUNT_BINS):
            n = config["id_per_detector"] // len(COUNT_BINS)
            sim = simulate_nuclides(detector, n, seed=seed + 5000 + 10 * k + (detector == "hpge"), counts=counts)
            truth = label_matrix(sim.truth["labels"], model.nuclides_)
            for name, method in (("mlp (shipped)", model), ("peak search", peaks)):
                t0 = time.perf_counter()
                scores = method.decision_function(sim.spectra).reindex(columns=model.nuclides_, fill_value=0.0)
                seconds = time.perf_counter() - t0
                predicted = (scores.to_numpy() >= method.threshold).astype(float)
                exact = float(np.mean(np.all(predicted == truth, axis=1)))
                rows.append({"task": "identification", "detector": detector, "counts": f"{counts[0]:.0e}-{counts[1]:.0e}",
                             "method": name, "f1_micro": _f1(truth, predicted), "exact_match": exact,
                             "spectra": n, "seconds": seconds})
    return rows


def real_spectra() -> list[dict]:
    from speclearn.gamma.grid import auto_calibrate
    from speclearn.gamma.learned import MLPIdentifier
    from speclearn.gamma.peaksearch import PeakSearchIdentifier
    from speclearn.io.gamma_formats import read_spe
    files = {"Mendocino_07-10-13_Acq-10-10-13.Spe": "HPGe, kelp (expected: K-40, U-238 and Th-232 series)",
             "nai_detector.spe": "NaI background (expected: K-40, Tl-208/Th-232, Bi-214/U-238)",
             "sim_spec.spe": "simulated CsI background (expected: K-40, Th-232, U-238)"}
    model, peaks = MLPIdentifier.load(), PeakSearchIdentifier().fit()
    rows = []
    for name, what in files.items():
        spectra = read_spe(REAL / name)
        calibration = spectra.meta["calibration"].iloc[0]
        if spectra.axis_kind == "channel":
            coefficients, _ = auto_calibrate(spectra.values()[0])
            spectra = read_spe(REAL / name, calibration=coefficients)
            calibration = f"auto {spectra.meta['calibration'].iloc[0]}"
        for method_name, method in (("mlp (shipped)", model), ("peak search", peaks)):
            found = method.predict(spectra)
            rows.append({"task": "real spectra", "file": name, "what": what, "calibration": calibration,
                         "method": method_name,
                         "named": ", ".join(f"{r.nuclide} {r.score:.2f}" for r in found.itertuples())})
    return rows


def classification(config: dict, seed: int) -> list[dict]:
    from speclearn.gamma.materials import MATERIALS
    from speclearn.gamma.grid import sqrt_grid
    from speclearn.gamma.materials_cnn import GRID, ClassicalMaterialClassifier, MaterialCNN
    from speclearn.gamma.simulate import simulate_materials
    n_classes = len(MATERIALS)
    rows = []
    t0 = time.perf_counter()
    base = MaterialCNN(pretrain_n=config["pretrain_n"], pretrain_epochs=config["pretrain_epochs"],
                       epochs=config["epochs"], seed=seed)
    base.grid_ = sqrt_grid(*GRID)
    features = base.pretrained_features()
    pretrain_seconds = time.perf_counter() - t0
    for repeat in range(config["repeats"]):
        small = simulate_materials("nai", 3 * n_classes, seed=seed + 100 + repeat, **MEASURED)
        test = simulate_materials("nai", config["test_per_material"] * n_classes, seed=seed + 200 + repeat, **MEASURED)
        truth = test.truth["material"].to_numpy()
        y = small.truth["material"]
        methods = {"cnn pretrained + fine-tuned": (MaterialCNN(epochs=config["epochs"], seed=seed + repeat),
                                                   {"features": features}),
                   "cnn small set only": (MaterialCNN(pretrain=False, epochs=config["epochs"], seed=seed + repeat), {})}
        methods.update({m: (ClassicalMaterialClassifier(m, seed=seed), {}) for m in ("plsda", "svm", "rf", "knn")})
        for name, (method, extra) in methods.items():
            t1 = time.perf_counter()
            method.fit(small.spectra, y, **extra)
            accuracy = float(np.mean(method.predict(test.spectra)["label"].to_numpy() == truth))
            rows.append({"task": "classification", "method": name, "repeat": repeat, "accuracy": accuracy,
                         "train": small.spectra.n_spectra, "test": test.spectra.n_spectra,
                         "seconds": time.perf_counter() - t1,
                         "pretraining": f"{config['pretrain_n']} nominal simulated spectra, "
                                        f"{config['pretrain_epochs']} epochs, {pretrain_seconds:.0f} s (once)"})
    return rows


def _randomised_training_set(n: int, seed: int):
    """Materials simulated under several settings (domain randomisation) for the autoencoder."""
    from speclearn.core.spectra import Spectra
    from speclearn.gamma.simulate import simulate_materials
    settings = [dict(), dict(resolution=1.1, inelastic=0.8, background=0.2, gain_drift=0.008),
                dict(resolution=1.25, inelastic=0.6, background=0.3, gain_drift=0.012),
                dict(resolution=0.95, inelastic=1.2, background=0.1)]
    parts = [simulate_materials("nai", n // len(settings), seed=seed + i, counts=(1e4, 1e6), composition_jitter=0.15,
                                **s) for i, s in enumerate(settings)]
    X = np.vstack([p.spectra.values() for p in parts])
    truth = pd.concat([p.truth for p in parts])
    truth.index = [f"t{i}" for i in range(len(truth))]
    spectra = Spectra(X, parts[0].spectra.axis, axis_kind="energy", axis_unit="keV",
                      meta=pd.DataFrame(index=truth.index))
    return spectra, truth


def composition(config: dict, seed: int) -> list[dict]:
    from speclearn.gamma.composition import AEComposition, NNLSComposition
    from speclearn.gamma.simulate import simulate_materials
    t0 = time.perf_counter()
    spectra, truth = _randomised_training_set(config["ae_train"], seed + 300)
    ae = AEComposition(epochs=config["ae_epochs"], seed=seed).fit(spectra, truth[list(ELEMENTS)])
    train_seconds = time.perf_counter() - t0
    nnls = NNLSComposition().fit()
    columns = ["H", "C", "N", "O", "Cl"]
    rows = []
    for setting, kwargs in (("nominal", {}), ("measured", {k: v for k, v in MEASURED.items()
                                                           if k != "composition_jitter"})):
        for counts in ((1e4, 1e5), (1e5, 1e6)):
            test = simulate_materials("nai", config["comp_test"], seed=seed + 400, counts=counts,
                                      composition_jitter=0.15, **kwargs)
            for name, method in (("autoencoder (physics decoder)", ae), ("nnls (line library)", nnls)):
                t1 = time.perf_counter()
                predicted = method.predict(test.spectra)[columns].to_numpy()
                error = np.abs(predicted - test.truth[columns].to_numpy())
                rows.append({"task": "composition", "setting": setting, "counts": f"{counts[0]:.0e}-{counts[1]:.0e}",
                             "method": name, "mae_HCNOCl": float(error.mean()),
                             **{f"mae_{c}": float(e) for c, e in zip(columns, error.mean(axis=0))},
                             "test": len(predicted), "seconds": time.perf_counter() - t1,
                             "training": f"{spectra.n_spectra} randomised-setting spectra, {config['ae_epochs']} epochs, "
                                         f"{train_seconds:.0f} s"})
    return rows


def _net_area_and_fwhm(axis: np.ndarray, y: np.ndarray, centre: float, fwhm: float) -> tuple[float, float]:
    """Net area in +-1.5 FWHM over a linear baseline from side windows, and FWHM from peak_widths."""
    from scipy.signal import peak_widths
    step = axis[1] - axis[0]
    roi = np.abs(axis - centre) <= 1.5 * fwhm
    side = (np.abs(axis - centre) > 1.5 * fwhm) & (np.abs(axis - centre) <= 2.5 * fwhm)
    fit = np.polyfit(axis[side], y[side], 1)
    net = y[roi] - np.polyval(fit, axis[roi])
    top = int(np.flatnonzero(roi)[0] + np.argmax(net))
    width = peak_widths(y - np.polyval(fit, axis), [top], rel_height=0.5)[0][0] * step
    return float(net.sum()), float(width)


def savitzky_golay(seed: int) -> list[dict]:
    from speclearn.gamma.response import DETECTORS
    from speclearn.gamma.simulate import simulate_nuclides
    from speclearn.preprocessing.smoothing import SavitzkyGolay
    rows = []
    for detector in ("nai", "hpge"):
        det = DETECTORS[detector]
        sim = simulate_nuclides(detector, 200, seed=seed + 600, nuclides=("Cs-137",), max_sources=1,
                                counts=(1e5, 1e5), background=(0.05, 0.05), shielding_probability=0.0, gain_drift=0.0)
        axis = sim.spectra.axis
        fwhm = float(det.fwhm(661.657))
        fwhm_channels = fwhm / (axis[1] - axis[0])
        true_area, true_width = _net_area_and_fwhm(axis, sim.clean.mean(axis=0), 661.657, fwhm)
        versions = {"raw Poisson": sim.spectra.values()}
        for factor in (0.5, 1.0, 2.0):
            window = max(5, int(2 * round(factor * fwhm_channels / 2) + 1))
            if any(f"window {window} " in key for key in versions):
                continue
            smoother = SavitzkyGolay(window_length=window, polyorder=2)
            versions[f"savgol window {window} ({factor:g} FWHM), order 2"] = smoother.fit_transform(sim.spectra.values())
        for name, data in versions.items():
            measured = np.array([_net_area_and_fwhm(axis, row, 661.657, fwhm) for row in data])
            rows.append({"task": "savitzky-golay", "detector": detector, "method": name,
                         "area_bias_pct": float(100 * (measured[:, 0].mean() / true_area - 1)),
                         "area_rsd_pct": float(100 * measured[:, 0].std() / true_area),
                         "width_change_pct": float(100 * (np.median(measured[:, 1]) / true_width - 1)),
                         "spectra": len(data), "fwhm_keV": fwhm})
    return rows


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0) -> dict:
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = SCALES[scale]
    sections, walls = {}, {}
    for name, run in (("identification", lambda: identification(config, seed)), ("real", real_spectra),
                      ("savitzky_golay", lambda: savitzky_golay(seed)),
                      ("composition", lambda: composition(config, seed)),
                      ("classification", lambda: classification(config, seed))):
        t0 = time.perf_counter()
        sections[name] = run()
        walls[name] = time.perf_counter() - t0
    summary = _summary(sections, walls, scale)
    result = {"name": NAME, "scale": scale, "seed": seed, "config": config, "machine": MACHINE,
              "wall_seconds": walls, "summary": summary, "rows": sections}
    (out_dir / f"{NAME}.json").write_text(json.dumps(result, indent=2, default=float))
    _write_markdown(out_dir, sections, walls, summary, scale, config)
    return result


def _summary(sections: dict, walls: dict, scale: str) -> dict:
    ident = pd.DataFrame(sections["identification"])
    f1 = ident.groupby("method")["f1_micro"].mean().to_dict()
    cls = pd.DataFrame(sections["classification"]).groupby("method")["accuracy"].mean()
    comp = pd.DataFrame(sections["composition"])
    low = comp[comp["counts"] == "1e+04-1e+05"].groupby(["setting", "method"])["mae_HCNOCl"].mean()
    classical = cls.drop(["cnn pretrained + fine-tuned", "cnn small set only"])
    return {
        "scale": scale,
        "identification_f1": f1,
        "identification_target_f1_095_met": bool(f1.get("mlp (shipped)", 0) >= 0.95),
        "identification_above_peak_search": bool(f1.get("mlp (shipped)", 0) > f1.get("peak search", 1)),
        "classification_accuracy": cls.to_dict(),
        "classification_target_095_met": bool(cls["cnn pretrained + fine-tuned"] >= 0.95),
        "classification_gain_over_small_only": float(cls["cnn pretrained + fine-tuned"] - cls["cnn small set only"]),
        "classification_above_every_classical": bool(cls["cnn pretrained + fine-tuned"] > classical.max()),
        "composition_mae_low_counts": {f"{s} / {m}": float(v) for (s, m), v in low.items()},
        "wall_seconds": walls,
    }


def _write_markdown(out_dir: Path, sections: dict, walls: dict, summary: dict, scale: str, config: dict) -> None:
    lines = [f"### Gamma-ray spectroscopy (simulated + becquerel sample spectra; scale {scale})", "",
             f"Machine: {MACHINE}. Config: {json.dumps(config)}. Wall per section: "
             + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items()) + ".", ""]
    ident = pd.DataFrame(sections["identification"])
    lines += ["#### Nuclide identification (1-3 nuclides + natural background, unseen seeds)", "",
              "| detector | counts | method | micro-F1 | exact set | spectra | seconds | scale |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.detector} | {r.counts} | {r.method} | {r.f1_micro:.3f} | {r.exact_match:.2f} | {r.spectra} | "
              f"{r.seconds:.1f} | {scale} |" for r in ident.itertuples()]
    lines += ["", "Mean micro-F1: " + ", ".join(f"{k} {v:.3f}" for k, v in summary["identification_f1"].items())
              + f" (target >= 0.95: {'met' if summary['identification_target_f1_095_met'] else 'NOT met'}; above peak "
              f"search: {'yes' if summary['identification_above_peak_search'] else 'no'}).", ""]
    lines += ["#### Real spectra (becquerel samples)", "", "| file | what | calibration | method | named (score) |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['file']} | {r['what']} | {r['calibration']} | {r['method']} | {r['named']} |" for r in sections["real"]]
    cls = pd.DataFrame(sections["classification"])
    lines += ["", "#### Material classification (18 materials, measured setting)", "",
              "| method | accuracy | train/test | fit+predict s | scale |", "|---|---|---|---|---|"]
    for method, group in cls.groupby("method", sort=False):
        lines.append(f"| {method} | {group['accuracy'].mean():.3f} | {group['train'].iloc[0]}/{group['test'].iloc[0]} | "
                     f"{group['seconds'].mean():.1f} | {scale}, {len(group)} repeat(s) |")
    lines += ["", f"Pretraining: {cls['pretraining'].iloc[0]}. Target >= 0.95: "
              f"{'met' if summary['classification_target_095_met'] else 'NOT met'}; gain over small-set-only "
              f"{summary['classification_gain_over_small_only']:+.3f} (target >= +0.15); above every classical: "
              f"{'yes' if summary['classification_above_every_classical'] else 'no'}.", ""]
    comp = pd.DataFrame(sections["composition"])
    lines += ["#### Composition (MAE of H, C, N, O, Cl atom fractions)", "",
              "| setting | counts | method | MAE | H | C | N | O | Cl | test | scale |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.setting} | {r.counts} | {r.method} | {r.mae_HCNOCl:.4f} | {r.mae_H:.3f} | {r.mae_C:.3f} | {r.mae_N:.3f} | "
              f"{r.mae_O:.3f} | {r.mae_Cl:.3f} | {r.test} | {scale} |" for r in comp.itertuples()]
    lines += ["", f"Autoencoder training: {comp['training'].iloc[0]}. Target MAE <= 0.02 and below NNLS at low counts.", ""]
    sg = pd.DataFrame(sections["savitzky_golay"]).sort_values(["detector", "method"])
    lines += ["#### Savitzky-Golay smoothing (Cs-137 662 keV peak, 1e5 counts per spectrum)", "",
              "| detector | method | area bias % | area RSD % | FWHM change % | spectra | scale |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.detector} | {r.method} | {r.area_bias_pct:+.2f} | {r.area_rsd_pct:.2f} | {r.width_change_pct:+.2f} | "
              f"{r.spectra} | {scale} |" for r in sg.itertuples()]
    lines += ["", "Target: area bias < 1 %, width change < 5 %.", ""]
    (out_dir / f"{NAME}.md").write_text("\n".join(lines))
