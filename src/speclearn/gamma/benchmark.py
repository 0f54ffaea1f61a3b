"""Gamma benchmark: identification, material classification, composition, Savitzky-Golay, real spectra.

1. Nuclide identification on simulated mixtures (1-3 nuclides + natural background, NaI and HPGe,
   1e3-1e6 counts, seeds unseen in training): micro-F1 of the shipped MLP with its line check, of
   the MLP alone and of the peak search.
2. The real becquerel sample spectra: which nuclides each method names.
3. Classification of the 18 library materials: a "measured" setting (resolution x1.15, inelastic
   lines x0.7, more background, 1 % gain drift, 8 % composition spread) stands in for measurements;
   3 measured spectra per material (54 <= 64) train; 20 per material test. CNN pretrained on the
   nominal simulation and fine-tuned vs the same CNN on the small set alone vs PLS-DA/SVM/RF/kNN.
4. Composition (H, C, N, O, Cl atom fractions): physics-decoder autoencoder trained on simulations
   with randomised settings vs NNLS on the nominal line library, on nominal and measured test sets.
5. Denoising of Poisson spectra: bias of the net peak area and change of FWHM, Savitzky-Golay vs the
   learned denoisers (noise2noise on Poisson replicates, supervised U-Net on clean targets) trained on
   simulated mixtures of all nuclides (seeds and count level other than the Cs-137 test spectra').
6. Generation: a ReVAE trained on simulated spectra of the 18 materials generates as many per
   material; RF/SVM/kNN trained only on generated spectra vs trained on the simulated ones, tested on
   unseen simulated spectra. Augmentation (scarce measured spectra, the measured setting of 3.): 3
   measured spectra per material alone vs plus spectra generated for the measured setting by a
   ReVAE trained on the nominal simulation plus those measured spectra with a domain condition (how
   many per material chosen by validation on the measured spectra), and, for reference, plus the
   nominal simulation itself; tested on unseen measured-setting spectra, repeated.
7. `gamma train --method auto` on the small measured set: the cross-validated ranking and the
   winner's test accuracy.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from speclearn.core.errors import InputError
from speclearn.gamma.lines import ELEMENTS
from speclearn.io.atomic import write_result
from speclearn.metrics import timed

NAME = "gamma"
SCALES = {"quick": {"id_per_detector": 150, "pretrain_n": 1800, "pretrain_epochs": 25, "epochs": 60,
                    "test_per_material": 10, "ae_train": 1800, "ae_epochs": 60, "comp_test": 180, "repeats": 2,
                    "gen_per_material": 20, "gen_epochs": 150, "denoise_train": 40, "denoise_replicates": 2,
                    "denoise_epochs": 15},
          "full": {"id_per_detector": 3000, "pretrain_n": 3600, "pretrain_epochs": 40, "epochs": 80,
                   "test_per_material": 20, "ae_train": 5400, "ae_epochs": 120, "comp_test": 540, "repeats": 3,
                   "gen_per_material": 20, "gen_epochs": 300, "denoise_train": 150, "denoise_replicates": 4,
                   "denoise_epochs": 40}}
MEASURED = dict(resolution=1.15, inelastic=0.7, background=0.25, gain_drift=0.01, composition_jitter=0.08)
COUNT_BINS = ((1e3, 1e4), (1e4, 1e5), (1e5, 1e6))
REAL = Path(__file__).resolve().parents[3] / "tests" / "data" / "gamma"
MACHINE = "2 shared CPU cores (contended, 1 torch thread)"


def _f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = float((truth * predicted).sum())
    return 2 * tp / max(float(truth.sum() + predicted.sum()), 1.0)


#: the shipped identifier's row
SHIPPED = "mlp + line check (shipped)"


def mlp_alone(model):
    """The shipped identifier without its line check, at the MLP's own thresholds."""
    alone = copy.deepcopy(model)
    alone.check_, alone.thresholds_ = None, dict(model.extra_["mlp_thresholds"])
    return alone


#: the identification row that knows each spectrum's components (`simulate_nuclides(oracle=True)`)
ORACLE = "oracle: fitted amount, other components known"


def identification(config: dict, seed: int) -> list[dict]:
    from speclearn.gamma.learned import MLPIdentifier, label_matrix
    from speclearn.gamma.peaksearch import PeakSearchIdentifier
    from speclearn.gamma.simulate import simulate_nuclides
    model = MLPIdentifier.load().set_params(device="cpu")
    methods = {SHIPPED: model, "mlp alone (shipped, no line check)": mlp_alone(model),
               "peak search": PeakSearchIdentifier().fit()}
    rows = []
    for detector in ("nai", "hpge"):
        for k, counts in enumerate(COUNT_BINS):
            n = config["id_per_detector"] // len(COUNT_BINS)
            sim = simulate_nuclides(detector, n, seed=seed + 5000 + 10 * k + (detector == "hpge"), counts=counts,
                                    oracle=True)
            truth = label_matrix(sim.truth["labels"], model.nuclides_)
            oracle = label_matrix(sim.truth["oracle_labels"], model.nuclides_)
            rows.append({"task": "identification", "detector": detector, "counts": f"{counts[0]:.0e}-{counts[1]:.0e}",
                         "method": ORACLE, "f1_micro": _f1(truth, oracle),
                         "exact_match": float(np.mean(np.all(oracle == truth, axis=1))), "spectra": n,
                         "seconds": float("nan")})
            for name, method in methods.items():
                found, seconds = timed(lambda: method.predict(sim.spectra))
                predicted = pd.crosstab(found["id"], found["nuclide"]).reindex(
                    index=sim.spectra.ids, columns=model.nuclides_, fill_value=0).clip(0, 1).to_numpy(dtype=float)
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
    files = {"Mendocino_07-10-13_Acq-10-10-13.Spe": "HPGe, kelp (expected: K-40, U-238 and Th-232 series; the file "
                                                     "also holds Co-60 peaks, 29 and 35 sigma, and a 6-sigma peak at "
                                                     "Na-22's 1274.9 keV)",
             "nai_detector.spe": "NaI background (expected: K-40, Tl-208/Th-232, Bi-214/U-238)",
             "sim_spec.spe": "simulated CsI background (expected: K-40, Th-232, U-238)"}
    model, peaks = MLPIdentifier.load().set_params(device="cpu"), PeakSearchIdentifier().fit()
    rows = []
    for name, what in files.items():
        spectra = read_spe(REAL / name)
        calibration = spectra.meta["calibration"].iloc[0]
        if spectra.axis_kind == "channel":
            coefficients, _ = auto_calibrate(spectra.values()[0])
            spectra = read_spe(REAL / name, calibration=coefficients)
            calibration = f"auto {spectra.meta['calibration'].iloc[0]}"
        for method_name, method in ((SHIPPED, model), ("peak search", peaks)):
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
                       epochs=config["epochs"], seed=seed, device="cpu")
    base.grid_ = sqrt_grid(*GRID)
    features = base.pretrained_features()
    pretrain_seconds = time.perf_counter() - t0
    for repeat in range(config["repeats"]):
        small = simulate_materials("nai", 3 * n_classes, seed=seed + 100 + repeat, **MEASURED)
        test = simulate_materials("nai", config["test_per_material"] * n_classes, seed=seed + 200 + repeat, **MEASURED)
        truth = test.truth["material"].to_numpy()
        y = small.truth["material"]
        methods = {"cnn pretrained + fine-tuned": (MaterialCNN(epochs=config["epochs"], seed=seed + repeat, device="cpu"),
                                                   {"features": features}),
                   "cnn small set only": (MaterialCNN(pretrain=False, epochs=config["epochs"], seed=seed + repeat,
                                                                  device="cpu"), {})}
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


def _accuracy(method: str, train, labels, test, truth, seed: int) -> float:
    from speclearn.gamma.materials_cnn import ClassicalMaterialClassifier
    predicted = ClassicalMaterialClassifier(method, seed=seed).fit(train, labels).predict(test)["label"].to_numpy()
    return float(np.mean(predicted == np.asarray(truth)))


#: generated spectra per material that augmentation may add (chosen per classifier on validation)
AUGMENT_SIZES = (0, 5, 10, 20)
CLASSICAL = ("rf", "svm", "knn")


def _grid_spectra(*parts):
    """Spectra (any energy axis) and count arrays already on the materials grid, stacked on that grid."""
    from speclearn.core.spectra import Spectra
    from speclearn.gamma.generate import grid_counts
    from speclearn.gamma.grid import sqrt_grid
    from speclearn.gamma.materials_cnn import GRID
    rows = [p if isinstance(p, np.ndarray) else grid_counts(p) for p in parts]
    return Spectra(np.vstack(rows), sqrt_grid(*GRID), axis_kind="energy", axis_unit="keV")


def _measured_spectra(per_material: int, seed: int):
    """`per_material` spectra of each library material in the measured setting."""
    from speclearn.gamma.materials import MATERIALS
    from speclearn.gamma.simulate import simulate_materials
    return simulate_materials("nai", per_material * len(MATERIALS), seed=seed, **MEASURED)


def _measured_generator(nominal, measured, labels, config: dict, seed: int, k: int):
    """ReVAE trained on the nominal simulation plus the measured spectra with a domain condition;
    `k` spectra per material generated in the measured domain (grid counts), their labels and their
    rank within their material (the first j of each: `rank < j`)."""
    from speclearn.gamma.generate import ReVAEGenerator
    model = ReVAEGenerator(epochs=config["gen_epochs"], seed=seed, device="cpu").fit(
        _grid_spectra(nominal.spectra, measured), list(nominal.truth["material"]) + list(labels),
        domains=["simulated"] * nominal.spectra.n_spectra + ["measured"] * len(labels))
    generated, truth = model.generate(list(model.classes_), k, seed=seed + 1, domain="measured")
    return generated.values(), truth["label"].to_numpy(), np.tile(np.arange(k), len(model.classes_))


def _augmentation(config: dict, seed: int, nominal, test, repeat: int) -> list[dict]:
    """Scarce measured spectra (3 per material) alone, plus generated measured-setting spectra (how many
    per material chosen per classifier by 3-fold validation on the measured spectra, the generator
    refitted without the held-out fold), and plus the nominal simulation itself (reference)."""
    from sklearn.model_selection import StratifiedKFold
    scarce = _measured_spectra(3, seed + 403 + 10 * repeat)
    labels, truth = scarce.truth["material"].to_numpy(), test.truth["material"]
    k = max(AUGMENT_SIZES)
    folds = StratifiedKFold(3, shuffle=True, random_state=seed + repeat).split(labels, labels)
    scores = {(m, j): [] for m in CLASSICAL for j in AUGMENT_SIZES}
    ids = np.asarray(scarce.spectra.ids)
    for f, (fit, val) in enumerate(folds):
        part, held = scarce.spectra.select(ids[fit]), scarce.spectra.select(ids[val])
        generated, g_labels, rank = _measured_generator(nominal, part, labels[fit], config, seed + 30 * f, k)
        for j in AUGMENT_SIZES:
            train = _grid_spectra(part, generated[rank < j])
            for method in CLASSICAL:
                scores[method, j].append(_accuracy(method, train, list(labels[fit]) + list(g_labels[rank < j]), held,
                                                   labels[val], seed))
    (generated, g_labels, rank), fit_s = timed(
        lambda: _measured_generator(nominal, scarce.spectra, labels, config, seed + 90, k))
    rows = []
    for method in CLASSICAL:
        chosen = max(AUGMENT_SIZES, key=lambda j: (np.mean(scores[method, j]), -j))
        train = _grid_spectra(scarce.spectra, generated[rank < chosen])
        rows.append({"task": "augmentation", "method": method, "repeat": repeat,
                     "train": f"{len(labels)} measured (+{int((rank < chosen).sum())} generated, {chosen}/material chosen on "
                              "validation)",
                     "accuracy_real": _accuracy(method, scarce.spectra, labels, test.spectra, truth, seed),
                     "accuracy_generated": _accuracy(method, train, list(labels) + list(g_labels[rank < chosen]),
                                                     test.spectra, truth, seed),
                     "accuracy_pooled": _accuracy(method, _grid_spectra(nominal.spectra, scarce.spectra),
                                                  list(nominal.truth["material"]) + list(labels), test.spectra, truth,
                                                  seed),
                     "chosen_per_material": chosen,
                     "validation": {str(j): float(np.mean(scores[method, j])) for j in AUGMENT_SIZES},
                     "test": test.spectra.n_spectra, "revae_fit_s": fit_s})
    for row in rows:
        row["ratio"] = row["accuracy_generated"] / row["accuracy_real"]
    return rows


def generation(config: dict, seed: int) -> list[dict]:
    from speclearn.gamma.generate import ReVAEGenerator
    from speclearn.gamma.materials import MATERIALS
    from speclearn.gamma.simulate import simulate_materials
    k, rows = config["gen_per_material"], []
    real = simulate_materials("nai", k * len(MATERIALS), seed=seed + 400)
    test = simulate_materials("nai", config["test_per_material"] * len(MATERIALS), seed=seed + 401)
    truth = test.truth["material"]
    t0 = time.perf_counter()
    model = ReVAEGenerator(epochs=config["gen_epochs"], seed=seed, device="cpu").fit(real.spectra, real.truth["material"])
    generated, gen_truth = model.generate(list(model.classes_), k, seed=seed + 402)
    fit_s = time.perf_counter() - t0
    for method in CLASSICAL:
        on_real = _accuracy(method, real.spectra, real.truth["material"], test.spectra, truth, seed)
        on_generated = _accuracy(method, generated, gen_truth["label"], test.spectra, truth, seed)
        rows.append({"task": "generation", "method": method, "train": f"{real.spectra.n_spectra} simulated",
                     "accuracy_real": on_real, "accuracy_generated": on_generated, "ratio": on_generated / on_real,
                     "test": test.spectra.n_spectra, "revae_fit_s": fit_s})
    for repeat in range(config["repeats"]):
        measured_test = _measured_spectra(config["test_per_material"], seed + 405 + 10 * repeat)
        rows += _augmentation(config, seed, real, measured_test, repeat)
    return rows


def auto_ranking(config: dict, seed: int) -> list[dict]:
    from speclearn.gamma.auto import select_material_classifier
    from speclearn.gamma.materials import MATERIALS
    from speclearn.gamma.simulate import simulate_materials
    small = simulate_materials("nai", 3 * len(MATERIALS), seed=seed + 100, **MEASURED)
    test = simulate_materials("nai", config["test_per_material"] * len(MATERIALS), seed=seed + 200, **MEASURED)
    (winner, ranking), seconds = timed(lambda: select_material_classifier(
        small.spectra, small.truth["material"], epochs=config["epochs"], seed=seed))
    accuracy = float(np.mean(winner.predict(test.spectra)["label"].to_numpy() == test.truth["material"].to_numpy()))
    return [{"task": "auto", "candidate": r["candidate"], "cv_error": r["score"], "note": r["excluded"] or "",
             "winner": ranking.winner, "winner_test_accuracy": accuracy, "seconds": seconds, "cv": ranking.splitter,
             "folds": ranking.n_folds} for r in ranking.rows]


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
    ae = AEComposition(epochs=config["ae_epochs"], seed=seed, device="cpu").fit(spectra, truth[list(ELEMENTS)])
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


def _learned_denoisers(detector: str, config: dict, seed: int) -> dict:
    """Denoisers trained on simulated 1-3 nuclide mixtures with background (3e4-3e5 counts): noise2noise
    on a few Poisson draws of each clean spectrum, supervised U-Net on (draw, clean) pairs."""
    from speclearn.core.spectra import Spectra
    from speclearn.denoise import ReplicateDenoiser, SupervisedDenoiser
    from speclearn.gamma.simulate import simulate_nuclides
    sim = simulate_nuclides(detector, config["denoise_train"], seed=seed + 700, counts=(3e4, 3e5))
    rng, replicates = np.random.default_rng(seed + 701), config["denoise_replicates"]
    clean = np.repeat(sim.clean, replicates, axis=0)
    spectra = Spectra(rng.poisson(clean).astype(float), sim.spectra.axis, axis_kind="energy", axis_unit="keV")
    groups = np.repeat(np.arange(len(sim.clean)), replicates)
    out = {}
    for name, method, kwargs in (("noise2noise U-Net (Poisson replicates)", ReplicateDenoiser, {"groups": groups}),
                                 ("supervised U-Net (clean targets)", SupervisedDenoiser, {"clean": clean})):
        model, seconds = timed(lambda: method(epochs=config["denoise_epochs"], seed=seed, device="cpu").fit(
            spectra, **kwargs))
        out[name] = (model, f"{len(spectra.ids)} spectra ({len(sim.clean)} x {replicates} draws), "
                            f"{config['denoise_epochs']} epochs, {seconds:.0f} s")
    return out


def savitzky_golay(config: dict, seed: int) -> list[dict]:
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
        versions, training = {"raw Poisson": sim.spectra.values()}, {}
        for factor in (0.5, 1.0, 2.0):
            window = max(5, int(2 * round(factor * fwhm_channels / 2) + 1))
            if any(f"window {window} " in key for key in versions):
                continue
            smoother = SavitzkyGolay(window_length=window, polyorder=2)
            versions[f"savgol window {window} ({factor:g} FWHM), order 2"] = smoother.fit_transform(sim.spectra.values())
        for name, (model, how) in _learned_denoisers(detector, config, seed).items():
            versions[name], training[name] = model.transform(sim.spectra).values(), how
        for name, data in versions.items():
            measured = np.array([_net_area_and_fwhm(axis, row, 661.657, fwhm) for row in data])
            rows.append({"task": "savitzky-golay", "detector": detector, "method": name,
                         "area_bias_pct": float(100 * (measured[:, 0].mean() / true_area - 1)),
                         "area_rsd_pct": float(100 * measured[:, 0].std() / true_area),
                         "width_change_pct": float(100 * (np.median(measured[:, 1]) / true_width - 1)),
                         "spectra": len(data), "fwhm_keV": fwhm, "training": training.get(name, "")})
    return rows


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0, sections: list[str] | None = None) -> dict:
    """Run every section, or only `sections` and keep the other sections' rows from the previous
    result in `out_dir` (same seed; each section records the scale it ran at)."""
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = SCALES[scale]
    runs = {"identification": lambda: identification(config, seed), "real": real_spectra,
            "savitzky_golay": lambda: savitzky_golay(config, seed), "composition": lambda: composition(config, seed),
            "classification": lambda: classification(config, seed), "generation": lambda: generation(config, seed),
            "auto": lambda: auto_ranking(config, seed)}
    rows, walls, scales = {}, {}, {}
    if sections is not None:
        unknown = sorted(set(sections) - set(runs))
        if unknown:
            raise InputError(f"unknown gamma benchmark section {unknown[0]!r}; known: {', '.join(runs)}")
        previous_path = out_dir / f"{NAME}.json"
        previous = json.loads(previous_path.read_text()) if previous_path.exists() else {}
        if previous.get("seed") != seed or set(previous.get("rows", {})) != set(runs):
            raise InputError(f"running only some sections needs a complete previous {NAME}.json with seed {seed} "
                             f"in {out_dir}")
        rows, walls = previous["rows"], previous["wall_seconds"]
        scales = previous.get("section_scales", dict.fromkeys(runs, previous["scale"]))
    for name, run in runs.items():
        if sections is None or name in sections:
            rows[name], walls[name] = timed(run)
            scales[name] = scale
    rows, walls, scales = ({name: part[name] for name in runs} for part in (rows, walls, scales))
    rerun = list(runs) if sections is None else [name for name in runs if name in sections]
    overall = scale if set(scales.values()) == {scale} else "mixed"
    summary = _summary(rows, walls, overall)
    result = {"name": NAME, "scale": overall, "section_scales": scales, "seed": seed,
              "config": {name: SCALES[name] for name in sorted(set(scales.values()))}, "machine": MACHINE,
              "wall_seconds": walls, "sections_rerun": rerun, "summary": summary, "rows": rows}
    write_result(out_dir / f"{NAME}.json", result)
    _write_markdown(out_dir, rows, walls, summary, scales, result["config"], rerun)
    return result


def _summary(sections: dict, walls: dict, scale: str) -> dict:
    ident = pd.DataFrame(sections["identification"])
    f1 = ident.groupby("method")["f1_micro"].mean().to_dict()
    cls = pd.DataFrame(sections["classification"]).groupby("method")["accuracy"].mean()
    comp = pd.DataFrame(sections["composition"])
    low = comp[comp["counts"] == "1e+04-1e+05"].groupby(["setting", "method"])["mae_HCNOCl"].mean()
    classical = cls.drop(["cnn pretrained + fine-tuned", "cnn small set only"])
    generation = pd.DataFrame(sections["generation"])
    gen = generation[generation["task"] == "generation"].set_index("method")["ratio"]
    augmentation = generation[generation["task"] == "augmentation"]
    aug = (augmentation["accuracy_generated"] - augmentation["accuracy_real"]).groupby(augmentation["method"]).mean()
    return {
        "scale": scale,
        "identification_f1": f1,
        "identification_target_f1_095_met": bool(f1.get(SHIPPED, 0) >= 0.95),
        "identification_above_peak_search": bool(f1.get(SHIPPED, 0) > f1.get("peak search", 1)),
        "classification_accuracy": cls.to_dict(),
        "classification_target_095_met": bool(cls["cnn pretrained + fine-tuned"] >= 0.95),
        "classification_gain_over_small_only": float(cls["cnn pretrained + fine-tuned"] - cls["cnn small set only"]),
        "classification_above_every_classical": bool(cls["cnn pretrained + fine-tuned"] > classical.max()),
        "composition_mae_low_counts": {f"{s} / {m}": float(v) for (s, m), v in low.items()},
        "generation_ratio": gen.to_dict(),
        "generation_target_090_met": bool(gen.max() >= 0.9),
        "augmentation_gain": aug.to_dict(),
        "augmentation_helps": bool(aug.mean() > 0),
        "auto_winner": sections["auto"][0]["winner"],
        "auto_winner_test_accuracy": sections["auto"][0]["winner_test_accuracy"],
        "wall_seconds": walls,
    }


def _write_markdown(out_dir: Path, sections: dict, walls: dict, summary: dict, scales: dict, config: dict,
                    rerun: list[str]) -> None:
    overall = summary["scale"] if summary["scale"] != "mixed" else "; ".join(
        f"{scale}: {', '.join(k for k, v in scales.items() if v == scale)}" for scale in sorted(set(scales.values())))
    lines = [f"### Gamma-ray spectroscopy (simulated + becquerel sample spectra; scale {overall})", "",
             f"Machine: {MACHINE}. Config per scale: {json.dumps(config)}. Wall per section: "
             + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items()) + "."
             + ("" if len(rerun) == len(walls) else f" Latest run: {', '.join(rerun)} only (the other sections are "
                                                   "from the previous run)."), ""]
    ident = pd.DataFrame(sections["identification"])
    lines += ["#### Nuclide identification (1-3 nuclides + natural background, unseen seeds)", "",
              "| detector | counts | method | micro-F1 | exact set | spectra | seconds | scale |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.detector} | {r.counts} | {r.method} | {r.f1_micro:.3f} | {r.exact_match:.2f} | {r.spectra} | "
              f"{'' if pd.isna(r.seconds) else f'{r.seconds:.1f}'} | {scales['identification']} |" for r in ident.itertuples()]
    lines += ["", "Mean micro-F1: " + ", ".join(f"{k} {v:.3f}" for k, v in summary["identification_f1"].items())
              + f" (target >= 0.95: {'met' if summary['identification_target_f1_095_met'] else 'NOT met'}; above peak "
              f"search: {'yes' if summary['identification_above_peak_search'] else 'no'}). The oracle row is what the "
              "label definition leaves to an identifier that knows every other component of the spectrum: each "
              "candidate's amount fitted to the counts (Poisson likelihood), then the labels' own detection-limit rule. "
              "Its errors are those the detection limit makes unavoidable; it is an upper reference, not a reachable "
              "target, since an identifier must estimate the other components' amounts that it knows.", ""]
    lines += ["#### Real spectra (becquerel samples)", "", "| file | what | calibration | method | named (score) |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['file']} | {r['what']} | {r['calibration']} | {r['method']} | {r['named']} |" for r in sections["real"]]
    cls = pd.DataFrame(sections["classification"])
    lines += ["", "#### Material classification (18 materials, measured setting)", "",
              "| method | accuracy | train/test | fit+predict s | scale |", "|---|---|---|---|---|"]
    for method, group in cls.groupby("method", sort=False):
        lines.append(f"| {method} | {group['accuracy'].mean():.3f} | {group['train'].iloc[0]}/{group['test'].iloc[0]} | "
                     f"{group['seconds'].mean():.1f} | {scales['classification']}, {len(group)} repeat(s) |")
    lines += ["", f"Pretraining: {cls['pretraining'].iloc[0]}. Target >= 0.95: "
              f"{'met' if summary['classification_target_095_met'] else 'NOT met'}; gain over small-set-only "
              f"{summary['classification_gain_over_small_only']:+.3f} (target >= +0.15); above every classical: "
              f"{'yes' if summary['classification_above_every_classical'] else 'no'}.", ""]
    comp = pd.DataFrame(sections["composition"])
    lines += ["#### Composition (MAE of H, C, N, O, Cl atom fractions)", "",
              "| setting | counts | method | MAE | H | C | N | O | Cl | test | scale |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.setting} | {r.counts} | {r.method} | {r.mae_HCNOCl:.4f} | {r.mae_H:.3f} | {r.mae_C:.3f} | {r.mae_N:.3f} | "
              f"{r.mae_O:.3f} | {r.mae_Cl:.3f} | {r.test} | {scales['composition']} |" for r in comp.itertuples()]
    lines += ["", f"Autoencoder training: {comp['training'].iloc[0]}. Target MAE <= 0.02 and below NNLS at low counts.", ""]
    sg = pd.DataFrame(sections["savitzky_golay"]).sort_values(["detector", "method"])
    lines += ["#### Savitzky-Golay vs learned denoising (Cs-137 662 keV peak, 1e5 counts per spectrum)", "",
              "| detector | method | area bias % | area RSD % | FWHM change % | spectra | denoiser training | scale |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.detector} | {r.method} | {r.area_bias_pct:+.2f} | {r.area_rsd_pct:.2f} | {r.width_change_pct:+.2f} | "
              f"{r.spectra} | {r.training} | {scales['savitzky_golay']} |" for r in sg.itertuples()]
    sg["met"] = (sg["area_bias_pct"].abs() < 1.0) & (sg["width_change_pct"].abs() < 5.0)
    savgol = sg[sg["method"].str.startswith("savgol")].groupby("detector")["met"].any().all()
    learned = sg[sg["training"] != ""].groupby("method")["met"].all()
    lines += ["", "Target: area bias < 1 %, width change < 5 %, on both detectors: Savitzky-Golay (some window per "
              f"detector) {'met' if savgol else 'NOT met'}"
              + "".join(f"; {k} {'met' if v else 'NOT met'}" for k, v in learned.items()) + ".", ""]
    gen = pd.DataFrame(sections["generation"])
    made, aug = gen[gen["task"] == "generation"], gen[gen["task"] == "augmentation"]
    lines += ["#### Generation (ReVAE, 18 materials, nominal setting)", "",
              "| classifier | trained on | accuracy (simulated-trained) | accuracy (generated-trained) | ratio | test | scale |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.method} | {r.train} | {r.accuracy_real:.3f} | {r.accuracy_generated:.3f} | {r.ratio:.3f} | "
              f"{r.test} | {scales['generation']} |" for r in made.itertuples()]
    lines += ["", f"ReVAE fit {made['revae_fit_s'].iloc[0]:.0f} s ({config[scales['generation']]['gen_epochs']} epochs). "
              f"Target: generated-only >= 0.90 of simulated-trained: "
              f"{'met' if summary['generation_target_090_met'] else 'NOT met'} (best ratio "
              f"{max(summary['generation_ratio'].values()):.3f}).", ""]
    lines += ["#### Augmentation with scarce measured spectra (measured setting, 3 per material)", "",
              "| classifier | repeat | measured alone | + generated for the measured setting | generated/material "
              "(validation) | gain | + nominal simulation (reference) | test | scale |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.method} | {int(r.repeat)} | {r.accuracy_real:.3f} | {r.accuracy_generated:.3f} | "
              f"{int(r.chosen_per_material)} | {r.accuracy_generated - r.accuracy_real:+.3f} | {r.accuracy_pooled:.3f} | "
              f"{r.test} | {scales['generation']} |" for r in aug.itertuples()]
    mean = aug.groupby("method")[["accuracy_real", "accuracy_generated", "accuracy_pooled"]].mean()
    lines += [f"| {m} | mean | {r.accuracy_real:.3f} | {r.accuracy_generated:.3f} | | "
              f"{r.accuracy_generated - r.accuracy_real:+.3f} | {r.accuracy_pooled:.3f} | | |" for m, r in mean.iterrows()]
    lines += ["", f"Generator: ReVAE with a domain condition (simulated / measured), trained on "
              f"{made['train'].iloc[0]} nominal spectra plus the measured ones ({aug['revae_fit_s'].mean():.0f} s per "
              "fit); generated/material chosen per classifier from "
              f"{', '.join(map(str, AUGMENT_SIZES))} by 3-fold validation on the measured spectra (generator refitted "
              "without the held-out fold). Target: augmentation helps when real spectra are scarce (mean gain "
              f"{np.mean(list(summary['augmentation_gain'].values())):+.3f}): "
              f"{'yes' if summary['augmentation_helps'] else 'no'}.", ""]
    auto = pd.DataFrame(sections["auto"])
    lines += ["#### `gamma train --method auto` (54 measured spectra, cross-validated ranking)", "",
              "| candidate | CV error rate | note | scale |", "|---|---|---|---|"]
    lines += [f"| {r.candidate} | {'' if r.cv_error is None or pd.isna(r.cv_error) else f'{r.cv_error:.3f}'} | "
              f"{'winner' if r.candidate == r.winner else r.note} | {scales['auto']} |" for r in auto.itertuples()]
    lines += ["", f"{auto['cv'].iloc[0]}, {auto['folds'].iloc[0]} folds, {auto['seconds'].iloc[0]:.0f} s; winner "
              f"{auto['winner'].iloc[0]}, test accuracy {auto['winner_test_accuracy'].iloc[0]:.3f} on "
              f"{config[scales['auto']]['test_per_material'] * 18} measured spectra.", ""]
    write_result(out_dir / f"{NAME}.md", "\n".join(lines))
