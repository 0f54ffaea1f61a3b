"""Metrics shared by every benchmark: errors, spectral similarity, significance, timing."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy import stats


def rmse(predicted: np.ndarray, true: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    return np.sqrt(np.mean((np.asarray(predicted, float) - np.asarray(true, float)) ** 2, axis=axis))


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-spectrum Euclidean distance between matching rows."""
    return np.linalg.norm(np.asarray(a, float) - np.asarray(b, float), axis=-1)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-spectrum cosine similarity (+1 = same direction). Vrábel et al. (JAAS 2023) reports its negative."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    norm = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.sum(a * b, axis=-1) / np.where(norm > 0, norm, np.nan)


def spectral_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in radians between matching spectra."""
    return np.arccos(np.clip(cosine_similarity(a, b), -1.0, 1.0))


def relative_squared_error(predicted: np.ndarray, true: np.ndarray) -> float:
    """RSE = sum (x - x_hat)^2 / sum (x - x_bar)^2, x_bar the mean true spectrum."""
    true, predicted = np.asarray(true, float), np.asarray(predicted, float)
    return float(np.sum((true - predicted) ** 2) / np.sum((true - true.mean(axis=0)) ** 2))


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """10 log10(signal power / noise power)."""
    return float(10 * np.log10(np.sum(np.asarray(signal, float) ** 2) / np.sum(np.asarray(noise, float) ** 2)))


def peak_to_noise_db(reconstructed: np.ndarray, clean: np.ndarray) -> float:
    """PNR: 20 log10(max |clean| / RMSE(reconstructed, clean)), averaged over spectra."""
    clean, reconstructed = np.atleast_2d(clean), np.atleast_2d(reconstructed)
    err = np.sqrt(np.mean((reconstructed - clean) ** 2, axis=1))
    return float(np.mean(20 * np.log10(np.abs(clean).max(axis=1) / np.maximum(err, 1e-300))))


def paired_t_test(errors_a: np.ndarray, errors_b: np.ndarray) -> dict[str, float]:
    """Paired t-test of matched per-item errors (e.g. per-spectrum relative errors of two methods), with
    the Wilcoxon signed-rank p beside it (`wilcoxon_p`: one huge difference cannot swamp it)."""
    a, b = np.ravel(errors_a), np.ravel(errors_b)
    keep = np.isfinite(a) & np.isfinite(b)
    result = stats.ttest_rel(a[keep], b[keep])
    differs = keep & (a != b)
    return {"t": float(result.statistic), "p": float(result.pvalue), "n": int(keep.sum()),
            "mean_difference": float(np.mean(a[keep] - b[keep])),
            "wilcoxon_p": float(stats.wilcoxon(a[differs], b[differs]).pvalue) if differs.sum() > 1 else 1.0}


def best_times(calls: dict[str, Callable[[], object]], repeats: int, *, min_seconds: float = 0.0,
               pause: float = 0.0, warmup: int = 1) -> dict[str, float]:
    """Seconds per call of each function: the best of `repeats` rounds, each calling it for at least
    `min_seconds` (best-of, because other processes on a shared machine only ever add time), rounds
    interleaved across the functions (so a change of machine load hits them alike), `pause` seconds
    before each round (ONNX Runtime's idle threads spin for a while after a call), after `warmup`
    calls each (TorchScript optimises its graph during the first calls)."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    best = dict.fromkeys(calls, np.inf)
    for _ in range(repeats):
        for name, call in calls.items():
            time.sleep(pause)
            n, start = 0, time.perf_counter()
            while True:
                call()
                n += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_seconds:
                    break
            best[name] = min(best[name], elapsed / n)
    return best


def timed(call: Callable[[], object]) -> tuple[object, float]:
    """(`call()`, its wall time in seconds)."""
    start = time.perf_counter()
    return call(), time.perf_counter() - start


def peak_centre_error(predicted: np.ndarray, true: np.ndarray) -> float:
    """Mean |predicted - true| peak centre (axis units, e.g. Da) over the pairs where both are known."""
    diff = np.abs(np.asarray(predicted, float) - np.asarray(true, float))
    return float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")


def interval_coverage(true: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int | None = None):
    """Fraction of true values inside [lo, hi] (prediction-interval coverage)."""
    true = np.asarray(true, float)
    return np.mean((true >= np.asarray(lo, float)) & (true <= np.asarray(hi, float)), axis=axis)


def k_score(labels_true: np.ndarray, labels_predicted: np.ndarray) -> float:
    """Vrábel et al. (JAAS 2023) eq. 5: the fraction of items given the same cluster label (accuracy of label agreement)."""
    labels_true, labels_predicted = np.ravel(labels_true), np.ravel(labels_predicted)
    if labels_true.shape != labels_predicted.shape:
        raise ValueError(f"{labels_true.size} labels against {labels_predicted.size}")
    return float(np.mean(labels_true == labels_predicted))


def mmd_permutation_test(a: np.ndarray, b: np.ndarray, *, n_permutations: int = 200, seed: int = 0) -> dict[str, float]:
    """Two-sample test: squared MMD (RBF kernel, median-distance bandwidth) and its permutation p-value."""
    from scipy.spatial.distance import cdist

    pooled = np.vstack([np.asarray(a, float), np.asarray(b, float)])
    distances = cdist(pooled, pooled, "sqeuclidean")
    bandwidth = np.median(distances[np.triu_indices_from(distances, 1)])
    kernel = np.exp(-distances / max(bandwidth, 1e-300))
    n = len(a)

    def mmd2(order: np.ndarray) -> float:
        k = kernel[np.ix_(order, order)]
        return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())

    rng = np.random.default_rng(seed)
    observed = mmd2(np.arange(len(pooled)))
    null = np.array([mmd2(rng.permutation(len(pooled))) for _ in range(n_permutations)])
    return {"mmd2": observed, "p": float((1 + np.sum(null >= observed)) / (1 + n_permutations)),
            "n_permutations": n_permutations}


def classifier_two_sample_test(a: np.ndarray, b: np.ndarray, *, n_components: int = 10, seed: int = 0) -> dict[str, float]:
    """C2ST: cross-validated accuracy of logistic regression (on PCA scores) telling `a` from `b`.

    0.5 means indistinguishable; p is the binomial probability of that accuracy or more by chance.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.vstack([np.asarray(a, float), np.asarray(b, float)])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    model = make_pipeline(StandardScaler(), PCA(min(n_components, X.shape[1], len(X) // 2), random_state=seed),
                          LogisticRegression(max_iter=2000))
    predicted = cross_val_predict(model, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed))
    correct = int(np.sum(predicted == y))
    chance = max(len(a), len(b)) / len(X)
    return {"accuracy": correct / len(X), "chance": chance,
            "p": float(stats.binomtest(correct, len(X), chance, alternative="greater").pvalue)}


def mean_confidence_interval(values: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Mean and Student-t confidence interval of repeated measurements (e.g. accuracy over splits)."""
    values = np.asarray(values, float)
    mean = float(values.mean())
    if values.size < 2:
        return {"mean": mean, "low": mean, "high": mean, "n": int(values.size)}
    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(values.size)}


def run_measured(target: str, timeout: float | None = None, **kwargs) -> dict:
    """Run `module:function(**kwargs)` in a fresh Python process; its wall and CPU time, peak RSS and
    JSON result. Every benchmark measures memory this way.

    Peak memory of a process cannot be reset, so each measurement gets its own process. The peak is
    the process's own high-water mark (VmHWM, Linux); `ru_maxrss` elsewhere (on Linux it would
    include the parent's peak, which survives fork + exec).
    """
    import json
    import os
    import subprocess
    import sys
    module, function = target.split(":")
    code = ("import json, resource, time, importlib\n"
            f"f = getattr(importlib.import_module({module!r}), {function!r})\n"
            "start, cpu = time.perf_counter(), time.process_time()\n"
            f"result = f(**json.loads({json.dumps(json.dumps(kwargs))}))\n"
            "wall, cpu = time.perf_counter() - start, time.process_time() - cpu\n"
            "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
            "try:\n"
            "    status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
            "    rss = int(status.split()[0]) / 1024\n"
            "except (OSError, IndexError):\n"
            "    pass\n"
            "print('@@' + json.dumps({'wall_s': wall, 'cpu_s': cpu, 'peak_rss_mb': rss, 'result': result}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("@@")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{target} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1][2:])
