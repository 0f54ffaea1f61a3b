"""Classification benchmark: CNN (with and without pretraining) vs kNN, SVM, RF and PLS-DA.

Real data: chemotools' coffee spectra (60 spectra, 1841 channels, 3 origins), in two settings:
50/50 splits (30 training spectra) and few-shot (3 training spectra per class, 51 test). Every
method sees the same repeated stratified train/test splits; accuracy is reported as the mean with a 95 % t
interval over the repeats (the splits overlap, so the interval is approximate), plus min-max.
The pretrained CNN features are learnt once on simulated spectra (no real data involved) and
reused for every split. Writes classification.json/.md and classification_confusion.png.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedShuffleSplit

from speclearn.models import methods
from speclearn.classify.cnn import CNNClassifier
from speclearn.core.spectra import Spectra
from speclearn.metrics import mean_confidence_interval, paired_t_test, timed
from speclearn.preprocessing import preprocess
from speclearn.io.atomic import markdown_table, write_result

SCALES = {"quick": {"repeats": 20, "epochs": 40, "pretrain_epochs": 8},
          "full": {"repeats": 20, "epochs": 100, "pretrain_epochs": 15}}
NAME = "classification"
FEW_SHOT = "3 per class"
#: setting -> number of training spectra (stratified; the rest is the test set)
SETTINGS = {"50/50": 30, FEW_SHOT: 9}


def load_coffee_spectra() -> tuple[Spectra, pd.Series]:
    """chemotools' coffee set as Spectra (axis: channel index, as shipped) and origin labels."""
    from chemotools.datasets import load_coffee

    X, y = load_coffee()
    ids = pd.Index([f"coffee{i:02d}" for i in range(len(X))], name="id")
    spectra = Spectra(X.to_numpy(float), np.arange(X.shape[1], dtype=float), meta=pd.DataFrame(index=ids),
                      source="chemotools coffee")
    return spectra, pd.Series(y.iloc[:, 0].astype(str).to_numpy(), index=ids, name="label")


def _methods(config: dict, seed: int) -> dict[str, object]:
    types = methods("classify")
    cnn = {"epochs": config["epochs"], "pretrain_epochs": config["pretrain_epochs"], "device": "cpu", "seed": seed}
    chosen = {"cnn_pretrained": CNNClassifier(pretrain=True, **cnn), "cnn_scratch": CNNClassifier(pretrain=False, **cnn)}
    chosen.update({name: cls(seed=seed) for name, cls in types.items() if name != "cnn"})
    return chosen


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0) -> dict:
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = SCALES[scale]
    start = time.perf_counter()
    spectra, labels = load_coffee_spectra()
    methods = _methods(config, seed)
    pretrained = methods["cnn_pretrained"]
    _, pipeline = preprocess(spectra, pretrained._preprocessing())
    encoder, pretrain_seconds = timed(lambda: pretrained.pretrained_encoder(spectra.n_channels, pipeline))

    classes = np.array(sorted(labels.unique()))
    rows, per_split, confusion, effects = [], {}, {}, {}
    for setting, train_size in SETTINGS.items():
        accuracy, seconds, matrices = _evaluate(spectra, labels, methods, encoder, classes, train_size,
                                                config["repeats"], seed)
        per_split[setting] = accuracy
        confusion[setting] = matrices
        effects[setting] = paired_t_test(np.array(accuracy["cnn_pretrained"]), np.array(accuracy["cnn_scratch"]))
        for name in methods:
            ci = mean_confidence_interval(np.array(accuracy[name]))
            rows.append({"setting": setting, "train": train_size, "test": spectra.n_spectra - train_size,
                         "method": name, "accuracy_mean": ci["mean"], "ci95_low": ci["low"], "ci95_high": ci["high"],
                         "accuracy_min": min(accuracy[name]), "accuracy_max": max(accuracy[name]),
                         "fit_predict_seconds": float(np.mean(seconds[name]))})
    wall = time.perf_counter() - start
    scale_text = (f"coffee: {spectra.n_spectra} spectra x {spectra.n_channels} channels, 3 classes, "
                  f"{config['repeats']} stratified splits per setting, CNN {config['epochs']} fine-tuning epochs + "
                  f"{config['pretrain_epochs']} pretraining epochs ({pretrain_seconds:.0f} s, once), wall {wall:.0f} s "
                  "on 2 shared CPU cores (contended)")
    summary = {"scale": scale_text}
    for setting in SETTINGS:
        part = [r for r in rows if r["setting"] == setting]
        best = max((r for r in part if not r["method"].startswith("cnn")), key=lambda r: r["accuracy_mean"])
        accuracy_of = {r["method"]: r["accuracy_mean"] for r in part}
        summary[setting] = {"cnn_pretrained_accuracy": accuracy_of["cnn_pretrained"],
                            "cnn_scratch_accuracy": accuracy_of["cnn_scratch"], "best_classical": best["method"],
                            "best_classical_accuracy": best["accuracy_mean"],
                            "pretraining_gain": effects[setting]["mean_difference"],
                            "pretraining_gain_p": effects[setting]["p"]}
    result = {"name": NAME, "scale": scale, "seed": seed, "summary": summary, "rows": rows,
              "accuracy_per_split": per_split, "classes": classes.tolist(),
              "confusion_summed_over_splits": {k: {m: v.tolist() for m, v in c.items()} for k, c in confusion.items()},
              "pretraining": "random smooth band mixtures on the coffee channels (speclearn.classify.pretraining): "
                             "synthetic materials in families sharing bands; pretext task = which material"}
    write_result(out_dir / f"{NAME}.json", result)
    _write_markdown(out_dir, rows, summary, scale)
    _confusion_figure(out_dir, confusion[FEW_SHOT], classes)
    return result


def _evaluate(spectra: Spectra, labels: pd.Series, methods: dict, encoder: dict, classes: np.ndarray,
              train_size: int, repeats: int, seed: int) -> tuple[dict, dict, dict]:
    """Accuracy and fit+predict seconds per split, and summed confusion matrices, for every method."""
    accuracy = {name: [] for name in methods}
    seconds = {name: [] for name in methods}
    confusion = {name: np.zeros((len(classes), len(classes)), int) for name in methods}
    splits = StratifiedShuffleSplit(repeats, train_size=train_size, random_state=seed)
    for train_index, test_index in splits.split(np.zeros(len(labels)), labels):
        train_ids = [spectra.ids[i] for i in train_index]
        test_ids = [spectra.ids[i] for i in test_index]
        train_set, test_set = spectra.select(train_ids), spectra.select(test_ids)
        truth = labels.loc[test_ids].to_numpy()
        for name, method in methods.items():
            t0 = time.perf_counter()
            if name == "cnn_pretrained":
                method.fit(train_set, labels.loc[train_ids], encoder=encoder)
            else:
                method.fit(train_set, labels.loc[train_ids])
            predicted = method.predict(test_set)["class"].to_numpy()
            seconds[name].append(time.perf_counter() - t0)
            accuracy[name].append(float(np.mean(predicted == truth)))
            confusion[name] += confusion_matrix(truth, predicted, labels=classes)
    return accuracy, seconds, confusion


def _write_markdown(out_dir: Path, rows: list[dict], summary: dict, scale: str) -> None:
    lines = [f"### Classification (coffee origins, real data; scale {scale})", "",
             f"Scale (every row): {summary['scale']}.", "",
             *markdown_table(rows, {
                 "setting": "{setting}", "train/test spectra": "{train}/{test}", "method": "{method}",
                 "accuracy (mean)": "{accuracy_mean:.3f}", "95 % CI": "{ci95_low:.3f}-{ci95_high:.3f}",
                 "min-max": "{accuracy_min:.2f}-{accuracy_max:.2f}", "fit+predict s": "{fit_predict_seconds:.2f}",
                 "scale": lambda r: scale}), ""]
    for setting in SETTINGS:
        part = summary[setting]
        gain, p = part["pretraining_gain"], part["pretraining_gain_p"]
        verdict = "helps" if gain > 0 and p < 0.05 else "hurts" if gain < 0 and p < 0.05 else \
            "makes no significant difference"
        lines.append(f"{setting}: pretraining on simulated spectra {verdict} (accuracy change {gain:+.3f}, paired "
                     f"t-test over splits p = {p:.3g}); best classical {part['best_classical']} "
                     f"{part['best_classical_accuracy']:.3f} vs pretrained CNN {part['cnn_pretrained_accuracy']:.3f}.")
    lines.append("")
    write_result(out_dir / f"{NAME}.md", "\n".join(lines))


def _confusion_figure(out_dir: Path, confusion: dict[str, np.ndarray], classes: np.ndarray) -> None:
    from speclearn.report import pyplot, save_figure
    plt = pyplot()

    fig, axes = plt.subplots(2, 3, figsize=(11, 7))
    for ax, (name, matrix) in zip(axes.ravel(), confusion.items()):
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="black")
        ax.set_xticks(range(len(classes)), classes, rotation=30)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_title(f"{name}: acc {np.trace(matrix) / matrix.sum():.2f}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.suptitle(f"Coffee origin, {FEW_SHOT} training: confusion matrices summed over all test splits")
    fig.tight_layout()
    save_figure(fig, out_dir / f"{NAME}_confusion.png")
