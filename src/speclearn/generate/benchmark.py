"""Generative-augmentation benchmark: does a cVAE trained on the training spectra help a PLS quantifier?

Data: ChemCam-like LIBS from `speclearn.simulate.libs.simulate_chemcam` (oxide wt% targets), one
location and several shots per target, binned by 8 channels (6144 -> 768, to keep the cVAE cheap on
CPU) and normalised to total emission. Test spectra come from targets never seen in training.
Per repeat: a scarce training set (random spectra from the training targets) and the plentiful
set (all training spectra); a cVAE is fitted on exactly that training set and generates spectra at
new compositions (random convex mixtures of two training compositions); PLS (components chosen by
5-fold CV on the real training spectra, the same for both arms) is trained on real only and on real
+ generated, and scored on the same held-out test set (RMSE per oxide, averaged).
Realism: generated spectra at the test compositions vs the real test spectra, by an MMD
permutation test and a classifier two-sample test, next to the same tests for real training vs
real test spectra (different targets, same population) as the reference.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold

from speclearn.core.spectra import Spectra
from speclearn.generate.cvae import ConditionalVAE
from speclearn.metrics import classifier_two_sample_test, mean_confidence_interval, mmd_permutation_test, rmse

SCALES = {"quick": {"targets": 80, "test_targets": 25, "shots": 4, "repeats": 3, "epochs": 300},
          "full": {"targets": 120, "test_targets": 40, "shots": 5, "repeats": 5, "epochs": 400}}
SCARCE = 50
GENERATED_PER_REAL = (1, 10)
BIN = 8
NAME = "augmentation"


def libs_dataset(n_targets: int, shots: int, seed: int) -> tuple[Spectra, pd.DataFrame, np.ndarray]:
    """Binned, total-normalised simulated LIBS spectra, their oxide wt% and target (group) names."""
    from speclearn.simulate.libs import simulate_chemcam

    sim = simulate_chemcam(n_targets=n_targets, n_locations=1, shots_per_location=shots, seed=seed)
    raw = sim.spectra.values()
    usable = raw.shape[1] // BIN * BIN
    binned = raw[:, :usable].reshape(len(raw), -1, BIN).mean(axis=2)
    binned = binned / binned.sum(axis=1, keepdims=True) * binned.shape[1]
    axis = sim.spectra.axis[:usable].reshape(-1, BIN).mean(axis=1)
    spectra = Spectra(binned, axis, axis_kind="wavelength", axis_unit="nm", meta=pd.DataFrame(index=sim.spectra.meta.index))
    return spectra, sim.targets, sim.groups.to_numpy()


def pls_components(X: np.ndarray, Y: np.ndarray, seed: int, max_components: int = 30) -> int:
    """Number of PLS components with the lowest 5-fold CV RMSE."""
    limit = min(max_components, len(X) - len(X) // 5 - 1)
    errors = np.zeros(limit)
    for train, test in KFold(5, shuffle=True, random_state=seed).split(X):
        for k in range(1, limit + 1):
            errors[k - 1] += np.sum((PLSRegression(k).fit(X[train], Y[train]).predict(X[test]) - Y[test]) ** 2)
    return int(np.argmin(errors)) + 1


def mixture_targets(targets: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` random convex mixtures of two training compositions (the compositions asked of the cVAE)."""
    a, b = rng.integers(0, len(targets), n), rng.integers(0, len(targets), n)
    w = rng.uniform(0, 1, (n, 1))
    values = w * targets.to_numpy()[a] + (1 - w) * targets.to_numpy()[b]
    return pd.DataFrame(values, columns=targets.columns, index=pd.Index([f"mix{i}" for i in range(n)], name="id"))


def _arm(spectra: Spectra, targets: pd.DataFrame, train_ids: list[str], test: tuple[np.ndarray, np.ndarray],
         config: dict, seed: int) -> tuple[list[dict], ConditionalVAE, PLSRegression]:
    """RMSE of PLS on real only and on real + generated (each ratio in GENERATED_PER_REAL)."""
    X, Y = spectra.select(train_ids).values(), targets.loc[train_ids].to_numpy()
    k = pls_components(X, Y, seed)
    start = time.perf_counter()
    vae = ConditionalVAE(epochs=config["epochs"], device="cpu", seed=seed).fit(spectra.select(train_ids),
                                                                           targets.loc[train_ids])
    vae_seconds = time.perf_counter() - start
    real_only = PLSRegression(k).fit(X, Y)
    rows = [{"generated": 0, "pls_components": k,
             "rmse": float(np.mean(rmse(real_only.predict(test[0]), test[1], axis=0)))}]
    rng = np.random.default_rng(seed)
    for ratio in GENERATED_PER_REAL:
        wanted = mixture_targets(targets.loc[train_ids], ratio * len(train_ids), rng)
        generated, conditions = vae.generate(wanted, seed=seed + ratio)
        Xa, Ya = np.vstack([X, generated.values()]), np.vstack([Y, conditions.to_numpy()])
        rows.append({"generated": len(wanted), "pls_components": k,
                     "rmse": float(np.mean(rmse(PLSRegression(k).fit(Xa, Ya).predict(test[0]), test[1], axis=0)))})
    for row in rows:
        row.update(real=len(train_ids), cvae_seconds=vae_seconds, cvae_epochs_run=len(vae.history_.train_loss))
    return rows, vae, real_only


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0) -> dict:
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = SCALES[scale]
    start = time.perf_counter()
    spectra, targets, groups = libs_dataset(config["targets"], config["shots"], seed)
    names = np.unique(groups)
    test_names = np.random.default_rng(seed).choice(names, config["test_targets"], replace=False)
    is_test = np.isin(groups, test_names)
    test_ids = [i for i, t in zip(spectra.ids, is_test) if t]
    pool_ids = [i for i, t in zip(spectra.ids, is_test) if not t]
    test = (spectra.select(test_ids).values(), targets.loc[test_ids].to_numpy())

    rows = []
    for repeat in range(config["repeats"]):
        scarce_ids = list(np.random.default_rng(seed + 100 + repeat).choice(pool_ids, SCARCE, replace=False))
        arm, _, _ = _arm(spectra, targets, scarce_ids, test, config, seed + repeat)
        rows += [{"setting": "scarce", "repeat": repeat, **r} for r in arm]
    arm, plentiful_vae, plentiful_pls = _arm(spectra, targets, pool_ids, test, config, seed)
    rows += [{"setting": "plentiful", "repeat": 0, **r} for r in arm]

    generated_test, _ = plentiful_vae.generate(targets.loc[test_ids], seed=seed + 7)
    real_test = test[0]
    reference = spectra.select(list(np.random.default_rng(seed).choice(pool_ids, len(test_ids), replace=False))).values()
    realism = {
        "generated_vs_real_test": {"mmd": mmd_permutation_test(generated_test.values(), real_test, seed=seed),
                                   "c2st": classifier_two_sample_test(generated_test.values(), real_test, seed=seed)},
        "real_train_vs_real_test": {"mmd": mmd_permutation_test(reference, real_test, seed=seed),
                                    "c2st": classifier_two_sample_test(reference, real_test, seed=seed)},
        # conditioning: the PLS fitted on the plentiful real spectra reads the requested composition back
        "pls_rmse_on_generated_test": float(np.mean(rmse(plentiful_pls.predict(generated_test.values()), test[1], axis=0))),
        "pls_rmse_on_real_test": float(np.mean(rmse(plentiful_pls.predict(real_test), test[1], axis=0))),
    }
    wall = time.perf_counter() - start
    table = _summarise(pd.DataFrame(rows))
    scarce_best = table[(table.setting == "scarce") & (table.generated_per_real > 0)].rmse_ratio.min()
    plentiful_worst = table[(table.setting == "plentiful") & (table.generated_per_real > 0)].rmse_ratio.max()
    scale_text = (f"simulated ChemCam LIBS, {spectra.n_spectra} spectra ({config['targets']} targets x "
                  f"{config['shots']} shots) x {spectra.n_channels} channels (6144 binned by {BIN}); test "
                  f"{len(test_ids)} spectra of {config['test_targets']} unseen targets; scarce = {SCARCE} spectra "
                  f"x {config['repeats']} draws, plentiful = {len(pool_ids)} spectra; cVAE up to "
                  f"{config['epochs']} epochs; wall {wall:.0f} s on 2 shared CPU cores (contended)")
    summary = {"scale": scale_text,
               "scarce_best_rmse_ratio_with_generated": float(scarce_best),
               "plentiful_worst_rmse_ratio_with_generated": float(plentiful_worst),
               "target_scarce_reduces_error": bool(scarce_best < 1.0),
               "target_plentiful_does_not_hurt": bool(plentiful_worst <= 1.02),
               "mmd_p_generated_vs_real": realism["generated_vs_real_test"]["mmd"]["p"],
               "c2st_accuracy_generated_vs_real": realism["generated_vs_real_test"]["c2st"]["accuracy"]}
    result = {"name": NAME, "scale": scale, "seed": seed, "summary": summary, "rows": rows,
              "table": table.to_dict(orient="records"), "realism": realism}
    (out_dir / f"{NAME}.json").write_text(json.dumps(result, indent=2, default=float))
    _write_markdown(out_dir, table, summary, realism, scale)
    _figures(out_dir, table, spectra.axis, generated_test.values(), real_test, targets.loc[test_ids])
    return result


def _summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean RMSE (95 % CI over draws) per setting and amount of generated data, ratio to real only."""
    out = []
    for setting, part in frame.groupby("setting", sort=False):
        baseline = part[part.generated == 0].set_index("repeat").rmse
        for generated_per_real, group in part.groupby(part.generated // part.real):
            ci = mean_confidence_interval(group.rmse.to_numpy())
            ratios = group.set_index("repeat").rmse / baseline
            out.append({"setting": setting, "real": int(group.real.iloc[0]), "generated_per_real": int(generated_per_real),
                        "generated": int(group.generated.iloc[0]), "draws": len(group), "rmse": ci["mean"],
                        "ci95_low": ci["low"], "ci95_high": ci["high"], "rmse_ratio": float(ratios.mean()),
                        "pls_components": float(group.pls_components.mean()),
                        "cvae_seconds": float(group.cvae_seconds.mean())})
    return pd.DataFrame(out)


def _write_markdown(out_dir: Path, table: pd.DataFrame, summary: dict, realism: dict, scale: str) -> None:
    lines = [f"### Generative augmentation (cVAE + PLS, simulated LIBS; scale {scale})", "",
             f"Scale (every row): {summary['scale']}.", "",
             "| training set | real spectra | generated | draws | PLS RMSE wt% (mean) | 95 % CI | ratio to real only | "
             "cVAE fit s | scale |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.setting} | {r.real} | {r.generated} | {r.draws} | {r.rmse:.3f} | {r.ci95_low:.3f}-"
                     f"{r.ci95_high:.3f} | {r.rmse_ratio:.3f} | {r.cvae_seconds:.0f} | {scale} |")
    gen, ref = realism["generated_vs_real_test"], realism["real_train_vs_real_test"]
    met = "met" if summary["target_scarce_reduces_error"] else "NOT met"
    met2 = "met" if summary["target_plentiful_does_not_hurt"] else "NOT met"
    lines += ["", f"Target 'augmentation reduces error when data are scarce': {met} (best RMSE ratio "
              f"{summary['scarce_best_rmse_ratio_with_generated']:.3f}). Target 'does not hurt when plentiful' "
              f"(ratio <= 1.02): {met2} (worst ratio {summary['plentiful_worst_rmse_ratio_with_generated']:.3f}).",
              f"Two-sample tests, generated (at the test compositions) vs real test spectra: MMD^2 "
              f"{gen['mmd']['mmd2']:.4g}, permutation p = {gen['mmd']['p']:.3g}; C2ST accuracy "
              f"{gen['c2st']['accuracy']:.3f} (chance {gen['c2st']['chance']:.2f}, p = {gen['c2st']['p']:.3g}). "
              f"Reference, real training vs real test spectra: MMD^2 {ref['mmd']['mmd2']:.4g}, p = "
              f"{ref['mmd']['p']:.3g}; C2ST accuracy {ref['c2st']['accuracy']:.3f}.",
              f"Conditioning: a PLS fitted on the plentiful real spectra reads the requested test compositions back "
              f"from the generated spectra with RMSE {realism['pls_rmse_on_generated_test']:.3f} wt% (real test "
              f"spectra: {realism['pls_rmse_on_real_test']:.3f} wt%).", ""]
    (out_dir / f"{NAME}.md").write_text("\n".join(lines))


def _figures(out_dir: Path, table: pd.DataFrame, axis: np.ndarray, generated: np.ndarray, real: np.ndarray,
             test_targets: pd.DataFrame) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from speclearn.report import save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [f"{r.setting}\n+{r.generated} gen" for r in table.itertuples()]
    ax.bar(range(len(table)), table.rmse, yerr=[table.rmse - table.ci95_low, table.ci95_high - table.rmse],
           color=["tab:blue" if g == 0 else "tab:orange" for g in table.generated_per_real], capsize=3)
    ax.set_xticks(range(len(table)), labels, fontsize=8)
    ax.set_ylabel("PLS RMSE (wt%, mean over oxides)")
    ax.set_title("Real only (blue) vs real + cVAE-generated (orange)")
    save_figure(fig, out_dir / f"{NAME}_rmse.png")

    fig, ax = plt.subplots(figsize=(9, 4))
    first = test_targets.index[0]
    same = np.flatnonzero((test_targets.to_numpy() == test_targets.loc[first].to_numpy()).all(axis=1))
    for j, i in enumerate(same[:2]):
        ax.plot(axis, real[i], color="tab:blue", lw=0.7, label="real" if j == 0 else None)
        ax.plot(axis, generated[i], color="tab:orange", lw=0.7, alpha=0.8, label="generated" if j == 0 else None)
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("normalised intensity")
    ax.set_title(f"Real vs generated spectra of test target {first.split('_')[0]} (composition never trained on)")
    ax.legend()
    save_figure(fig, out_dir / f"{NAME}_spectra.png")
