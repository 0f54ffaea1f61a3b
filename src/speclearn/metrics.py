"""Metrics shared by every benchmark: errors, spectral similarity, significance, timing."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy import stats


def relative_error(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """|pred - true| / |true| elementwise (NaN where true is 0)."""
    true = np.asarray(true, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(true != 0, np.abs(np.asarray(predicted, float) - true) / np.abs(true), np.nan)


def rmse(predicted: np.ndarray, true: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    return np.sqrt(np.mean((np.asarray(predicted, float) - np.asarray(true, float)) ** 2, axis=axis))


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-spectrum Euclidean distance between matching rows."""
    return np.linalg.norm(np.asarray(a, float) - np.asarray(b, float), axis=-1)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-spectrum cosine similarity (+1 = same direction). Seed 003 reports its negative."""
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
    """Paired t-test of matched per-item errors (e.g. per-spectrum relative errors of two methods)."""
    a, b = np.ravel(errors_a), np.ravel(errors_b)
    keep = np.isfinite(a) & np.isfinite(b)
    result = stats.ttest_rel(a[keep], b[keep])
    return {"t": float(result.statistic), "p": float(result.pvalue), "n": int(keep.sum()),
            "mean_difference": float(np.mean(a[keep] - b[keep]))}


def time_per_item(fn: Callable[[], object], n_items: int, repeats: int = 3) -> float:
    """Best-of-`repeats` wall time of `fn()` divided by `n_items`, in seconds."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / max(n_items, 1)


def run_measured(target: str, timeout: float | None = None, **kwargs) -> dict:
    """Run `module:function(**kwargs)` in a fresh Python process; its wall time, peak RSS and JSON result.

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
            "start = time.perf_counter()\n"
            f"result = f(**json.loads({json.dumps(json.dumps(kwargs))}))\n"
            "wall = time.perf_counter() - start\n"
            "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
            "try:\n"
            "    status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
            "    rss = int(status.split()[0]) / 1024\n"
            "except (OSError, IndexError):\n"
            "    pass\n"
            "print('@@' + json.dumps({'wall_s': wall, 'peak_rss_mb': rss, 'result': result}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("@@")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{target} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1][2:])
