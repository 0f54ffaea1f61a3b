"""Per-analyte peak parameters (centre, FWHM, height of the main isotope) as training targets and outputs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError

PEAK_COLUMNS = ("centre", "width", "amplitude")
REQUIRED = ("id", "species", "mass_number", *PEAK_COLUMNS)


def main_isotopes(peaks: pd.DataFrame, analytes: list[str]) -> dict[str, int]:
    """Mass number of each analyte's strongest singly charged peak in a peak table (absent analytes left out)."""
    missing = [c for c in REQUIRED if c not in peaks.columns]
    if missing:
        raise InputError(f"peak table lacks column(s) {', '.join(missing)} (needs {', '.join(REQUIRED)})")
    rows = peaks[peaks["species"].astype(str).isin(analytes)]
    if "charge" in rows.columns:
        rows = rows[rows["charge"] == 1]
    if "kind" in rows.columns:
        rows = rows[~rows["kind"].astype(str).isin(["oxide", "doubly_charged"])]
    mean = rows.groupby([rows["species"].astype(str), "mass_number"], observed=True)["amplitude"].mean()
    return {species: int(group.idxmax()[1]) for species, group in mean.groupby(level=0)}


def peak_targets(peaks: pd.DataFrame, ids: list[str], analytes: list[str],
                 isotopes: dict[str, int] | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """(n, K, 3) centre / width / amplitude of each analyte's main isotope per spectrum (NaN if absent)."""
    isotopes = isotopes or main_isotopes(peaks, analytes)
    out = np.full((len(ids), len(analytes), 3), np.nan)
    rows = peaks[peaks["species"].astype(str).isin(list(isotopes))]
    if "charge" in rows.columns:
        rows = rows[rows["charge"] == 1]
    if "kind" in rows.columns:
        rows = rows[~rows["kind"].astype(str).isin(["oxide", "doubly_charged"])]
    position = pd.Index(ids).get_indexer(rows["id"].astype(str))
    column = {name: k for k, name in enumerate(analytes)}
    for (i, species, number), values in zip(zip(position, rows["species"].astype(str), rows["mass_number"]),
                                            rows[list(PEAK_COLUMNS)].to_numpy(float)):
        if i >= 0 and isotopes.get(species) == int(number):
            out[i, column[species]] = values
    return out, isotopes


def peak_table(ids: list[str], analytes: list[str], isotopes: dict[str, int], values: np.ndarray) -> pd.DataFrame:
    """Long table id, species, mass_number, centre, width, amplitude from an (n, K, 3) array."""
    records = [(sid, name, isotopes[name], *values[i, k]) for i, sid in enumerate(ids)
               for k, name in enumerate(analytes) if name in isotopes]
    return pd.DataFrame(records, columns=["id", "species", "mass_number", *PEAK_COLUMNS])
