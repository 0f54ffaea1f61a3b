"""Generative-augmentation benchmark: do generated spectra help a PLS quantifier?

Data: ChemCam-like LIBS from `speclearn.simulate.libs.simulate_chemcam` (oxide wt% targets), one
location and several shots per target, binned by 8 channels (6144 -> 768, to keep the cVAE cheap on
CPU) and normalised to total emission. Test spectra come from targets never seen in training.
The "real" spectra come from the simulator with an instrument state the generators do not know
(`REAL_INSTRUMENT`). Per repeat: a scarce training set (random spectra from the training targets)
and the plentiful set (all training spectra); each generator is fitted on exactly that training set
and generates spectra at new compositions (random convex mixtures of two training compositions):
a cVAE, and the simulator at its nominal instrument, as it is and corrected per channel towards the
real training spectra (`SimulatorCorrection`), at fixed ratios and at the ratio (0 included) and
correction chosen by cross-validation on the real training spectra (the "auto" row: it augments only
where that helps). PLS (components chosen by
5-fold CV on the real training spectra, the same for both arms) is trained on real only and on real
+ generated, and scored on the same held-out test set (RMSE per oxide, averaged).
Realism: generated spectra at the test compositions vs the real test spectra, by an MMD
permutation test and a classifier two-sample test, next to the same tests for real training vs
real test spectra (different targets, same population) as the reference.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold

from speclearn.core.spectra import Spectra
from speclearn.generate.cvae import ConditionalVAE
from speclearn.generate.simulated import (GENERATED_PER_REAL, SimulatorCorrection, choose_simulated_augmentation,
                                         pls_rmse)
from speclearn.metrics import (classifier_two_sample_test, mean_confidence_interval, mmd_permutation_test, rmse,
                               timed)
from speclearn.io.atomic import markdown_table, write_result

SCALES = {"quick": {"targets": 80, "test_targets": 25, "shots": 4, "repeats": 3, "epochs": 300},
          "full": {"targets": 120, "test_targets": 40, "shots": 5, "repeats": 5, "epochs": 400}}
SCARCE = 50
#: the "real" instrument: the simulator with knobs the generator does not know (it simulates with the
#: defaults and learns the difference from the real training spectra)
REAL_INSTRUMENT = {"instrument_fwhm_scale": 1.3, "continuum_fraction": 0.07, "temperature": 8400.0,
                   "read_noise": 8.0, "dark_level": 0.03}
BIN = 8
NAME = "augmentation"


def libs_dataset(n_targets: int, shots: int, seed: int) -> tuple[Spectra, pd.DataFrame, np.ndarray]:
    """Binned, total-normalised "real" LIBS spectra (the simulator with `REAL_INSTRUMENT`), their oxide
    wt% and target (group) names."""
    from speclearn.simulate.libs import simulate_chemcam

    sim = simulate_chemcam(n_targets=n_targets, n_locations=1, shots_per_location=shots, seed=seed, **REAL_INSTRUMENT)
    return _binned(sim), sim.targets, sim.groups.to_numpy()


def simulated_twins(compositions: pd.DataFrame, seed: int) -> np.ndarray:
    """One spectrum per composition row from the simulator at its nominal instrument, binned as the real ones."""
    from speclearn.simulate.libs import simulate_chemcam

    sim = simulate_chemcam(compositions=compositions, n_locations=1, shots_per_location=1, seed=seed)
    return _binned(sim).values()


def _binned(sim) -> Spectra:
    raw = sim.spectra.values()
    usable = raw.shape[1] // BIN * BIN
    binned = raw[:, :usable].reshape(len(raw), -1, BIN).mean(axis=2)
    binned = binned / binned.sum(axis=1, keepdims=True) * binned.shape[1]
    axis = sim.spectra.axis[:usable].reshape(-1, BIN).mean(axis=1)
    return Spectra(binned, axis, axis_kind="wavelength", axis_unit="nm", meta=pd.DataFrame(index=sim.spectra.meta.index))


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


def _arm(spectra: Spectra, targets: pd.DataFrame, groups: pd.Series, train_ids: list[str],
         test: tuple[np.ndarray, np.ndarray], config: dict, seed: int) -> tuple[list[dict], ConditionalVAE, PLSRegression]:
    """RMSE of PLS on real only and on real + generated (cVAE; the simulator as it is and corrected, each
    ratio in GENERATED_PER_REAL; the ratio and correction chosen by cross-validation)."""
    X, Y = spectra.select(train_ids).values(), targets.loc[train_ids].to_numpy()
    k = pls_components(X, Y, seed)
    vae, vae_seconds = timed(lambda: ConditionalVAE(epochs=config["epochs"], device="cpu", seed=seed).fit(
        spectra.select(train_ids), targets.loc[train_ids]))
    real_only = PLSRegression(k).fit(X, Y)
    rows = [{"generator": "none", "generated": 0, "rmse": float(np.mean(rmse(real_only.predict(test[0]), test[1], axis=0))),
             "fit_seconds": 0.0}]
    rng = np.random.default_rng(seed)
    wanted = mixture_targets(targets.loc[train_ids], max(GENERATED_PER_REAL) * len(train_ids), rng)
    for ratio in GENERATED_PER_REAL:
        n = ratio * len(train_ids)
        generated, conditions = vae.generate(wanted.iloc[:n], seed=seed + ratio)
        rows.append({"generator": "cVAE", "generated": n, "fit_seconds": vae_seconds,
                     "rmse": pls_rmse(k, np.vstack([X, generated.values()]), np.vstack([Y, conditions.to_numpy()]), test)})
    start = time.perf_counter()
    twins = simulated_twins(targets.loc[train_ids], seed + 500)
    generated_twins = simulated_twins(wanted, seed + 501)
    correction = SimulatorCorrection().fit(twins, X)
    sim_seconds = time.perf_counter() - start
    for ratio in GENERATED_PER_REAL:
        n = ratio * len(train_ids)
        for generator, generated in (("simulator + correction", correction.transform(generated_twins[:n])),
                                     ("simulator (uncorrected)", generated_twins[:n])):
            rows.append({"generator": generator, "generated": n, "fit_seconds": sim_seconds,
                         "rmse": pls_rmse(k, np.vstack([X, generated]), np.vstack([Y, wanted.to_numpy()[:n]]), test)})
    ratio, corrected = choose_simulated_augmentation(X, Y, twins, groups.loc[train_ids].to_numpy(), generated_twins,
                                                     wanted.to_numpy(), k)
    n = ratio * len(train_ids)
    generated = correction.transform(generated_twins[:n]) if corrected else generated_twins[:n]
    rows.append({"generator": "auto (CV-chosen simulator ratio and correction)", "generated": n,
                 "corrected": corrected, "fit_seconds": time.perf_counter() - start,
                 "rmse": pls_rmse(k, np.vstack([X, generated]), np.vstack([Y, wanted.to_numpy()[:n]]), test)})
    for row in rows:
        row.update(real=len(train_ids), pls_components=k, cvae_epochs_run=len(vae.history_.train_loss))
    return rows, vae, real_only


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0) -> dict:
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = SCALES[scale]
    start = time.perf_counter()
    spectra, targets, groups = libs_dataset(config["targets"], config["shots"], seed)
    group_of = pd.Series(groups, index=spectra.ids)
    names = np.unique(groups)
    test_names = np.random.default_rng(seed).choice(names, config["test_targets"], replace=False)
    is_test = np.isin(groups, test_names)
    test_ids = [i for i, t in zip(spectra.ids, is_test) if t]
    pool_ids = [i for i, t in zip(spectra.ids, is_test) if not t]
    test = (spectra.select(test_ids).values(), targets.loc[test_ids].to_numpy())

    rows = []
    for repeat in range(config["repeats"]):
        scarce_ids = list(np.random.default_rng(seed + 100 + repeat).choice(pool_ids, SCARCE, replace=False))
        arm, _, _ = _arm(spectra, targets, group_of, scarce_ids, test, config, seed + repeat)
        rows += [{"setting": "scarce", "repeat": repeat, **r} for r in arm]
    arm, plentiful_vae, plentiful_pls = _arm(spectra, targets, group_of, pool_ids, test, config, seed)
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
    scale_text = (f"\"real\" = simulated ChemCam LIBS with an instrument the generators do not know ({REAL_INSTRUMENT}), "
                  f"{spectra.n_spectra} spectra ({config['targets']} targets x {config['shots']} shots) x "
                  f"{spectra.n_channels} channels (6144 binned by {BIN}); test {len(test_ids)} spectra of "
                  f"{config['test_targets']} unseen targets; scarce = {SCARCE} spectra x {config['repeats']} draws, "
                  f"plentiful = {len(pool_ids)} spectra; cVAE up to {config['epochs']} epochs; wall {wall:.0f} s on "
                  "2 shared CPU cores (contended)")
    summary = {"scale": scale_text, "targets": _targets(table),
               "mmd_p_generated_vs_real": realism["generated_vs_real_test"]["mmd"]["p"],
               "c2st_accuracy_generated_vs_real": realism["generated_vs_real_test"]["c2st"]["accuracy"]}
    result = {"name": NAME, "scale": scale, "seed": seed, "summary": summary, "rows": rows,
              "table": table.to_dict(orient="records"), "realism": realism}
    write_result(out_dir / f"{NAME}.json", result)
    _write_markdown(out_dir, table, summary, realism, scale)
    _figures(out_dir, table, spectra.axis, generated_test.values(), real_test, targets.loc[test_ids])
    return result


def _summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean RMSE (95 % CI over draws) per setting, generator and amount of generated data; ratio to real
    only and the 95 % CI of the paired difference (augmented - real only) over draws."""
    out = []
    # the auto rows form one group whatever amount each draw chose (their "generated" is the mean)
    frame = frame.assign(amount=np.where(frame.generator.str.startswith("auto"), -1, frame.generated))
    for setting, part in frame.groupby("setting", sort=False):
        baseline = part[part.generator == "none"].set_index("repeat").rmse
        for (generator, _), group in part.groupby(["generator", "amount"], sort=False):
            generated = group.generated.mean()
            ci = mean_confidence_interval(group.rmse.to_numpy())
            by_repeat = group.set_index("repeat").rmse
            difference = (by_repeat - baseline.loc[by_repeat.index]).to_numpy()
            diff_ci = mean_confidence_interval(difference) if len(difference) > 1 else \
                {"mean": float(difference[0]), "low": float("nan"), "high": float("nan")}
            out.append({"setting": setting, "generator": generator, "real": int(group.real.iloc[0]),
                        "generated": round(float(generated)), "draws": len(group), "rmse": ci["mean"], "ci95_low": ci["low"],
                        "ci95_high": ci["high"], "rmse_ratio": float((by_repeat / baseline.loc[by_repeat.index]).mean()),
                        "diff_low": diff_ci["low"], "diff_high": diff_ci["high"],
                        "pls_components": float(group.pls_components.mean()),
                        "fit_seconds": float(group.fit_seconds.mean())})
    return pd.DataFrame(out)


def _targets(table: pd.DataFrame) -> list[dict]:
    """Issue 17: scarce -> RMSE lower by >= 5 % with the paired 95 % CI below 0; plentiful ratio <= 1.01."""
    checks = []
    for generator in [g for g in table.generator.unique() if g != "none"]:
        scarce = table[(table.setting == "scarce") & (table.generator == generator)]
        best = scarce.loc[scarce.rmse_ratio.idxmin()]
        plentiful = table[(table.setting == "plentiful") & (table.generator == generator)]
        checks += [{"generator": generator, "target": "scarce (50 real): RMSE lower by >= 5 %, paired 95 % CI excludes 0",
                    "met": bool(best.rmse_ratio <= 0.95 and best.diff_high < 0),
                    "detail": f"best ratio {best.rmse_ratio:.3f} with {best.generated} generated, paired difference CI "
                              f"{best.diff_low:.3f} to {best.diff_high:.3f} wt%"},
                   {"generator": generator, "target": "plentiful: ratio <= 1.01",
                    "met": bool(plentiful.rmse_ratio.max() <= 1.01),
                    "detail": f"worst ratio {plentiful.rmse_ratio.max():.3f}"}]
    return checks


def _write_markdown(out_dir: Path, table: pd.DataFrame, summary: dict, realism: dict, scale: str) -> None:
    lines = [f"### Generative augmentation (PLS on real + generated spectra, simulated LIBS; scale {scale})", "",
             f"Scale (every row): {summary['scale']}.", "",
             *markdown_table([r._asdict() for r in table.itertuples()], {
                 "training set": "{setting}", "generator": "{generator}", "real spectra": "{real}",
                 "generated": "{generated}", "draws": "{draws}", "PLS RMSE wt% (mean)": "{rmse:.3f}",
                 "95 % CI": "{ci95_low:.3f}-{ci95_high:.3f}", "ratio to real only": "{rmse_ratio:.3f}",
                 "paired difference 95 % CI": "{diff_low:.3f} to {diff_high:.3f}",
                 "generator fit s": "{fit_seconds:.0f}", "scale": lambda r: scale})]
    gen, ref = realism["generated_vs_real_test"], realism["real_train_vs_real_test"]
    lines += ["", "Targets:", ""]
    lines += [f"- {t['generator']}: {t['target']}: **{'met' if t['met'] else 'NOT met'}** ({t['detail']})"
              for t in summary["targets"]]
    lines += ["", f"cVAE realism, two-sample tests, generated (at the test compositions) vs real test spectra: MMD^2 "
              f"{gen['mmd']['mmd2']:.4g}, permutation p = {gen['mmd']['p']:.3g}; C2ST accuracy "
              f"{gen['c2st']['accuracy']:.3f} (chance {gen['c2st']['chance']:.2f}, p = {gen['c2st']['p']:.3g}). "
              f"Reference, real training vs real test spectra: MMD^2 {ref['mmd']['mmd2']:.4g}, p = "
              f"{ref['mmd']['p']:.3g}; C2ST accuracy {ref['c2st']['accuracy']:.3f}.",
              f"cVAE conditioning: a PLS fitted on the plentiful real spectra reads the requested test compositions "
              f"back from the generated spectra with RMSE {realism['pls_rmse_on_generated_test']:.3f} wt% (real test "
              f"spectra: {realism['pls_rmse_on_real_test']:.3f} wt%).", ""]
    write_result(out_dir / f"{NAME}.md", "\n".join(lines))


def _figures(out_dir: Path, table: pd.DataFrame, axis: np.ndarray, generated: np.ndarray, real: np.ndarray,
             test_targets: pd.DataFrame) -> None:
    from speclearn.report import pyplot, save_figure
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [f"{r.setting}\n{r.generator[:12]}\n+{r.generated}" for r in table.itertuples()]
    colours = {"none": "tab:blue", "cVAE": "tab:orange"}
    ax.bar(range(len(table)), table.rmse, yerr=[table.rmse - table.ci95_low, table.ci95_high - table.rmse],
           color=[colours.get(g, "tab:green") for g in table.generator], capsize=3)
    ax.set_xticks(range(len(table)), labels, fontsize=6)
    ax.set_ylabel("PLS RMSE (wt%, mean over oxides)")
    ax.set_title("Real only (blue), + cVAE (orange), + simulator (green)")
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
