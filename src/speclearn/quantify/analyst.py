"""What an ICP-MS analyst expects beside the numbers: detection limits from blank replicates, results
below the limits flagged, dilution factors applied, internal-standard recovery per spectrum, and a
flag on spectra holding a peak the model does not explain."""
from __future__ import annotations

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra

LOD_SIGMA, LOQ_SIGMA = 3.0, 10.0
MIN_BLANKS = 3
#: significance above which a residual peak is reported as unexplained (see `unexplained_peaks`)
UNEXPLAINED_Z = 10.0


def blank_ids(targets: pd.DataFrame) -> list[str]:
    """Training spectra whose every target is zero: the blank replicates."""
    return list(targets.index[(targets.to_numpy(float) == 0).all(axis=1)])


def detection_limits(blank_predictions: pd.DataFrame) -> pd.DataFrame:
    """LOD = 3 sigma and LOQ = 10 sigma of the predicted concentrations of blank replicates.

    Rows: analytes; columns lod, loq, blank_mean, n_blanks. Fewer than 3 blanks gives NaN limits.
    """
    n = len(blank_predictions)
    sigma = blank_predictions.std(axis=0, ddof=1) if n >= MIN_BLANKS else blank_predictions.iloc[:0].sum() * np.nan
    return pd.DataFrame({"lod": LOD_SIGMA * sigma, "loq": LOQ_SIGMA * sigma,
                         "blank_mean": blank_predictions.mean(axis=0) if n else np.nan, "n_blanks": n})


def flag_results(predictions: pd.DataFrame, limits: pd.DataFrame | None) -> pd.DataFrame:
    """'<LOD', '<LOQ', 'ok' or '>range' (above the highest training standard: outside the calibrated
    range, where dead time and detector saturation go unseen) per result; 'n/a' where no limit is known."""
    flags = pd.DataFrame("n/a", index=predictions.index, columns=predictions.columns, dtype=object)
    if limits is None:
        return flags
    for name in predictions.columns:
        if name not in limits.index:
            continue
        lod, loq = float(limits.loc[name, "lod"]), float(limits.loc[name, "loq"])
        value = predictions[name].to_numpy()
        if np.isfinite(loq):
            flags[name] = np.where(value < lod, "<LOD", np.where(value < loq, "<LOQ", "ok"))
        if "top_standard" in limits.columns:
            flags.loc[value > float(limits.loc[name, "top_standard"]), name] = ">range"
    return flags


def dilution_factors(metadata: pd.DataFrame | None, spectra: Spectra, *, file: str | None = None) -> np.ndarray:
    """Per-spectrum dilution factor from an optional metadata table with a `dilution` column (default 1)."""
    if metadata is None or "dilution" not in metadata.columns:
        return np.ones(spectra.n_spectra)
    from speclearn.io import align_table

    table = align_table(metadata, spectra, file=file)
    values = pd.to_numeric(table["dilution"], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if bad.size:
        raise InputError("dilution factor must be a positive number", file=file, row=f"id {table.index[bad[0]]!r}",
                         column="dilution")
    return values


def unexplained_peaks(X: np.ndarray, fitted: np.ndarray, axis: np.ndarray, *, width: float = 0.6,
                      model_error: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(m/z, significance z) of the strongest peak of each spectrum that the model's fit leaves out.

    The residual (spectrum - fit), less its running median over 5 m/z (background the fit leaves),
    is summed over windows of `width` m/z and divided by the window's noise: Poisson counts plus
    `model_error` x the largest fitted count within +-1 m/z (the fit's own shape error on the flanks
    of big peaks). A z above `UNEXPLAINED_Z` (10) flags a species the model lacks (the measurement behind
    10: docs/notes/quantify_analyst.md).
    """
    from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d

    step = float(np.median(np.diff(axis)))
    residual = X - fitted
    residual = residual - median_filter(residual, size=(1, max(1, int(5 / step))), mode="nearest")
    variance = np.maximum(X, 1.0) + (model_error * maximum_filter1d(fitted, int(2 / step) + 1, axis=1)) ** 2
    window = max(1, int(round(width / step)))
    z = uniform_filter1d(residual, window, axis=1) / np.sqrt(uniform_filter1d(variance, window, axis=1) / window)
    strongest = np.argmax(z, axis=1)
    return axis[strongest], z[np.arange(len(z)), strongest]
