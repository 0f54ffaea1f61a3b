"""MRS benchmark (logic of benchmarks/mrs.py) on spectra simulated from the shipped ISMRM 2016 basis.

1. Alignment: residual frequency / phase spread across transients (after removing each scan's mean)
   of spectral registration (Near 2015, local), registration with a coarse +-50 Hz correlation search,
   the CNN aligner, and CNN + registration (`auto`), at moderate drift and for large offsets, beside the
   limits: registration to each scan's noise-free signal (oracle) and the Cramer-Rao bound.
2. Quantification (eddy-current corrected spectra): median absolute % error for NAA, tCr, tCho, Ins,
   Glu, GSH, GABA of the DL quantifier (varpro network + refinement), the supervised CNN regressor and
   the linear-combination fit (water-scaled mM) at several SNRs, beside the CRLB-implied median error
   (0.674 x CRLB / truth); 90 % interval coverage (DL: conformal; LCM: +-1.645 CRLB); regression slope
   on concentrations 1.3-1.6x above the training range and the training-mean bias test (Rizzo 2023).
3. Corrupted-transient detection: recall and false-positive rate of the CNN detector and of the
   robust z > 3 rule.
4. Speed per spectrum.
5. Denoising of few-average spectra (section "denoising", written to mrs_denoising.json/.md): averages of
   K of a scan's 16 transients, raw vs denoised by the denoising system's replicate-trained U-Net
   (noise2noise), its blind-spot sibling and noise2noise's Savitzky-Golay smoother alone, trained on the
   transients of other scans; spectral RMSE against the noise-free scan, and what the linear-combination
   fit makes of them (median absolute and signed % error, CRLB), beside the full 16-transient average.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from speclearn.metrics import best_times
from speclearn.mrs.align_cnn import CNNAligner
from speclearn.mrs.artifacts import TransientDetector, aligned_simulation
from speclearn.mrs.basis import MAIN, combine, load_basis
from speclearn.mrs.cli import (DENOISE_METHODS, block_averages, denoise_mrs, fit_few_average_denoiser, load_shipped,
                               prepare)
from speclearn.mrs.data import ppm_slice, shift_phase
from speclearn.mrs.evaluation import (median_abs_percent_error, offset_crlb, regression_slope, residual_spread,
                                      training_mean_bias_test)
from speclearn.mrs.lcm import LinearCombinationFit
from speclearn.mrs.preprocess import combine_coils, eddy_current_correction, transient_outlier_scores
from speclearn.mrs.quantifier import DLQuantifier
from speclearn.mrs.registration import AUTO_SEARCH_HZ, SpectralRegistration, register
from speclearn.mrs.simulate import MRSSimConfig, coil_scan, simulate_mrs
from speclearn.io.atomic import write_result

SCALES = {
    "tiny": {"align_scans": 2, "train": 60, "test": 4, "snrs": (40.0,), "epochs": 2, "supervised_epochs": 2,
             "patience": 2, "detector_scans": 2, "train_snr": (10.0, 150.0)},
    "quick": {"align_scans": 12, "train": 3000, "test": 30, "snrs": (15.0, 40.0, 120.0), "epochs": 20,
              "supervised_epochs": 100, "patience": 25, "detector_scans": 12, "train_snr": (10.0, 150.0)},
    "full": {"align_scans": 40, "train": 10000, "test": 400,
             "snrs": (15.0, 40.0, 120.0), "epochs": 60, "supervised_epochs": 200, "patience": 30,
             "detector_scans": 40, "train_snr": (10.0, 150.0)},
}
#: few-average denoising: training / test scans of 16 transients, test SNRs (of the full average), K
DENOISE_SCALES = {
    "tiny": {"train": 6, "test": 2, "transients": 16, "snrs": (40.0,), "averages": (2,), "train_snr": (10.0, 60.0),
             "epochs": 2},
    "quick": {"train": 40, "test": 40, "transients": 16, "snrs": (15.0, 40.0), "averages": (2, 4, 8),
              "train_snr": (10.0, 60.0), "epochs": 80},
    "full": {"train": 100, "test": 60, "transients": 16, "snrs": (15.0, 40.0, 120.0), "averages": (2, 4, 8),
             "train_snr": (10.0, 150.0), "epochs": 200},
}
#: SNRs of the out-of-range cases (at 40 GABA's CRLB-implied error is ~60 %; at 120 all are measurable)
OUT_OF_RANGE_SNRS = (40.0, 120.0)
#: metabolites of the denoising section
DENOISE_METABOLITES = ("NAA", "tCr", "tCho", "Glu", "Ins")
SECTIONS = ("main", "denoising", "coils")
#: coil section: scans per scale; coil sensitivities (magnitudes; phases drawn per scan); SNR of one unit coil
COIL_SCANS = {"quick": 10, "full": 30}
COIL_SENSITIVITIES = (1.0, 0.8, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02)
COIL_UNIT_SNR = 30.0
ALIGN_CASES = {"moderate (SNR 40, drift sd 3 Hz / 10 deg)": {"snr": (40.0, 40.0), "drift_hz": 3.0, "drift_phase_deg": 10.0},
               "large offsets (sd 15 Hz / 90 deg)": {"snr": (40.0, 40.0), "drift_hz": 15.0, "drift_phase_deg": 90.0}}


def _machine() -> str:
    return f"{platform.machine()} CPU, torch threads {torch.get_num_threads()}"


def _alignment(basis, scale: dict, seed: int, aligner: CNNAligner) -> list[dict]:
    rows = []
    for case, knobs in ALIGN_CASES.items():
        sim = simulate_mrs(scale["align_scans"], seed=seed + 11, basis=basis,
                           config=MRSSimConfig(corrupted_fraction=0.0, **knobs))
        data, truth = sim.transients, sim.truth
        methods = {
            "spectral registration (Near 2015, local)": lambda: SpectralRegistration().estimate(data),
            "registration + 50 Hz correlation search": lambda: SpectralRegistration(search_hz=50.0).estimate(data),
            "CNN": lambda: aligner.estimate(data),
            "CNN + registration (auto)": lambda: SpectralRegistration(search_hz=AUTO_SEARCH_HZ).estimate(
                data, **dict(zip(("initial_hz", "initial_deg"), aligner.estimate(data)))),
        }
        for method, run in methods.items():
            start = time.perf_counter()
            shift, phase = run()
            seconds = time.perf_counter() - start
            rows.append({"case": case, "method": method,
                         "shift_spread_hz": residual_spread(shift, truth["shift_hz"], truth["scan"]),
                         "phase_spread_deg": residual_spread(phase, truth["phase_deg"], truth["scan"], circular=True),
                         "true_spread_hz": residual_spread(np.zeros(data.n), truth["shift_hz"], truth["scan"]),
                         "ms_per_transient": 1000 * seconds / data.n, "transients": data.n})
        # the limits: registration of each transient to its scan's noise-free signal, and the Cramer-Rao bound
        scan_row = pd.Index(sim.clean.ids).get_indexer(truth["scan"])
        shift, phase = register(data.fid, sim.clean.fid[scan_row], data.dwell_time_s, window_s=0.5, search_hz=50.0)
        # the spreads remove each scan's mean: for independent errors that scales their RMS by sqrt(1 - 1/T)
        crlb_hz, crlb_deg = (np.sqrt(1.0 - 1.0 / np.bincount(scan_row)[scan_row]) * bound[scan_row] for bound in
                             offset_crlb(sim.clean.fid, sim.scans["noise_sd_time"].to_numpy(), data.dwell_time_s))
        rows += [{"case": case, "method": "registration to the noise-free signal (oracle)",
                  "shift_spread_hz": residual_spread(shift, truth["shift_hz"], truth["scan"]),
                  "phase_spread_deg": residual_spread(phase, truth["phase_deg"], truth["scan"], circular=True),
                  "transients": data.n},
                 {"case": case, "method": "Cramer-Rao bound (RMS over transients, scan mean removed)",
                  "shift_spread_hz": float(np.sqrt(np.mean(crlb_hz ** 2))),
                  "phase_spread_deg": float(np.sqrt(np.mean(crlb_deg ** 2))), "transients": data.n}]
    return rows


def _truth(sim) -> dict[str, np.ndarray]:
    return combine({k: sim.concentrations[k].to_numpy() for k in sim.concentrations})


def _quantification(basis, scale: dict, seed: int) -> tuple[list[dict], list[dict], dict, DLQuantifier]:
    """Every spectrum eddy-current corrected with its water reference first (as `mrs fit` does)."""
    train_sim = simulate_mrs(scale["train"], seed=seed + 21, basis=basis,
                             config=MRSSimConfig(transients=1, corrupted_fraction=0.0, snr=scale["train_snr"]))
    train_data = eddy_current_correction(train_sim.spectra, train_sim.water)
    start = time.perf_counter()
    dl = DLQuantifier(method="varpro", epochs=scale["epochs"], patience=scale["patience"], seed=seed,
                      device="cpu").fit(train_data, basis, train_sim.concentrations, water=train_sim.water)
    dl_train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    supervised = DLQuantifier(method="supervised", epochs=scale["supervised_epochs"], patience=scale["patience"],
                              seed=seed, device="cpu").fit(train_data, basis, train_sim.concentrations)
    supervised_seconds = time.perf_counter() - start
    train_truth = _truth(train_sim)
    rows, slope_rows, paired = [], [], []
    cases = {f"SNR {snr:g}": {"snr": (snr, snr)} for snr in scale["snrs"]}
    for snr in OUT_OF_RANGE_SNRS:
        cases[f"out of range (x1.3-1.6), SNR {snr:g}"] = {"snr": (snr, snr), "concentration_factor": (1.3, 1.6)}
    for k, (case, knobs) in enumerate(cases.items()):
        sim = simulate_mrs(scale["test"], seed=seed + 31 + k, basis=basis,
                           config=MRSSimConfig(transients=1, corrupted_fraction=0.0, **knobs))
        data = eddy_current_correction(sim.spectra, sim.water)
        truth = _truth(sim)
        start = time.perf_counter()
        lcm_table = LinearCombinationFit().fit(data, basis).concentrations(sim.water)[0]
        lcm_seconds = (time.perf_counter() - start) / data.n
        start = time.perf_counter()
        dl_table = dl.predict(data, water=sim.water, interval=0.9)[0]
        dl_seconds = (time.perf_counter() - start) / data.n
        network_start = float(np.mean([r["start"] == 0 for r in dl.refined(data)[1].results_]))
        sup_table = supervised.predict(data, water=sim.water, interval=0.9)[0]
        lcm_table = lcm_table.assign(**{f"{n}_lo": lcm_table[n] - 1.645 * lcm_table[f"{n}_sd"] for n in MAIN},
                                     **{f"{n}_hi": lcm_table[n] + 1.645 * lcm_table[f"{n}_sd"] for n in MAIN})
        tables = {"dl": dl_table, "supervised": sup_table, "lcm": lcm_table}
        errors = {m: np.concatenate([np.abs(tables[m][n].to_numpy() / truth[n] - 1) for n in MAIN]) for m in ("dl", "lcm")}
        paired.append({"case": case, "pairs": errors["dl"].size,
                       "dl_minus_lcm_median_pct": float(100 * np.median(errors["dl"] - errors["lcm"])),
                       "dl_lower_share": float(np.mean(errors["dl"] < errors["lcm"])),
                       "wilcoxon_p": float(stats.wilcoxon(errors["dl"] - errors["lcm"]).pvalue)})
        for name in MAIN:
            t = truth[name]
            row = {"case": case, "metabolite": name, "spectra": data.n}
            row |= {f"{m}_error_pct": median_abs_percent_error(t, tab[name]) for m, tab in tables.items()}
            row["crlb_implied_error_pct"] = float(100 * 0.6745 * np.median(lcm_table[f"{name}_sd"].to_numpy() / t))
            row |= {f"{m}_coverage_90": float(np.mean((tab[f"{name}_lo"] <= t) & (t <= tab[f"{name}_hi"])))
                    for m, tab in tables.items()}
            row |= {f"{m}_slope": regression_slope(t, tab[name]) for m, tab in tables.items()}
            row |= {"dl_network_start_kept": network_start, "dl_ms_per_spectrum": 1000 * dl_seconds,
                    "lcm_ms_per_spectrum": 1000 * lcm_seconds}
            rows.append(row)
            if case.startswith("out of range"):
                mean = float(np.mean(train_truth[name]))
                slope_row = {"case": case, "metabolite": name, "training_range": f"{train_truth[name].min():.2f}-"
                             f"{train_truth[name].max():.2f} mM (mean {mean:.2f})",
                             "test_range": f"{t.min():.2f}-{t.max():.2f} mM"}
                for m, tab in tables.items():
                    test = training_mean_bias_test(t, tab[name].to_numpy(), mean)
                    slope_row |= {f"{m}_slope": row[f"{m}_slope"], f"{m}_slope_se": test["stderr"],
                                  f"{m}_bias_slope": test["slope"],
                                  f"{m}_bias_p": test["p_value"], f"{m}_biased": test["biased"]}
                slope_rows.append(slope_row)
    info = {"train_spectra": scale["train"], "dl_train_seconds": dl_train_seconds, "dl_epochs_run": len(dl.history_.train_loss),
            "dl_stopped": dl.history_.stopped, "supervised_train_seconds": supervised_seconds,
            "supervised_epochs_run": len(supervised.history_.train_loss),
            "supervised_stopped": supervised.history_.stopped,
            "calibration_spectra": int(round(dl.calibration_fraction * scale["train"])), "paired": paired}
    return rows, slope_rows, info, dl


def _detection(basis, scale: dict, seed: int, detector: TransientDetector) -> list[dict]:
    data, corrupted, _ = aligned_simulation(basis, scale["detector_scans"], seed=seed + 41)
    start = time.perf_counter()
    cnn = detector.predict(data)
    cnn_ms = 1000 * (time.perf_counter() - start) / data.n
    start = time.perf_counter()
    z = transient_outlier_scores(data) > 3.0
    z_ms = 1000 * (time.perf_counter() - start) / data.n
    rows = []
    for method, flags, ms in (("CNN detector", cnn, cnn_ms), ("robust z > 3", z, z_ms)):
        rows.append({"method": method, "transients": data.n, "corrupted": int(corrupted.sum()),
                     "recall": float(flags[corrupted].mean()), "false_positive_rate": float(flags[~corrupted].mean()),
                     "ms_per_transient": ms})
    return rows


def _speed(basis, aligner: CNNAligner, dl: DLQuantifier, seed: int) -> dict:
    """One scan of 16 transients: CNN alignment, registration refinement, DL quantification (network
    nuisance + Levenberg-Marquardt refinement + NNLS + CRLB), LCM fit; milliseconds per call, the best
    of 7 interleaved rounds of >= 0.2 s (other processes on a shared machine only add time)."""
    sim = simulate_mrs(1, seed=seed + 51, basis=basis, config=MRSSimConfig(transients=16))
    shift, phase = aligner.estimate(sim.transients)
    calls = {"dl_quantify_ms": lambda: dl.predict(sim.spectra),
             "lcm_fit_ms": lambda: LinearCombinationFit().fit(sim.spectra, basis),
             "cnn_align_16_transients_ms": lambda: aligner.estimate(sim.transients),
             "registration_refine_16_transients_ms": lambda: SpectralRegistration(
                 search_hz=AUTO_SEARCH_HZ).estimate(sim.transients, initial_hz=shift, initial_deg=phase)}
    return {name: 1000 * seconds for name, seconds in best_times(calls, 7, min_seconds=0.2).items()}


def _oracle_aligned(sim):
    """Transients with their true offsets undone: alignment is not what the denoising section measures."""
    t = sim.transients
    return t.with_fid(shift_phase(t.fid, t.dwell_time_s, -sim.truth["shift_hz"].to_numpy(),
                                  -sim.truth["phase_deg"].to_numpy()))


def _fit_measures(data, sim, basis, window: slice) -> tuple[dict, float]:
    """Per-scan spectral RMSE (0.2-4.2 ppm, complex) against the noise-free scan, and the LCM fit of
    the eddy-current corrected spectra (water-scaled mM): median abs / signed % error and median
    CRLB / truth % per metabolite, fitted extra line broadening. Returns (measures, fit seconds)."""
    rmse = np.sqrt(np.mean(np.abs(data.spectrum()[:, window] - sim.clean.spectrum()[:, window]) ** 2, axis=1))
    start = time.perf_counter()
    model = LinearCombinationFit().fit(eddy_current_correction(data, sim.water), basis)
    table = model.concentrations(sim.water)[0]
    seconds = time.perf_counter() - start
    truth = _truth(sim)
    out = {"rmse": rmse, "abs_errors": np.stack([np.abs(table[n].to_numpy() / truth[n] - 1)
                                                 for n in DENOISE_METABOLITES], axis=1)}
    for name in DENOISE_METABOLITES:
        t, estimate = truth[name], table[name].to_numpy()
        out[f"{name}_error_pct"] = median_abs_percent_error(t, estimate)
        out[f"{name}_signed_pct"] = float(100 * np.median(estimate / t - 1))
        out[f"{name}_crlb_pct"] = float(100 * np.median(table[f"{name}_sd"].to_numpy() / t))
    nuisance = model.nuisance()
    out["fit_lorentzian_fwhm_hz"] = float(np.median(nuisance["lorentzian_per_s"]) / np.pi)
    out["fit_gaussian_fwhm_hz"] = float(np.median(nuisance["gaussian_per_s"]) * 2 * np.sqrt(np.log(2)) / np.pi)
    return out, seconds


def _denoising_row(snr, k, method, measures, raw, full, scans, label, seconds) -> dict:
    names = DENOISE_METABOLITES
    error = float(np.mean([measures[f"{n}_error_pct"] for n in names]))
    crlb = float(np.mean([measures[f"{n}_crlb_pct"] for n in names]))
    nan = float("nan")  # the full average has no raw K-average to compare with
    row = {"snr": snr, "averages": k, "method": method, "scans": scans, "scale": label,
           "rmse_vs_raw": nan if raw is None else float(np.median(measures["rmse"] / raw["rmse"])),
           "rmse_vs_full_average": float(np.median(measures["rmse"] / full["rmse"])),
           "error_pct": error,
           "error_vs_raw": nan if raw is None else error / float(np.mean([raw[f"{n}_error_pct"] for n in names])),
           "signed_pct": float(np.mean([measures[f"{n}_signed_pct"] for n in names])),
           "better_than_raw": nan, "paired_p": nan,
           "crlb_pct": crlb, "error_over_crlb": error / (0.6745 * crlb)}
    if raw is not None and measures is not raw:  # paired over scans x metabolites
        difference = (measures["abs_errors"] - raw["abs_errors"]).ravel()
        row["better_than_raw"] = float(np.mean(difference < 0))
        row["paired_p"] = float(stats.wilcoxon(difference).pvalue)
    row |= {f"{n}_error_pct": measures[f"{n}_error_pct"] for n in names}
    row |= {f"{n}_signed_pct": measures[f"{n}_signed_pct"] for n in names}
    row |= {"fit_lorentzian_fwhm_hz": measures["fit_lorentzian_fwhm_hz"],
            "fit_gaussian_fwhm_hz": measures["fit_gaussian_fwhm_hz"], "seconds": seconds}
    return row


def _denoising(basis, scale: dict, seed: int) -> tuple[list[dict], list[dict]]:
    """(rows per SNR x K x method, training rows per K x method); see the module docstring."""
    def config(snr):
        return MRSSimConfig(transients=scale["transients"], snr=tuple(snr), corrupted_fraction=0.0)

    train_sim = simulate_mrs(scale["train"], seed=seed + 61, basis=basis, config=config(scale["train_snr"]))
    train = _oracle_aligned(train_sim)
    label = f"{scale['train']} train / {scale['test']} test scans x {scale['transients']} transients"
    denoisers, training = {}, []
    for k in scale["averages"]:
        for method in DENOISE_METHODS[:-1]:
            start = time.perf_counter()
            denoisers[(k, method)] = model = fit_few_average_denoiser(
                train, k, method, seed=seed, epochs=scale["epochs"], device="cpu")
            training.append({"averages": k, "method": method, "scale": label,
                             "training_spectra": 2 * scale["train"] * (scale["transients"] // k),
                             "savgol_window": model.window_, "epochs_run": len(model.history_["train_loss"]),
                             "stopped": model.history_["stopped"], "train_seconds": time.perf_counter() - start})
    rows = []
    for i, snr in enumerate(scale["snrs"]):
        sim = simulate_mrs(scale["test"], seed=seed + 71 + i, basis=basis, config=config((snr, snr)))
        test = _oracle_aligned(sim)
        window = ppm_slice(test.ppm(), 0.2, 4.2)
        full, full_seconds = _fit_measures(block_averages(test, scale["transients"], first=True), sim, basis, window)
        for k in scale["averages"]:
            raw_data = block_averages(test, k, first=True)
            raw, raw_seconds = _fit_measures(raw_data, sim, basis, window)
            for method in DENOISE_METHODS:
                if method == "none":
                    measures, seconds = raw, raw_seconds
                else:
                    start = time.perf_counter()
                    denoised = denoise_mrs(denoisers[(k, method)], raw_data)
                    measures, seconds = _fit_measures(denoised, sim, basis, window)
                    seconds += time.perf_counter() - start
                rows.append(_denoising_row(snr, k, method, measures, raw, full, test.n // scale["transients"],
                                           label, seconds))
        rows.append(_denoising_row(snr, scale["transients"], "full average", full, None, full,
                                   test.n // scale["transients"], label, full_seconds))
    return rows, training


def _denoising_summary(rows: list[dict]) -> dict:
    """Per SNR and K: the method with the lowest quantification error and, per denoiser, its error and
    RMSE ratios to the raw average, the paired test, and whether it helps / hurts (p < 0.05)."""
    table = pd.DataFrame(rows)
    table = table[table["method"] != "full average"]
    out = {}
    for (snr, k), group in table.groupby(["snr", "averages"]):
        case = {"best_method": group.loc[group["error_pct"].idxmin(), "method"]}
        for _, r in group[group["method"] != "none"].iterrows():
            significant = r["paired_p"] < 0.05
            case[r["method"]] = {"error_vs_raw": r["error_vs_raw"], "rmse_vs_raw": r["rmse_vs_raw"],
                                 "better_than_raw": r["better_than_raw"], "paired_p": r["paired_p"],
                                 "helps": bool(significant and r["error_vs_raw"] < 1),
                                 "hurts": bool(significant and r["error_vs_raw"] > 1)}
        out[f"SNR {snr:g}, K={k}"] = case
    return out


def _coils(basis, scans: int, seed: int) -> tuple[list[dict], dict]:
    """Uncombined 8-coil scans (16 transients, sensitivities `COIL_SENSITIVITIES` with random phases, the
    same noise in every coil) quantified by the LCM after three combinations: `combine_coils`, the true
    sensitivities (S/N^2 weights: the best linear combination) and none (coils treated as transients)."""
    rng = np.random.default_rng(seed + 91)
    sim = simulate_mrs(scans, seed=seed + 92, basis=basis,
                       config=MRSSimConfig(transients=16, snr=(3000.0, 3000.0), corrupted_fraction=0.0))
    magnitudes = np.array(COIL_SENSITIVITIES)
    coils = magnitudes.size
    noise_sd = sim.scans["noise_sd_time"].to_numpy() * 3000.0 / COIL_UNIT_SNR
    errors = {"combine_coils": [], "true sensitivities": [], "none (coils as transients)": []}
    truth = _truth(sim)
    for k, name in enumerate(sim.transients.scan_names()):
        a = magnitudes * np.exp(2j * np.pi * rng.random(coils))
        data, reference = coil_scan(sim, k, a, noise_sd[k], rng)
        fid = data.fid.reshape(-1, coils, data.points)  # (transients, coils, points)
        best = a.conj() / np.sum(np.abs(a) ** 2)
        pairs = {"combine_coils": combine_coils(data, reference),
                 "true sensitivities": (
                     data.with_fid(np.einsum("tcp,c->tp", fid, best), dims=[], ids=None, scans=[name] * len(fid)),
                     reference.with_fid((best @ reference.fid)[None], dims=[], ids=None, scans=[name])),
                 "none (coils as transients)": (data.with_fid(data.fid, dims=[]),
                                                reference.with_fid(reference.fid, dims=[]))}
        for method, (spectra, water_ref) in pairs.items():
            spectra, water_ref = prepare(spectra), prepare(water_ref, align=False, reject=None)
            model = LinearCombinationFit().fit(eddy_current_correction(spectra, water_ref), basis)
            table = model.concentrations(water_ref)[0]
            errors[method].append([abs(table[m].iloc[0] / truth[m][k] - 1) * 100 for m in MAIN])
    rows = []
    for method, e in errors.items():
        e = np.array(e)
        medians = np.median(e, axis=0)
        row = {"method": method, "scans": scans, **{f"{m}_error_pct": v for m, v in zip(MAIN, medians)},
               "median_of_medians_pct": float(np.median(medians))}
        if method != "combine_coils":
            difference = (np.array(errors["combine_coils"]) - e).ravel()
            row |= {"combine_coils_minus_this_mean_pct": float(difference.mean()),
                    "wilcoxon_p": float(stats.wilcoxon(difference).pvalue)}
        rows.append(row)
    return rows, {"scans": scans, "transients": 16, "coils": coils, "sensitivities": list(COIL_SENSITIVITIES),
                  "unit_coil_snr": COIL_UNIT_SNR}


def _run_coils(out_dir: Path, scale: str, seed: int) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter()
    rows, settings = _coils(load_basis(), COIL_SCANS[scale], seed)
    result = {"scale": scale, "settings": settings, "machine": _machine(), "wall_seconds": time.perf_counter() - wall,
              "rows": rows}
    write_result(out_dir / "mrs_coils.json", result)
    ours, best = rows[0], rows[1]
    lines = [f"# MRS: combining uncombined coils ({scale} scale, {result['machine']}, wall {result['wall_seconds']:.0f} s)",
             "", f"Simulated scans ({settings['scans']} scans x {settings['transients']} transients, ISMRM 2016 basis, "
             f"3 T), each seen by {settings['coils']} coils of sensitivities {settings['sensitivities']} (random "
             f"phases) with the same noise, SNR {COIL_UNIT_SNR:g} in a unit-sensitivity coil; water reference with "
             "the same coils. Median absolute % error of the linear-combination fit (eddy-current corrected, "
             "water-scaled mM) after: `combine_coils` (what every `mrs` command does), the combination with the "
             "true sensitivities (the best one), and none (the coils treated as transients: aligned, outliers "
             "rejected, averaged). Paired columns: `combine_coils` minus the row's method over every (scan, "
             "metabolite) pair, Wilcoxon signed-rank p.", "", _table(rows), "",
             f"`combine_coils` vs the true sensitivities: median of the medians {ours['median_of_medians_pct']:.2f} "
             f"vs {best['median_of_medians_pct']:.2f} % (paired p {best['wilcoxon_p']:.2g})."]
    (out_dir / "mrs_coils.md").write_text("\n".join(lines) + "\n")
    return result


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0, sections=SECTIONS) -> dict:
    """sections: "main" (alignment, quantification, detection, speed -> mrs.json/.md), "denoising"
    (few-average denoising -> mrs_denoising.json/.md), "coils" (coil combination -> mrs_coils.json/.md).
    Returns the main result with the others under their names, or the one section's result."""
    from threadpoolctl import threadpool_limits
    unknown = set(sections) - set(SECTIONS)
    if unknown or not sections:
        raise ValueError(f"sections must be among {SECTIONS}, got {sections}")
    runs = {"main": _run, "denoising": _run_denoising, "coils": _run_coils}
    torch.set_num_threads(1)
    with threadpool_limits(1):  # BLAS and torch threads spinning against each other slow both down
        results = {section: runs[section](out_dir, scale, seed) for section in sections}
    if "main" in results:
        return results.pop("main") | results
    return next(iter(results.values())) if len(results) == 1 else results


def _run_denoising(out_dir: Path, scale: str, seed: int) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = DENOISE_SCALES[scale]
    wall = time.perf_counter()
    rows, training = _denoising(load_basis(), config, seed)
    result = {"scale": scale, "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
              "machine": _machine(), "wall_seconds": time.perf_counter() - wall, "training": training,
              "rows": rows, "summary": _denoising_summary(rows)}
    write_result(out_dir / "mrs_denoising.json", result)
    _denoising_markdown(out_dir / "mrs_denoising.md", result)
    return result


def _run(out_dir: Path, scale: str, seed: int) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = SCALES[scale]
    basis = load_basis()
    wall = time.perf_counter()
    aligner = load_shipped("aligner", CNNAligner, "cpu") or CNNAligner(n_scans=300, augment=8, epochs=20, seed=seed,
                                                                          device="cpu").fit(basis)
    detector = load_shipped("detector", TransientDetector, "cpu") or TransientDetector(n_scans=100, epochs=15, seed=seed,
                                                                                   device="cpu").fit(basis)
    start = time.perf_counter()
    alignment = _alignment(basis, config, seed, aligner)
    align_seconds = time.perf_counter() - start
    start = time.perf_counter()
    quantification, slopes, dl_info, dl = _quantification(basis, config, seed)
    quant_seconds = time.perf_counter() - start
    start = time.perf_counter()
    detection = _detection(basis, config, seed, detector)
    detect_seconds = time.perf_counter() - start
    speed = _speed(basis, aligner, dl, seed)
    speed["align_plus_quantify_ms"] = speed["cnn_align_16_transients_ms"] + speed["dl_quantify_ms"]
    summary = _summary(alignment, quantification, slopes, detection, speed, config)
    result = {"scale": scale, "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
              "machine": _machine(), "wall_seconds": time.perf_counter() - wall,
              "section_seconds": {"alignment": align_seconds, "quantification": quant_seconds,
                                  "detection": detect_seconds},
              "dl_training": dl_info, "aligner": aligner.get_params(), "detector": detector.get_params(),
              "alignment": alignment, "quantification": quantification, "out_of_range": slopes,
              "detection": detection, "speed": speed, "summary": summary}
    write_result(out_dir / "mrs.json", result)
    _markdown(out_dir / "mrs.md", result)
    return result


def _summary(alignment, quantification, slopes, detection, speed, config) -> dict:
    by = {(r["case"], r["method"]): r for r in alignment}
    moderate, large = list(ALIGN_CASES)
    auto_m, reg_m = by[(moderate, "CNN + registration (auto)")], by[(moderate, "spectral registration (Near 2015, local)")]
    auto_l, reg_l = by[(large, "CNN + registration (auto)")], by[(large, "spectral registration (Near 2015, local)")]
    oracle_m, crlb_m = by[(moderate, "registration to the noise-free signal (oracle)")], \
        by[(moderate, "Cramer-Rao bound (RMS over transients, scan mean removed)")]
    q = pd.DataFrame(quantification)
    in_range = q[~q["case"].str.startswith("out of range")]
    per_snr = in_range.groupby("case")[["dl_error_pct", "supervised_error_pct", "lcm_error_pct",
                                        "crlb_implied_error_pct"]].median()
    coverage = in_range.groupby("case")[["dl_coverage_90", "supervised_coverage_90", "lcm_coverage_90"]].mean()
    high = f"SNR {max(config['snrs']):g}"
    cnn_det = next(r for r in detection if r["method"] == "CNN detector")
    return {
        "align_moderate_auto_hz_deg": [auto_m["shift_spread_hz"], auto_m["phase_spread_deg"]],
        "align_moderate_registration_hz_deg": [reg_m["shift_spread_hz"], reg_m["phase_spread_deg"]],
        "align_moderate_oracle_hz_deg": [oracle_m["shift_spread_hz"], oracle_m["phase_spread_deg"]],
        "align_moderate_crlb_hz_deg": [crlb_m["shift_spread_hz"], crlb_m["phase_spread_deg"]],
        "align_large_auto_hz_deg": [auto_l["shift_spread_hz"], auto_l["phase_spread_deg"]],
        "align_large_registration_hz_deg": [reg_l["shift_spread_hz"], reg_l["phase_spread_deg"]],
        "target_align_0.1hz_1deg_met": bool(auto_m["shift_spread_hz"] <= 0.1 and auto_m["phase_spread_deg"] <= 1.0),
        "median_error_pct_by_snr": per_snr.round(2).to_dict("index"),
        "target_dl_le_lcm_every_snr_met": bool((per_snr["dl_error_pct"] <= per_snr["lcm_error_pct"]).all()),
        "dl_over_crlb_at_high_snr": float(per_snr.loc[high, "dl_error_pct"] / per_snr.loc[high, "crlb_implied_error_pct"]),
        "lcm_over_crlb_at_high_snr": float(per_snr.loc[high, "lcm_error_pct"]
                                           / per_snr.loc[high, "crlb_implied_error_pct"]),
        "coverage_90_by_snr": coverage.round(3).to_dict("index"),
        "dl_coverage_90_in_range": float(in_range["dl_coverage_90"].mean()),
        "supervised_coverage_90_in_range": float(in_range["supervised_coverage_90"].mean()),
        "target_coverage_88_92_met": bool(0.88 <= in_range["dl_coverage_90"].mean() <= 0.92),
        "min_out_of_range_dl_slope": float(min(r["dl_slope"] for r in slopes)),
        "min_out_of_range_supervised_slope": float(min(r["supervised_slope"] for r in slopes)),
        "min_out_of_range_slope_by_case": {
            case: {m: min((round(r[f"{m}_slope"], 3), r["metabolite"], round(r[f"{m}_slope_se"], 3))
                          for r in slopes if r["case"] == case) for m in ("dl", "supervised", "lcm")}
            for case in dict.fromkeys(r["case"] for r in slopes)},
        "target_slope_0.9_met": bool(min(r["dl_slope"] for r in slopes) >= 0.9),
        "biased_toward_training_mean": {m: [f"{r['metabolite']} ({r['case'].split(', ')[-1]})" for r in slopes
                                            if r[f"{m}_biased"]] for m in ("dl", "supervised", "lcm")},
        "detector_recall_fpr": [cnn_det["recall"], cnn_det["false_positive_rate"]],
        "target_detection_met": bool(cnn_det["recall"] >= 0.95 and cnn_det["false_positive_rate"] <= 0.05),
        "align_plus_quantify_ms": speed["align_plus_quantify_ms"],
        "target_speed_10ms_met": bool(speed["align_plus_quantify_ms"] <= 10.0),
    }


def _table(rows: list[dict]) -> str:
    """Markdown table of dict rows (numbers to 3 significant digits; a key a row lacks is an empty cell)."""
    columns = list(dict.fromkeys(c for r in rows for c in r))

    def cell(value) -> str:
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value))
        if isinstance(value, (float, np.floating)):
            return f"{value:.3g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _markdown(path: Path, result: dict) -> None:
    s, d = result["summary"], result["dl_training"]
    lines = [f"# MRS benchmark ({result['scale']} scale, {result['machine']}, wall {result['wall_seconds']:.0f} s)", "",
             "Simulated from the shipped ISMRM 2016 basis (3 T, 4000 Hz, 2048 points). Settings: "
             f"`{json.dumps(result['settings'])}`.", "",
             f"## Alignment ({result['section_seconds']['alignment']:.0f} s)", "",
             "Residual spread (RMS across transients of estimate - truth, each scan's mean removed).", "",
             _table(result["alignment"]), "",
             f"## Quantification ({result['section_seconds']['quantification']:.0f} s; trained on "
             f"{d['train_spectra']} spectra ({d['calibration_spectra']} of them held out for the conformal "
             f"calibration, in mM with their water references): DL {d['dl_epochs_run']} epochs, {d['dl_train_seconds']:.0f} s, stopped: {d['dl_stopped']}; "
             f"supervised {d['supervised_epochs_run']} epochs, {d['supervised_train_seconds']:.0f} s, stopped: "
             f"{d['supervised_stopped']})", "",
             "Median absolute % error (water-scaled mM, every spectrum eddy-current corrected with its water "
             "reference); CRLB-implied = 0.674 x median(CRLB / truth). dl = the DL quantifier: CNN nuisance "
             "(shift, broadening, phases; trained label-free by variable projection) refined by batched "
             "Levenberg-Marquardt steps of the basis model under a prior centred on the network's estimate (its "
             "bias and spread against the refined fit on held-out training spectra: a MAP fit), NNLS amplitudes, "
             "conformal intervals around the CRLB; "
             "supervised = CNN regressing the amplitudes (MC dropout + conformal); lcm = linear-combination fit "
             "from scratch (+-1.645 CRLB intervals). dl_network_start_kept: share of spectra whose result is "
             "refined from the network's nuisance (the fixed start is refined too where that end point fits worse "
             "than the fixed start unrefined).", "",
             _table(result["quantification"]), "",
             "### DL vs LCM, paired", "",
             "Absolute relative errors of the same spectra and main metabolites (spectra x 7 pairs per case): "
             "median of the differences (DL - LCM, percentage points), share of pairs where the DL's is lower, "
             "Wilcoxon signed-rank p (two-sided).", "",
             _table(result["dl_training"]["paired"]), "",
             "### Out-of-range concentrations: bias toward the training mean (Rizzo et al. 2023)", "",
             "slope: regression slope of estimate on truth (target >= 0.9). bias test: slope of the error on the "
             "distance from the training mean (0 unbiased, -s for estimates pulled a share s toward the mean), "
             "one-sided t test of slope < -0.1, biased at p < 0.05.", "", _table(result["out_of_range"]), "",
             f"## Corrupted-transient detection ({result['section_seconds']['detection']:.0f} s)", "",
             _table(result["detection"]), "", "## Speed", "", "Milliseconds per call on one scan of 16 transients (2048 points): the best of 7 interleaved "
             "rounds of >= 0.2 s each (BLAS on one thread, torch threads as stated in the title).", "",
             _table([result["speed"]]), "",
             "## Issue targets", "",
             f"- alignment <= 0.1 Hz / 1 deg at moderate SNR (auto): {s['align_moderate_auto_hz_deg'][0]:.3f} Hz / "
             f"{s['align_moderate_auto_hz_deg'][1]:.2f} deg -> {'met' if s['target_align_0.1hz_1deg_met'] else 'NOT met'}; "
             f"registration {s['align_moderate_registration_hz_deg'][0]:.3f} Hz / {s['align_moderate_registration_hz_deg'][1]:.2f} deg; "
             f"limits at this SNR: registration to the noise-free signal {s['align_moderate_oracle_hz_deg'][0]:.3f} Hz, "
             f"Cramer-Rao bound {s['align_moderate_crlb_hz_deg'][0]:.3f} Hz, below which no unbiased estimator's "
             f"spread goes (auto at {s['align_moderate_auto_hz_deg'][0] / s['align_moderate_crlb_hz_deg'][0]:.2f}x it)",
             f"- large offsets: auto {s['align_large_auto_hz_deg'][0]:.3f} Hz / {s['align_large_auto_hz_deg'][1]:.2f} deg, "
             f"registration {s['align_large_registration_hz_deg'][0]:.3f} Hz / {s['align_large_registration_hz_deg'][1]:.2f} deg",
             f"- DL error <= LCM error at every SNR: {'met' if s['target_dl_le_lcm_every_snr_met'] else 'NOT met'} "
             f"({json.dumps(s['median_error_pct_by_snr'])}); paired DL - LCM Wilcoxon p by case: "
             + ", ".join(f"{r['case']} {r['wilcoxon_p']:.2f}" for r in result["dl_training"].get("paired", [])),
             f"- DL within 1.2x of the CRLB-implied error at high SNR: {s['dl_over_crlb_at_high_snr']:.2f}x -> "
             f"{'met' if s['dl_over_crlb_at_high_snr'] <= 1.2 else 'NOT met'} (LCM {s['lcm_over_crlb_at_high_snr']:.2f}x)",
             f"- 90 % interval coverage 88-92 %: {100 * s['dl_coverage_90_in_range']:.1f} % -> "
             f"{'met' if s['target_coverage_88_92_met'] else 'NOT met'} (per case: {json.dumps(s['coverage_90_by_snr'])}; "
             f"supervised {100 * s['supervised_coverage_90_in_range']:.1f} %)",
             f"- out-of-range slope >= 0.9: min {s['min_out_of_range_dl_slope']:.2f} -> "
             f"{'met' if s['target_slope_0.9_met'] else 'NOT met'} (supervised: min "
             f"{s['min_out_of_range_supervised_slope']:.2f}); lowest slope per case (slope, metabolite, its "
             f"standard error): {json.dumps(s['min_out_of_range_slope_by_case'])}; biased toward the "
             f"training mean (test above): {json.dumps(s['biased_toward_training_mean'])}",
             f"- detection >= 95 % recall at <= 5 % FPR: {100 * s['detector_recall_fpr'][0]:.1f} % / "
             f"{100 * s['detector_recall_fpr'][1]:.1f} % -> {'met' if s['target_detection_met'] else 'NOT met'}",
             f"- align + quantify <= 10 ms (CNN alignment of 16 transients without registration refinement, "
             f"+ DL quantifier with its refinement and CRLB): {s['align_plus_quantify_ms']:.1f} ms -> "
             f"{'met' if s['target_speed_10ms_met'] else 'NOT met'}; with the refinement (auto) add "
             f"{result['speed']['registration_refine_16_transients_ms']:.0f} ms; the LCM fit takes "
             f"{result['speed']['lcm_fit_ms']:.0f} ms per spectrum", ""]
    path.write_text("\n".join(lines))


def _denoising_markdown(path: Path, result: dict) -> None:
    columns = ["snr", "averages", "method", "rmse_vs_raw", "rmse_vs_full_average", "error_pct", "error_vs_raw",
               "better_than_raw", "paired_p", "signed_pct", "crlb_pct", "error_over_crlb",
               *[f"{n}_error_pct" for n in DENOISE_METABOLITES],
               "fit_lorentzian_fwhm_hz", "fit_gaussian_fwhm_hz", "scans", "seconds"]
    lines = [f"# MRS: denoising few-average spectra ({result['scale']} scale, {result['machine']}, wall "
             f"{result['wall_seconds']:.0f} s)", "",
             f"Simulated scans (ISMRM 2016 basis, 3 T), no corrupted transients, transients aligned with their true "
             f"offsets. Settings: `{json.dumps(result['settings'])}`; every row: {result['rows'][0]['scale']}.", "",
             "A few-average spectrum = the average of the first K transients of a scan. Denoisers (one per K, "
             "trained on the transients of the training scans, blocks of K transients per scan as replicates; "
             "real and imaginary parts of the 0-4.4 ppm spectrum as separate spectra): noise2noise = "
             "Savitzky-Golay + U-Net trained Noise2Noise (target: mean of the scan's other blocks); blindspot = "
             "the same trained Noise2Self on single blocks; savgol = noise2noise's smoother alone (window chosen "
             "by the replicate loss). none = the raw K-average; full average = all transients.", "",
             "rmse_vs_raw / rmse_vs_full_average: median over scans of the spectral RMSE (complex, 0.2-4.2 ppm, "
             "against the noise-free scan) divided by that of the raw K-average / of the full average. Quantification "
             "by the linear-combination fit (eddy-current corrected, water-scaled mM): error_pct = mean over "
             f"{', '.join(DENOISE_METABOLITES)} of the median absolute % error (per metabolite in the *_error_pct "
             "columns), error_vs_raw its ratio to the raw K-average's, better_than_raw the share of (scan, metabolite) "
             "pairs whose absolute error is below the raw K-average's, paired_p the Wilcoxon signed-rank p of those "
             "paired differences, signed_pct the mean median signed % error "
             "(bias), crlb_pct the mean median CRLB / truth %, error_over_crlb = error_pct / (0.674 crlb_pct) (1 "
             "when the CRLB describes the error; above 1: CRLBs too small), fit_*_fwhm_hz the median line "
             "broadening the fit adds to the basis. seconds: denoising + fit of the row's spectra.", "",
             _table([{c: r[c] for c in columns} for r in result["rows"]]), "", "## Training", "",
             _table(result["training"]), "", "## Summary", ""]
    lines.append("Quantification error of the denoised K-average / the raw one (paired Wilcoxon p; helps / hurts "
                 "at p < 0.05):")
    for case, summary in result["summary"].items():
        parts = [f"{method} x{v['error_vs_raw']:.2f} (p {v['paired_p']:.2g}"
                 + (", helps)" if v["helps"] else ", hurts)" if v["hurts"] else ")")
                 for method, v in summary.items() if method != "best_method"]
        lines.append(f"- {case}: {'; '.join(parts)}; lowest error: {summary['best_method']}")
    path.write_text("\n".join(lines + [""]))
