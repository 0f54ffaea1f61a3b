"""`speclearn demo`: the main job on built-in data, ending in a self-contained HTML report.

Each section is one function taking (out_dir, seed) and returning a report `Section` whose verdict
says in words what won and by how much, and whose every number has a baseline beside it; seed
systems append theirs to `SECTIONS`. Progress goes to stderr, one line per section.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.cross_decomposition import PLSRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, LeaveOneOut, cross_val_predict  # noqa: E402

from speclearn.core.spectra import Spectra  # noqa: E402
from speclearn.preprocessing import preprocess  # noqa: E402
from speclearn.report import Report, Section, plot_maps, robust_limits, save_figure, verdict  # noqa: E402

NIR_PREPROCESSING = [{"savgol": {"window_length": 15, "polyorder": 2, "deriv": 1}}, {"normalize": {"method": "snv"}}]


FERMENTATION_LABEL = ("chemotools fermentation set: mid-infrared (MIR) spectra, 428-1833 cm-1, of synthetic "
                      "samples measured off-line to mimic lignocellulose ethanol fermentations (so its package "
                      "describes it), glucose measured by HPLC")


def load_fermentation() -> tuple[Spectra, pd.Series]:
    """chemotools' fermentation training set: 21 mid-IR spectra of synthetic samples measured off-line,
    with HPLC glucose (see `FERMENTATION_LABEL`)."""
    from chemotools.datasets import load_fermentation_train

    X, y = load_fermentation_train()
    axis = X.columns.to_numpy(dtype=float)
    order = np.argsort(axis)
    ids = pd.Index([f"ferm{i:02d}" for i in range(len(X))], name="id")
    spectra = Spectra(X.to_numpy(dtype=float)[:, order], axis[order], axis_kind="wavenumber",
                      meta=pd.DataFrame(index=ids), source="chemotools fermentation")
    return spectra, pd.Series(y["glucose"].to_numpy(float), index=ids)


def nir_pls_section(out: Path, seed: int) -> Section:
    """Real mid-IR spectra: PLS quantification of glucose against the mean-predictor baseline."""
    spectra, glucose = load_fermentation()
    processed, _ = preprocess(spectra, NIR_PREPROCESSING)  # per-spectrum steps only: no leakage across folds
    search = GridSearchCV(PLSRegression(), {"n_components": list(range(1, 7))},
                          cv=KFold(5, shuffle=True, random_state=seed), scoring="neg_root_mean_squared_error")
    truth = glucose.to_numpy()
    predicted = cross_val_predict(search, processed.values(), truth, cv=LeaveOneOut()).ravel()
    search.fit(processed.values(), truth)
    rmse = float(np.sqrt(np.mean((predicted - truth) ** 2)))
    # baseline: predict each left-out sample by the mean of the others (what "no model" achieves)
    n = len(truth)
    mean_predicted = (truth.sum() - truth) / (n - 1)
    baseline = float(np.sqrt(np.mean((mean_predicted - truth) ** 2)))
    values = spectra.values()
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(spectra.axis, values.T, lw=0.5)
    low, high = robust_limits(values, 1.0, 99.5)
    ax[0].set_ylim(low, high)
    clipped = int(((values < low) | (values > high)).sum())
    ax[0].set(xlabel=f"wavenumber ({spectra.axis_unit})", ylabel="absorbance",
              title="raw mid-IR spectra" + (f" ({clipped} of {values.size} points off-scale)" if clipped else ""))
    lim = [min(truth.min(), predicted.min()), max(truth.max(), predicted.max())]
    ax[1].plot(lim, lim, "k--", lw=1, label="1:1")
    ax[1].scatter(truth, predicted, s=14, label=f"PLS (RMSE {rmse:.2f} g/L)")
    ax[1].scatter(truth, mean_predicted, s=14, marker="x", color="grey",
                  label=f"mean of the others (RMSE {baseline:.2f} g/L)")
    ax[1].set(xlabel="measured glucose (g/L, HPLC)", ylabel="predicted glucose (g/L)",
              title="leave-one-out predictions")
    ax[1].legend(fontsize=8)
    save_figure(fig, out / "nir_pls.png")
    table = pd.DataFrame({"leave-one-out RMSE (g/L)": [rmse, baseline],
                          "RMSE / glucose std": [rmse / truth.std(), baseline / truth.std()],
                          "PLS components (5-fold CV, all data)": [search.best_params_["n_components"], None]},
                         index=pd.Index(["PLS (SG derivative + SNV)", "baseline: mean of the other samples"],
                                        name="model"))
    return Section("Real mid-IR data (chemotools fermentation set): PLS quantification of glucose",
                   f"Data: {FERMENTATION_LABEL}; {spectra.n_spectra} spectra x {spectra.n_channels} channels, "
                   f"glucose {truth.min():.1f}..{truth.max():.1f} g/L (std {truth.std():.1f} g/L). "
                   "Savitzky-Golay first derivative + SNV (per spectrum), then PLS whose number of components "
                   "is chosen by 5-fold cross-validation inside each leave-one-out fold (nested), so every "
                   "prediction comes from a model that never saw that sample.",
                   table=table, figures=["nir_pls.png"],
                   notes=[f"The raw-spectra panel is scaled to the 1st-99.5th percentiles of the absorbances: the "
                          f"values range from {values.min():.4g} to {values.max():.4g}, the extremes in the noisy "
                          "region below 800 cm-1."],
                   verdict=verdict("PLS", rmse, "the mean predictor", baseline, "leave-one-out RMSE", unit="g/L"))


#: Small enough for a few minutes on two cores.
ICPMS_DEMO_SIZES = {"train": 96, "val": 24, "test": 40, "blanks": 6, "gd_train": 30, "seconds": 60}


def icpms_quantification_section(out: Path, seed: int) -> Section:
    """Simulated ICP-MS: CAEM-MT against the five baselines and the noise floor, trained briefly."""
    from speclearn.quantify.benchmark import METHOD_LABELS, run_setting
    from speclearn.simulate.icpms import ICPMSConfig

    sizes = ICPMS_DEMO_SIZES
    methods = ["caemmt", "wnnls", "gd", "bss", "rf", "pls"]
    result = run_setting("demo", ICPMSConfig(), sizes, seed, out, methods)
    rows = {r["label"]: {"mean rel. error (%)": 100 * r["mean_relative_error"],
                         "median rel. error (%)": 100 * r["median_relative_error"],
                         "peak-centre error (Da)": r["peak_centre_error_da"], "PNR (dB)": r["pnr_db"],
                         "ms / spectrum": r["ms_per_spectrum"], "training (s)": r["training_seconds"]}
            for r in result["results"].values()}
    table = pd.DataFrame(rows).T.rename_axis("method")
    table = table.loc[:, table.notna().any()]
    scored = {m: r for m, r in result["results"].items() if m != "noise floor"}
    best = min(scored, key=lambda m: scored[m]["mean_relative_error"])
    caem = scored.get("caemmt")
    if caem is not None and best != "caemmt":
        said = verdict(scored[best]["label"], 100 * scored[best]["mean_relative_error"], caem["label"],
                       100 * caem["mean_relative_error"], "mean relative error", unit="%")
    else:
        runner_up = min((m for m in scored if m != best), key=lambda m: scored[m]["mean_relative_error"])
        said = verdict(scored[best]["label"], 100 * scored[best]["mean_relative_error"], scored[runner_up]["label"],
                       100 * scored[runner_up]["mean_relative_error"], "mean relative error", unit="%")
    floor = result["results"].get("noise floor")
    if floor is not None:
        said += f"; the noise floor (the best any method can do on these counts) is {100 * floor['mean_relative_error']:.3g} %"
    tests = result["paired_t_tests_vs_default"]
    text = (f"{sizes['train'] + sizes['val']} training spectra x 10,000 channels (15 analytes, In internal standard), "
            f"{sizes['test']} test spectra from a wider concentration range; CAEM-MT trained at most "
            f"{sizes['seconds']} s, Gaussian deconvolution calibrated on {sizes['gd_train']} spectra. Relative errors "
            f"over the {result['n_items_above_loq']} test results above the WNNLS LOQ. Paired t-test p-values of "
            f"{METHOD_LABELS[result['default']]} vs: "
            + ", ".join(f"{m} {t['p']:.2g}" for m, t in tests.items())
            + ". The full-scale comparison is benchmarks/results/icpms_quantification.md.")
    return Section("Simulated ICP-MS: CAEM-MT vs classical deconvolution and quantification", text, table=table,
                   figures=["icpms_demo_pred_vs_true.png", "icpms_demo_overlap.png"], verdict=said + ".")


def edx_unmixing_section(out: Path, seed: int) -> Section:
    """PSNMF against plain KL NMF on a small, low-dose simulated EDX spectrum image."""
    from speclearn.simulate.edx import simulate_edx
    from speclearn.unmix import NMF, PSNMF
    from speclearn.unmix.evaluation import score_unmixing

    dose, k = 50.0, 4
    simulation = simulate_edx(48, 48, 512, dose=dose, seed=seed)
    methods = {"PSNMF (bin 4)": PSNMF(k, bin_factor=4, random_state=seed),
               "NMF (KL)": NMF(k, loss="kullback-leibler", random_state=seed)}
    rows, maps = {}, {"truth": simulation.abundances}
    for name, method in methods.items():
        method.fit(simulation.spectra)
        score = score_unmixing(simulation.phase_spectra, simulation.abundances, method.components_,
                               method.abundances_)
        rows[name] = {"spectral angle (deg)": score["spectral_angle_deg"],
                      "abundance RMSE": score["abundance_rmse"], "abundance correlation": score["abundance_correlation"]}
        maps[name] = method.abundances_[score["order"]]
    plot_maps(maps, out / "edx_unmixing_maps.png", columns=[f"phase {i + 1}" for i in range(k)],
              label="fraction of counts", vmin=0.0, vmax=1.0)
    (psnmf, a), (nmf, b) = ((name, rows[name]) for name in methods)
    said = "; ".join([verdict(psnmf, a["abundance RMSE"], nmf, b["abundance RMSE"], "abundance RMSE"),
                      verdict(psnmf, a["spectral angle (deg)"], nmf, b["spectral angle (deg)"],
                              "spectral angle", unit="deg")])
    return Section(f"Simulated EDX spectrum image: PSNMF vs NMF at {dose:g} counts per pixel",
                   f"48 x 48 pixels x 512 channels, {k} phases with overlapping X-ray lines, Poisson noise. "
                   "Components are matched to the true phases (Hungarian algorithm); abundances are fractions "
                   "of the counts per pixel (0..1, the colour bars). Plain KL NMF of every pixel is the baseline. "
                   "The dose sweep is benchmarks/results/unmixing.md.",
                   table=pd.DataFrame(rows).T.rename_axis("method"), figures=["edx_unmixing_maps.png"],
                   verdict=said + ".")


def mrs_section(out: Path, seed: int) -> Section:
    """MRS: CNN + registration vs registration alone on large offsets, then detection and an LCM fit."""
    from speclearn.mrs.align_cnn import CNNAligner
    from speclearn.mrs.artifacts import TransientDetector
    from speclearn.mrs.basis import MAIN, combine, load_basis
    from speclearn.mrs.cli import load_shipped
    from speclearn.mrs.data import shift_phase
    from speclearn.mrs.evaluation import median_abs_percent_error, residual_spread
    from speclearn.mrs.lcm import LinearCombinationFit
    from speclearn.mrs.preprocess import eddy_current_correction, transient_outlier_scores
    from speclearn.mrs.registration import AUTO_SEARCH_HZ, SpectralRegistration
    from speclearn.mrs.simulate import MRSSimConfig, simulate_mrs

    basis = load_basis()
    aligner, detector = load_shipped("aligner", CNNAligner), load_shipped("detector", TransientDetector)
    sim = simulate_mrs(4, seed=seed, basis=basis, config=MRSSimConfig(
        transients=16, snr=(40.0, 40.0), drift_hz=15.0, drift_phase_deg=90.0, corrupted_fraction=0.1))
    data, truth = sim.transients, sim.truth
    good = ~truth["corrupted"].to_numpy(bool)
    registration = SpectralRegistration().estimate(data)
    auto = SpectralRegistration(search_hz=AUTO_SEARCH_HZ).estimate(
        data, **dict(zip(("initial_hz", "initial_deg"), aligner.estimate(data))))
    rows = {}
    for name, (shift, phase) in (("spectral registration", registration), ("CNN + registration", auto)):
        rows[name] = {"shift spread (Hz)": residual_spread(shift[good], truth["shift_hz"][good],
                                                          truth["scan"][good]),
                      "phase spread (deg)": residual_spread(phase[good], truth["phase_deg"][good],
                                                            truth["scan"][good], circular=True)}
    aligned = data.with_fid(shift_phase(data.fid, data.dwell_time_s, -auto[0], -auto[1]))
    flags = {"CNN detector": detector.predict(aligned), "robust z > 3": transient_outlier_scores(aligned) > 3.0}
    for name, flagged in flags.items():
        rows[name] = {"recall (%)": 100 * flagged[~good].mean(), "false positives (%)": 100 * flagged[good].mean()}
    true_conc = combine({k: sim.concentrations[k].to_numpy() for k in sim.concentrations})
    averages = {"LCM on CNN-aligned, CNN-screened average": aligned.average(~flags["CNN detector"]),
                "LCM on the oracle average": sim.spectra}
    for name, average in averages.items():
        conc = LinearCombinationFit().fit(eddy_current_correction(average, sim.water), basis).concentrations(sim.water)[0]
        rows[name] = {"median error (%)": float(np.median([median_abs_percent_error(true_conc[m], conc[m])
                                                            for m in MAIN])),
                      "median CRLB (%)": float(np.median([100 * np.median(conc[f"{m}_sd"] / true_conc[m])
                                                          for m in MAIN]))}
    table = pd.DataFrame(rows).T.rename_axis("method")
    reg, cnn = rows["spectral registration"], rows["CNN + registration"]
    said = "; ".join([
        verdict("CNN + registration", cnn["shift spread (Hz)"], "spectral registration", reg["shift spread (Hz)"],
                "residual frequency spread", unit="Hz"),
        f"the CNN detector finds {rows['CNN detector']['recall (%)']:.0f} % of the corrupted transients at "
        f"{rows['CNN detector']['false positives (%)']:.0f} % false positives (robust z: "
        f"{rows['robust z > 3']['recall (%)']:.0f} % / {rows['robust z > 3']['false positives (%)']:.0f} %)",
        verdict(*list(averages)[:1], rows[list(averages)[0]]["median error (%)"], list(averages)[1],
                rows[list(averages)[1]]["median error (%)"], "median concentration error", unit="%")])
    return Section("Simulated MRS: frequency/phase alignment, bad-transient detection and LCM quantification",
                   f"{sim.spectra.n} scans x 16 transients from the shipped ISMRM 2016 basis (3 T, 2048 points), "
                   "SNR 40, frequency drift sd 15 Hz and phase sd 90 deg per transient (beyond local spectral "
                   "registration's reach), 10 % corrupted (motion, ghosts). Shipped CNN aligner and detector; the "
                   "linear-combination fit (eddy-current corrected with the water reference, mM) on the average of "
                   "the kept transients beside the same fit on the oracle average (true offsets undone, corrupted "
                   f"left out). Errors and CRLBs: median over {', '.join(MAIN)}. The DL quantifier and the full "
                   "comparison are in benchmarks/results/mrs.md.",
                   table=table, verdict=said + ".")


SECTIONS: list[Callable[[Path, int], Section]] = [nir_pls_section, icpms_quantification_section, edx_unmixing_section,
                                                  mrs_section]


def run_demo(out: Path, seed: int = 0, *, progress: bool = True) -> Path:
    """Run every demo section and write the self-contained `report.html` (PNGs beside it) into `out`;
    `progress` prints one line per section to stderr."""
    out.mkdir(parents=True, exist_ok=True)
    report = Report("speclearn demo", intro="Each section compares a method against a baseline on the same "
                    "data; the verdicts below say which won and by how much.")
    start = time.perf_counter()
    for i, section in enumerate(SECTIONS, 1):
        label = (section.__doc__ or section.__name__).strip().splitlines()[0].rstrip(".")
        if progress:
            print(f"[{i}/{len(SECTIONS)}] {label} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        result = section(out, seed)
        report.add(result)
        if progress:
            print(f"[{i}/{len(SECTIONS)}] done in {time.perf_counter() - began:.0f} s"
                  + (f": {result.verdict}" if result.verdict else ""), file=sys.stderr, flush=True)
    path = report.write(out / "report.html")
    if progress:
        print(f"demo finished in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return path
