"""Statistical process control over a run: EWMA and two-sided tabular CUSUM on standardised features.

Features are standardised against reference spectra (mean 0, sd 1 when in control). Each chart
returns, per spectrum, a statistic already divided by its control limit, so > 1 means out of control.
"""
from __future__ import annotations

import numpy as np


def ewma_chart(z: np.ndarray, *, lam: float = 0.2, limit: float = 3.0) -> np.ndarray:
    """(n, features) standardised values -> (n, features) |EWMA| / (limit * sd of the EWMA at step t)."""
    z = np.asarray(z, float).reshape(len(z), -1)
    out = np.empty_like(z)
    level = np.zeros(z.shape[1])
    for t, row in enumerate(z):
        level = lam * row + (1 - lam) * level
        sd = np.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * (t + 1))))
        out[t] = np.abs(level) / (limit * sd)
    return out


def cusum_chart(z: np.ndarray, *, k: float = 0.5, h: float = 5.0) -> np.ndarray:
    """(n, features) standardised values -> (n, features) max(C+, C-) / h (tabular CUSUM, slack k)."""
    z = np.asarray(z, float).reshape(len(z), -1)
    out = np.empty_like(z)
    upper = lower = np.zeros(z.shape[1])
    for t, row in enumerate(z):
        upper = np.maximum(0, upper + row - k)
        lower = np.maximum(0, lower - row - k)
        out[t] = np.maximum(upper, lower) / h
    return out


def shewhart_chart(z: np.ndarray, *, limit: float = 3.0) -> np.ndarray:
    """(n, features) -> |z| / limit: the plain control chart (each point against fixed limits)."""
    return np.abs(np.asarray(z, float).reshape(len(z), -1)) / limit


def first_alarm(statistic: np.ndarray, start: int = 0) -> int | None:
    """Index of the first spectrum at or after `start` whose statistic exceeds 1 (None if none)."""
    hits = np.flatnonzero(np.asarray(statistic)[start:] > 1)
    return int(start + hits[0]) if hits.size else None
