"""Denoising benchmark (Castorena & Oyen, SpectroscopyNet §3): simulated ChemCam-like LIBS with known clean spectra, the
downstream calibration the seed judges by, real replicate spectra, and inference speed.

For each noise scenario (the seed's assumptions holding, then broken by a drifting continuum and
by a multiplicative drifting response) every denoiser cleans the same spectra; we report RMSE to
the clean line signal, SNR gain, the removed mean vs the true noise mean, and a leave-one-target-out
linear calibration of the eight oxides on shot-averaged spectra, with and without intercept.

The replicate-trained denoiser (Noise2Noise) learns from the shots of one location of one target,
which are noisy copies of one spectrum (same local composition; the plasma and the noise change
from shot to shot). It trains with an epoch limit and early stopping only (`replicate_epochs`), no
wall-clock cap. Like every unsupervised row it is fitted on the spectra it cleans, without their
compositions; its validation groups are whole locations.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from speclearn.core.spectra import Spectra
from speclearn.denoise.classical import ClassicalDenoiser
from speclearn.denoise.networks import conv_flops_per_spectrum
from speclearn.denoise.replicates import ReplicateDenoiser
from speclearn.denoise.siamese import SEED_CONFIG, SpectroscopyNet
from speclearn.denoise.supervised import SupervisedDenoiser
from speclearn.metrics import rmse, snr_db
from speclearn.preprocessing import BandMask, average_by_group
from speclearn.io.atomic import markdown_table, write_result

SCALES: dict[str, dict[str, Any]] = {
    "quick": dict(n_targets=8, n_locations=2, shots=3, epochs=2, seed_config_epochs=1, max_seconds=30,
                  replicate_epochs=20, speed_batch=64, speed_repeats=1),
    "full": dict(n_targets=16, n_locations=3, shots=4, epochs=40, seed_config_epochs=1, max_seconds=240,
                 replicate_epochs=100, speed_batch=128, speed_repeats=3),
}
SCENARIOS: dict[str, dict[str, Any]] = {
    "stationary (dark + fixed continuum + shot noise)":
        dict(response=False, response_drift=0.0, continuum_follows_plasma=False),
    "drifting continuum (follows the plasma)": dict(response=False, response_drift=0.0),
    "multiplicative response + drift + drifting continuum": {},
}
SPEED_CHANNELS = 5485
PCA_COMPONENTS = 8
NOISE2NOISE = "noise2noise (SG + U-Net, shots of one location)"
NOISE2NOISE_ARPLS = "noise2noise, then arPLS baseline"


def masked_simulation(scale: dict[str, Any], knobs: dict[str, Any], seed: int):
    """A ChemCam-like simulation with the seed's bands masked: (spectra, clean, noise, groups, sim)."""
    from speclearn.simulate.libs import simulate_chemcam

    sim = simulate_chemcam(scale["n_targets"], scale["n_locations"], scale["shots"], seed=seed, **knobs)
    keep = BandMask(axis=sim.spectra.axis)._keep_mask(sim.spectra.axis)
    spectra = sim.spectra.with_intensity(sim.spectra.values()[:, keep], axis=sim.spectra.axis[keep])
    return spectra, sim.clean[:, keep], sim.noise[:, keep], sim.groups, sim


def denoising_metrics(noisy: np.ndarray, cleaned: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """RMSE to clean, SNR gain (dB) and how well the removed mean matches the true noise mean."""
    true_mean, removed_mean = (noisy - clean).mean(axis=0), (noisy - cleaned).mean(axis=0)
    return {"rmse_to_clean": float(rmse(cleaned, clean)), "raw_rmse_to_clean": float(rmse(noisy, clean)),
            "snr_gain_db": snr_db(clean, cleaned - clean) - snr_db(clean, noisy - clean),
            "noise_mean_rms": float(np.sqrt(np.mean(true_mean ** 2))),
            "removed_mean_error_rel": float(rmse(removed_mean, true_mean) / np.sqrt(np.mean(true_mean ** 2))),
            "removed_mean_over_true": float(removed_mean @ true_mean / (true_mean @ true_mean))}


def calibration(spectra: Spectra, representation: np.ndarray, compositions: pd.DataFrame, *,
                intercept: bool) -> tuple[dict[str, float], pd.DataFrame]:
    """Shot-average per target and location, then a ridge linear head per oxide, leave one target out.

    The ridge penalty is chosen inside each training fold (efficient leave-one-out, RidgeCV); inputs
    are divided by one global RMS so the same penalty grid suits every representation."""
    from sklearn.linear_model import RidgeCV

    averaged = average_by_group(spectra.with_intensity(representation), ["target", "location"])
    X = averaged.values() / np.sqrt(np.mean(averaged.values() ** 2))
    targets = averaged.meta["target"].astype(str).to_numpy()
    truth = compositions.loc[targets].to_numpy(dtype=float)
    predicted = np.zeros_like(truth)
    for target in np.unique(targets):
        held = targets == target
        for j in range(truth.shape[1]):
            head = RidgeCV(alphas=np.logspace(-4, 3, 8), fit_intercept=intercept).fit(X[~held], truth[~held, j])
            predicted[held, j] = head.predict(X[held])
    errors = {oxide: float(rmse(predicted[:, j], truth[:, j])) for j, oxide in enumerate(compositions.columns)}
    table = pd.DataFrame({"target": targets, **{f"{o}_true": truth[:, j] for j, o in enumerate(compositions.columns)},
                          **{f"{o}_pred": predicted[:, j] for j, o in enumerate(compositions.columns)}})
    return errors, table


def make_denoisers(scale: dict[str, Any], seed: int, *, replicate: bool) -> dict[str, Any]:
    network = dict(epochs=scale["epochs"], max_seconds=scale["max_seconds"], seed=seed, device="cpu")
    methods = {"classical (arPLS + Savitzky-Golay)": ClassicalDenoiser(seed=seed),
               f"PCA ({PCA_COMPONENTS} comp.)": ClassicalDenoiser(n_components=PCA_COMPONENTS, seed=seed),
               "supervised U-Net": SupervisedDenoiser(**network),
               "SpectroscopyNet": SpectroscopyNet(**network)}
    if replicate:
        methods["SpectroscopyNet (replicate target)"] = SpectroscopyNet(reconstruction="replicate", **network)
    methods[NOISE2NOISE] = ReplicateDenoiser(epochs=scale["replicate_epochs"], seed=seed, device="cpu")
    methods[NOISE2NOISE_ARPLS] = ClassicalDenoiser(window_length=0, seed=seed)  # on the noise2noise output
    return methods


def run_scenario(name: str, knobs: dict[str, Any], scale: dict[str, Any], seed: int, *, replicate: bool,
                 seed_config: bool) -> tuple[list[dict], dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    spectra, clean, noise, groups, sim = masked_simulation(scale, knobs, seed)
    train_spectra, train_clean, *_ = masked_simulation(scale, knobs, seed + 1000)  # supervised: other targets
    noisy = spectra.values()
    locations = (spectra.meta["target"].astype(str) + "_L" + spectra.meta["location"].astype(str)).to_numpy()
    shape = f"{spectra.n_spectra} spectra x {spectra.n_channels} channels"
    rows, tables, outputs = [], {}, {"raw": noisy, "clean": clean}
    methods = {"raw": None, **make_denoisers(scale, seed, replicate=replicate)}
    if seed_config:
        methods["SpectroscopyNet seed config (18x64)"] = SpectroscopyNet(
            **{**SEED_CONFIG, "epochs": scale["seed_config_epochs"], "batch_size": 16}, max_seconds=scale["max_seconds"],
            seed=seed, device="cpu")
    for method, estimator in methods.items():
        start = time.perf_counter()
        if estimator is None:
            cleaned = noisy
        elif isinstance(estimator, SupervisedDenoiser):
            cleaned = estimator.fit(train_spectra, clean=train_clean).transform(spectra).values()
        elif isinstance(estimator, ReplicateDenoiser):
            cleaned = estimator.fit(spectra, groups=locations).transform(spectra).values()
        elif method == NOISE2NOISE_ARPLS:
            smoothed = spectra.with_intensity(outputs[NOISE2NOISE])
            cleaned = estimator.fit(smoothed).transform(smoothed).values()
        else:
            cleaned = estimator.fit(spectra, groups=groups).transform(spectra).values()
        seconds = time.perf_counter() - start
        if method == NOISE2NOISE_ARPLS:  # the noise2noise fit and transform it starts from
            seconds += next(r["seconds"] for r in rows if r["method"] == NOISE2NOISE)
        history = getattr(methods[NOISE2NOISE] if method == NOISE2NOISE_ARPLS else estimator, "history_", {})
        row = {"scenario": name, "method": method, "data": shape, "seconds": round(seconds, 1),
               "epochs_run": len(history.get("train_loss", [])) or None, "stopped": history.get("stopped"),
               **denoising_metrics(noisy, cleaned, clean)}
        for intercept in (True, False):
            errors, table = calibration(spectra, cleaned, sim.compositions, intercept=intercept)
            row.update({f"rmse_{'icpt' if intercept else 'noicpt'}_{oxide}": e for oxide, e in errors.items()})
            tables[f"{method}|{intercept}"] = table
        rows.append(row)
        outputs[method] = cleaned
    return rows, tables, outputs


def speed(scale: dict[str, Any], seed: int) -> dict[str, Any]:
    """Batch inference throughput (signal channel only) on 2 threads, against a measured matmul peak."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        a @ b
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        peak = 5 * 2 * 2048 ** 3 / (time.perf_counter() - start) / 1e9
        result = {"matmul_peak_gflops": peak, "threads": 2, "channels": SPEED_CHANNELS, "configs": {}}
        batch = torch.randn(scale["speed_batch"], SPEED_CHANNELS)
        for label, params in (("seed (18 x 64)", {k: SEED_CONFIG[k] for k in ("depth", "width", "dilation", "downsample")}),
                              ("default", {})):
            estimator = SpectroscopyNet(**params, seed=seed)
            module = estimator._module().eval()
            flops = conv_flops_per_spectrum(module.signal_net, SPEED_CHANNELS)
            with torch.no_grad():
                module.signal(batch[:2])
                best = np.inf
                for _ in range(scale["speed_repeats"]):
                    start = time.perf_counter()
                    module.signal(batch)
                    best = min(best, time.perf_counter() - start)
            rate = len(batch) / best
            result["configs"][label] = {"params": {k: estimator.get_params()[k] for k in
                                                   ("depth", "width", "dilation", "downsample")},
                                        "gflop_per_spectrum": flops / 1e9, "spectra_per_s": rate,
                                        "gflops": rate * flops / 1e9, "fraction_of_peak": rate * flops / 1e9 / peak}
        return result
    finally:
        torch.set_num_threads(threads)


def real_data(out_dir: Path, scale: dict[str, Any], seed: int) -> dict[str, Any]:
    """chemotools' coffee FTIR spectra (3 origins x 20 replicates): qualitative + replicate consistency."""
    import matplotlib.pyplot as plt
    from chemotools.datasets import load_coffee

    X, labels = load_coffee()
    values = X.to_numpy(dtype=float)
    groups = labels.iloc[:, 0].astype(str).to_numpy()
    spectra = Spectra(values, np.arange(values.shape[1], dtype=float))
    methods = {"raw": None, "classical": ClassicalDenoiser(seed=seed),
               "SpectroscopyNet": SpectroscopyNet(epochs=scale["epochs"], max_seconds=scale["max_seconds"],
                                                  seed=seed, device="cpu")}
    consistency, outputs = {}, {}
    for name, estimator in methods.items():
        out = values if estimator is None else estimator.fit(spectra, groups=groups).transform(spectra).values()
        outputs[name] = out
        within = np.mean([out[groups == g].std(axis=0).mean() for g in np.unique(groups)])
        centres = np.stack([out[groups == g].mean(axis=0) for g in np.unique(groups)])
        between = centres.std(axis=0).mean()
        consistency[name] = {"within_group_sd": float(within), "between_group_sd": float(between),
                             "within_over_between": float(within / between)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for name, out in outputs.items():
        axes[0].plot(out[0], lw=0.8, label=name)
    axes[0].set(title="coffee FTIR spectrum 0 (chemotools): raw vs cleaned", xlabel="channel", ylabel="absorbance")
    axes[0].legend()
    names = list(consistency)
    axes[1].bar(names, [consistency[n]["within_over_between"] for n in names])
    axes[1].set(title="replicate consistency: within-origin SD / between-origin SD (lower = better)")
    fig.tight_layout()
    fig.savefig(out_dir / "denoising_real_coffee.png", dpi=110)
    plt.close(fig)
    return {"data": f"chemotools coffee: {values.shape[0]} spectra x {values.shape[1]} channels, 3 origins",
            "consistency": consistency}


def figures(out_dir: Path, tables: dict[str, pd.DataFrame], outputs: dict[str, np.ndarray], axis: np.ndarray,
            oxides: list[str], scenario: str) -> None:
    import matplotlib.pyplot as plt

    shown = [m for m in ("raw", "classical (arPLS + Savitzky-Golay)", "supervised U-Net", "SpectroscopyNet")
             if f"{m}|True" in tables]
    fig, axes = plt.subplots(len(shown), len(oxides), figsize=(2.2 * len(oxides), 2.3 * len(shown)), squeeze=False)
    for r, method in enumerate(shown):
        table = tables[f"{method}|True"]
        for c, oxide in enumerate(oxides):
            ax = axes[r, c]
            truth, pred = table[f"{oxide}_true"], table[f"{oxide}_pred"]
            ax.scatter(truth, pred, s=6, color="tab:orange")
            low, high = min(truth.min(), pred.min()), max(truth.max(), pred.max())
            ax.plot([low, high], [low, high], "k-", lw=0.8)
            ax.set_title(f"{oxide} RMSE {rmse(pred, truth):.2f}", fontsize=7)
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.set_ylabel(method[:22], fontsize=7)
    fig.suptitle(f"prediction vs truth (wt%), leave-one-target-out, with intercept; {scenario}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "denoising_calibration.png", dpi=100)
    plt.close(fig)

    window = (axis > 390) & (axis < 400)
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, values in outputs.items():
        if name in ("raw", "clean", "classical (arPLS + Savitzky-Golay)", "supervised U-Net", "SpectroscopyNet"):
            ax.plot(axis[window], values[0, window], lw=1.2 if name == "clean" else 0.8, label=name)
    ax.set(xlabel="wavelength (nm)", ylabel="counts", title=f"spectrum 0, 390-400 nm; {scenario}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "denoising_example.png", dpi=110)
    plt.close(fig)


def markdown(result: dict[str, Any]) -> str:
    rows = [r for _, r in pd.DataFrame(result["rows"]).iterrows()]
    oxides = result["oxides"]
    lines = [f"# Denoising benchmark (scale: {result['scale']}, seed {result['seed']}, "
             f"wall time {result['wall_seconds']:.0f} s, 2 shared CPU cores under contention)", "",
             "## Simulated ChemCam-like LIBS (seed bands masked)", "",
             *markdown_table(rows, {
                 "scenario": "{scenario}", "method": "{method}", "data": "{data}", "s": "{seconds}",
                 "epochs": lambda r: r.epochs_run or "", "RMSE to clean": "{rmse_to_clean:.1f}",
                 "SNR gain dB": "{snr_gain_db:.2f}", "removed mean err (rel)": "{removed_mean_error_rel:.3f}",
                 "removed/true mean": "{removed_mean_over_true:.3f}",
                 "mean LOTO RMSE (icpt)": lambda r: f"{np.mean([r[f'rmse_icpt_{o}'] for o in oxides]):.3f}",
                 "mean LOTO RMSE (no icpt)": lambda r: f"{np.mean([r[f'rmse_noicpt_{o}'] for o in oxides]):.3f}"})]
    for kind, label in (("icpt", "with intercept"), ("noicpt", "without intercept")):
        lines += ["", f"### Downstream RMSE (wt%) per oxide, {label}", "", *markdown_table(
            rows, {"scenario": "{scenario}", "method": "{method}", **{o: f"{{rmse_{kind}_{o}:.3f}}" for o in oxides}})]
    lines += ["", "## Targets", ""]
    lines += [f"- {t['target']}: **{'met' if t['met'] else 'NOT met'}** ({t['detail']})" for t in result["targets"]]
    speed_result = result["speed"]
    lines += ["", f"## Speed (batch inference, signal channel, {speed_result['channels']} channels, "
              f"{speed_result['threads']} threads; matmul peak {speed_result['matmul_peak_gflops']:.1f} GFLOP/s)", "",
              *markdown_table([{"config": k, **c} for k, c in speed_result["configs"].items()], {
                  "config": "{config}", "params": "{params}", "GFLOP/spectrum": "{gflop_per_spectrum:.3f}",
                  "spectra/s": "{spectra_per_s:.1f}", "GFLOP/s": "{gflops:.1f}",
                  "fraction of peak": "{fraction_of_peak:.2f}"})]
    real = result["real"]
    lines += ["", f"## Real spectra: {real['data']}", "", *markdown_table(
        [{"method": k, **c} for k, c in real["consistency"].items()], {
            "method": "{method}", "within SD": "{within_group_sd:.4g}", "between SD": "{between_group_sd:.4g}",
            "within/between": "{within_over_between:.3f}"})]
    return "\n".join(lines) + "\n"


def check_targets(rows: list[dict], oxides: list[str], speed_result: dict) -> list[dict]:
    frame = pd.DataFrame(rows)
    checks = []
    for scenario, part in frame.groupby("scenario", sort=False):
        by = part.set_index("method")
        for method in (NOISE2NOISE, NOISE2NOISE_ARPLS):
            if method not in by.index:
                continue
            for kind in ("icpt", "noicpt"):
                bases = by.loc[["raw", "classical (arPLS + Savitzky-Golay)"]]
                better = [o for o in oxides if by.loc[method, f"rmse_{kind}_{o}"] < bases[f"rmse_{kind}_{o}"].min()]
                checks.append({"target": f"{method}: downstream RMSE below raw and classical for >= 6 of 8 oxides "
                                         f"({kind}) [{scenario}]", "met": len(better) >= 6,
                               "detail": f"{len(better)} of {len(oxides)}: {', '.join(better) or 'none'}"})
        if "SpectroscopyNet" not in by.index:
            continue
        net = by.loc["SpectroscopyNet"]
        for kind in ("icpt", "noicpt"):
            for base in ("raw", "classical (arPLS + Savitzky-Golay)"):
                worse = [o for o in oxides if net[f"rmse_{kind}_{o}"] >= by.loc[base, f"rmse_{kind}_{o}"]]
                checks.append({"target": f"SpectroscopyNet downstream RMSE < {base} for every oxide "
                                         f"({kind}) [{scenario}]", "met": not worse,
                               "detail": f"not lower for {', '.join(worse)}" if worse else "all 8 lower"})
        ratio = net["rmse_to_clean"] / by.loc["supervised U-Net", "rmse_to_clean"]
        checks.append({"target": f"SpectroscopyNet RMSE-to-clean within 20 % of supervised [{scenario}]",
                       "met": bool(ratio <= 1.2), "detail": f"ratio {ratio:.2f}"})
        if "SpectroscopyNet seed config (18x64)" in by.index:
            ratio = net["rmse_to_clean"] / by.loc["SpectroscopyNet seed config (18x64)", "rmse_to_clean"]
            checks.append({"target": f"default RMSE-to-clean within 5 % of the seed configuration's [{scenario}]",
                           "met": bool(ratio <= 1.05), "detail": f"ratio {ratio:.2f} (same wall-time budget)"})
    rate = speed_result["configs"]["default"]["spectra_per_s"]
    checks.append({"target": "default network >= 50 spectra/s (5485 channels, 2 threads)", "met": bool(rate >= 50),
                   "detail": f"{rate:.0f} spectra/s"})
    return checks


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0) -> dict:
    """Run every part at `scale` and write denoising.json, denoising.md and PNG figures into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = SCALES[scale]
    start = time.perf_counter()
    torch.set_num_threads(1)
    rows, figure_data = [], None
    from speclearn.simulate.libs import OXIDES
    for i, (name, knobs) in enumerate(SCENARIOS.items()):
        scenario_rows, tables, outputs = run_scenario(name, knobs, settings, seed, replicate=i == len(SCENARIOS) - 1,
                                                      seed_config=i == 0)
        rows += scenario_rows
        if i == 0:
            axis = masked_simulation({**settings, "n_targets": 1, "n_locations": 1, "shots": 1}, knobs, seed)[0].axis
            figure_data = (tables, outputs, axis, name)
    tables, outputs, axis, name = figure_data
    figures(out_dir, tables, outputs, axis, list(OXIDES), name)
    speed_result = speed(settings, seed)
    real = real_data(out_dir, settings, seed)
    result = {"scale": scale, "settings": settings, "seed": seed, "oxides": list(OXIDES), "rows": rows,
              "speed": speed_result, "real": real, "wall_seconds": time.perf_counter() - start}
    result["targets"] = check_targets(rows, list(OXIDES), speed_result)
    write_result(out_dir / "denoising.json", result)
    write_result(out_dir / "denoising.md", markdown(result))
    return result
