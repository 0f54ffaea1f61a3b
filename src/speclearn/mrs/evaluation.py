"""Measures of the MRS benchmark: percent errors, residual offset spread and its Cramer-Rao bound, bias
toward the training mean."""
from __future__ import annotations

import numpy as np
from scipy import stats

from speclearn.mrs.registration import offset_information


def regression_slope(true: np.ndarray, predicted: np.ndarray) -> float:
    """Least-squares slope of predicted on true. Below 1: estimates pulled toward the training mean
    (the bias of DL quantifiers reported by Rizzo et al. 2023); 1 for an unbiased estimator."""
    true, predicted = np.asarray(true, float), np.asarray(predicted, float)
    ok = np.isfinite(true) & np.isfinite(predicted)
    centred = true[ok] - true[ok].mean()
    return float(centred @ (predicted[ok] - predicted[ok].mean()) / (centred @ centred))


def training_mean_bias_test(true: np.ndarray, predicted: np.ndarray, training_mean: float, *,
                            tolerance: float = 0.1, alpha: float = 0.05) -> dict:
    """Test for the bias of DL quantifiers toward the training mean (Rizzo et al. 2023).

    Regresses the error (predicted - true) on the distance from the training mean (true - training_mean).
    An unbiased estimator has slope 0; one that pulls estimates a share s of the way to the training mean
    has slope -s. One-sided t test of H0: slope >= -tolerance; `biased` when rejected at `alpha`.
    Returns slope, its standard error, p_value, biased, n."""
    true, predicted = np.asarray(true, float), np.asarray(predicted, float)
    ok = np.isfinite(true) & np.isfinite(predicted)
    if ok.sum() < 3 or np.ptp(true[ok]) == 0:
        return {"slope": float("nan"), "stderr": float("nan"), "p_value": float("nan"), "biased": False,
                "n": int(ok.sum())}
    fit = stats.linregress(true[ok] - training_mean, predicted[ok] - true[ok])
    p_value = float(stats.t.cdf((fit.slope + tolerance) / max(fit.stderr, 1e-300), ok.sum() - 2))
    return {"slope": float(fit.slope), "stderr": float(fit.stderr), "p_value": p_value,
            "biased": bool(p_value < alpha), "n": int(ok.sum())}


def median_abs_percent_error(true: np.ndarray, predicted: np.ndarray) -> float:
    true, predicted = np.asarray(true, float), np.asarray(predicted, float)
    ok = np.isfinite(predicted) & (true > 0)
    return float(100 * np.median(np.abs(predicted[ok] / true[ok] - 1)))


def residual_spread(estimated: np.ndarray, true: np.ndarray, scans: np.ndarray, *, circular: bool = False) -> float:
    """SD across transients of (estimate - truth) after removing each scan's mean (alignment is relative)."""
    d = np.asarray(estimated, float) - np.asarray(true, float)
    if circular:
        d = (d + 180) % 360 - 180
    scans = np.asarray(scans)
    out = np.empty_like(d)
    for name in np.unique(scans):
        rows = scans == name
        centre = np.rad2deg(np.angle(np.mean(np.exp(1j * np.deg2rad(d[rows]))))) if circular else np.median(d[rows])
        r = d[rows] - centre
        out[rows] = (r + 180) % 360 - 180 if circular else r
    return float(np.sqrt(np.mean(out ** 2)))


def offset_crlb(clean_fid: np.ndarray, noise_sd: np.ndarray, dwell_time_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Cramer-Rao bounds (sd; Hz, deg) of one transient's frequency and zero-order phase offsets, estimated
    jointly against its noise-free signal `clean_fid` (rows) under complex white noise of sd `noise_sd`
    per real component (time domain)."""
    f_f, f_fp, f_p = (a / np.asarray(noise_sd, float) ** 2 for a in offset_information(clean_fid, dwell_time_s))
    det = f_f * f_p - f_fp ** 2
    return np.sqrt(f_p / det), np.rad2deg(np.sqrt(f_f / det))
