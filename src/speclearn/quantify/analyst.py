"""What an ICP-MS analyst expects beside the numbers: detection limits from blank replicates, results
below the limits flagged, dilution factors applied, internal-standard recovery per spectrum."""
from __future__ import annotations

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra

LOD_SIGMA, LOQ_SIGMA = 3.0, 10.0
MIN_BLANKS = 3


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
    """'<LOD', '<LOQ' or 'ok' per result ('n/a' where no limit is known)."""
    flags = pd.DataFrame("n/a", index=predictions.index, columns=predictions.columns, dtype=object)
    if limits is None:
        return flags
    for name in predictions.columns:
        lod, loq = (float(limits.loc[name, c]) if name in limits.index else np.nan for c in ("lod", "loq"))
        if np.isfinite(loq):
            value = predictions[name].to_numpy()
            flags[name] = np.where(value < lod, "<LOD", np.where(value < loq, "<LOQ", "ok"))
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
