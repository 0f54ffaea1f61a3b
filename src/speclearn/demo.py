"""`speclearn demo`: the main job on built-in data, ending in an HTML report with PNG figures.

Each section is one function taking (out_dir, seed) and returning a report `Section`; seed systems
append theirs to `SECTIONS`.
"""
from __future__ import annotations

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
from speclearn.report import Report, Section, save_figure  # noqa: E402

NIR_PREPROCESSING = [{"savgol": {"window_length": 15, "polyorder": 2, "deriv": 1}}, {"normalize": {"method": "snv"}}]


def load_fermentation() -> tuple[Spectra, pd.Series]:
    """chemotools' real NIR fermentation spectra with HPLC-measured glucose (21 samples)."""
    from chemotools.datasets import load_fermentation_train

    X, y = load_fermentation_train()
    axis = X.columns.to_numpy(dtype=float)
    order = np.argsort(axis)
    ids = pd.Index([f"ferm{i:02d}" for i in range(len(X))], name="id")
    spectra = Spectra(X.to_numpy(dtype=float)[:, order], axis[order], axis_kind="wavenumber",
                      meta=pd.DataFrame(index=ids), source="chemotools fermentation")
    return spectra, pd.Series(y["glucose"].to_numpy(float), index=ids)


def nir_pls_section(out: Path, seed: int) -> Section:
    spectra, glucose = load_fermentation()
    processed, _ = preprocess(spectra, NIR_PREPROCESSING)  # per-spectrum steps only: no leakage across folds
    search = GridSearchCV(PLSRegression(), {"n_components": list(range(1, 7))},
                          cv=KFold(5, shuffle=True, random_state=seed), scoring="neg_root_mean_squared_error")
    predicted = cross_val_predict(search, processed.values(), glucose.to_numpy(), cv=LeaveOneOut()).ravel()
    search.fit(processed.values(), glucose.to_numpy())
    rmse = float(np.sqrt(np.mean((predicted - glucose.to_numpy()) ** 2)))
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(spectra.axis, spectra.values().T, lw=0.5)
    ax[0].set(xlabel=f"wavenumber ({spectra.axis_unit})", ylabel="absorbance", title="raw spectra")
    lim = [min(glucose.min(), predicted.min()), max(glucose.max(), predicted.max())]
    ax[1].plot(lim, lim, "k--", lw=1, label="1:1")
    ax[1].scatter(glucose, predicted, s=12)
    ax[1].set(xlabel="measured glucose (g/L)", ylabel="predicted glucose (g/L)", title=f"PLS, LOO RMSE {rmse:.2f} g/L")
    ax[1].legend()
    save_figure(fig, out / "nir_pls.png")
    table = pd.DataFrame({"spectra": [spectra.n_spectra], "channels": [spectra.n_channels],
                          "PLS components (5-fold CV, all data)": [search.best_params_["n_components"]],
                          "leave-one-out RMSE (g/L)": [rmse],
                          "glucose range (g/L)": [f"{glucose.min():.1f}..{glucose.max():.1f}"]})
    return Section("Real NIR data: PLS quantification of glucose",
                   "Savitzky-Golay first derivative + SNV (per spectrum), then PLS whose number of components "
                   "is chosen by 5-fold cross-validation inside each leave-one-out fold (nested), so every "
                   "prediction comes from a model that never saw that sample.",
                   table=table, figures=["nir_pls.png"])


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
    table = pd.DataFrame(rows).T
    tests = result["paired_t_tests_vs_default"]
    text = (f"{sizes['train'] + sizes['val']} training spectra x 10,000 channels (15 analytes, In internal standard), "
            f"{sizes['test']} test spectra from a wider concentration range; CAEM-MT trained at most "
            f"{sizes['seconds']} s, Gaussian deconvolution calibrated on {sizes['gd_train']} spectra. Relative errors "
            f"over the {result['n_items_above_loq']} test results above the WNNLS LOQ. Paired t-test p-values of "
            f"{METHOD_LABELS[result['default']]} vs: "
            + ", ".join(f"{m} {t['p']:.2g}" for m, t in tests.items())
            + ". The full-scale comparison is benchmarks/results/icpms_quantification.md.")
    return Section("Simulated ICP-MS: CAEM-MT vs classical deconvolution and quantification", text, table=table,
                   figures=["icpms_demo_pred_vs_true.png", "icpms_demo_overlap.png"])


def edx_unmixing_section(out: Path, seed: int) -> Section:
    """PSNMF against plain KL NMF on a small, low-dose simulated EDX spectrum image."""
    from speclearn.simulate.edx import simulate_edx
    from speclearn.unmix import NMF, PSNMF
    from speclearn.unmix.evaluation import score_unmixing
    from speclearn.unmix.plots import plot_maps

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
    plot_maps(maps, out / "edx_unmixing_maps.png")
    return Section(f"Simulated EDX spectrum image: PSNMF vs NMF at {dose:g} counts per pixel",
                   f"48 x 48 pixels x 512 channels, {k} phases with overlapping X-ray lines, Poisson noise. "
                   "Components are matched to the true phases (Hungarian algorithm); abundances are fractions "
                   "per pixel. The dose sweep is benchmarks/results/unmixing.md.",
                   table=pd.DataFrame(rows).T, figures=["edx_unmixing_maps.png"])


SECTIONS: list[Callable[[Path, int], Section]] = [nir_pls_section, icpms_quantification_section, edx_unmixing_section]


def run_demo(out: Path, seed: int = 0) -> Path:
    """Run every demo section and write `report.html` (and PNGs) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    report = Report("speclearn demo")
    for section in SECTIONS:
        report.add(section(out, seed))
    return report.write(out / "report.html")
