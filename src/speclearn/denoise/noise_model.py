"""Signal-dependent noise model estimated from the data: variance = gain * (mean - offset) + read_variance.

Counting detectors give Poisson noise (variance proportional to the counts above the dark level)
plus read noise (a constant variance); absorbance or other processed spectra give gain ~ 0. The
`offset` is the non-zero-mean floor of the spectra (dark current, pedestal, stray continuum), the
part of every spectrum that carries no photons of the sample; it is estimated, not assumed zero.

Estimation needs no clean spectra:
- with replicates: the channel means and variances of each group of replicates;
- from single spectra: local means (3-channel moving average) and the variance of the second
  difference x_i - (x_{i-1} + x_{i+1}) / 2, which removes smooth signal (its variance is 1.5 sigma^2).
Pairs (mean, variance) are binned by mean; a line through the bin medians (divided by the median of
chi-square / dof, so they estimate the variance itself, robust to peaks) gives gain and intercept.
The generalised Anscombe transform then makes the noise about unit-variance Gaussian, which is what
the networks see; with gain ~ 0 it reduces to dividing by the read-noise SD.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import chi2

N_BINS = 30
#: relative Poisson share under which the noise is treated as Gaussian (gain * mean < this * read variance)
POISSON_SHARE = 0.05


@dataclass
class NoiseModel:
    """variance(mean) = gain * (mean - offset) + read_variance, on the spectra's own intensity scale."""

    gain: float
    read_variance: float
    offset: float

    @property
    def poisson(self) -> bool:
        return self.gain > 0

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    def summed(self, k: int) -> "NoiseModel":
        """The model of sums of `k` independent channels (or spectra) that each follow this one."""
        return NoiseModel(self.gain, k * self.read_variance, k * self.offset)

    def forward(self, X):
        """Variance-stabilised spectra (noise SD ~ 1): the generalised Anscombe transform."""
        if not self.poisson:
            return (X - self.offset) / np.sqrt(self.read_variance)
        inside = self.gain * (X - self.offset) + 0.375 * self.gain ** 2 + self.read_variance
        return 2.0 / self.gain * np.sqrt(np.maximum(inside, 0.0))


def _line_through_bins(means: np.ndarray, variances: np.ndarray, dof: float) -> tuple[float, float]:
    """(slope, intercept) of a line through the medians of `variances` (each with `dof` degrees of
    freedom) in quantile bins of `means`."""
    means, variances = means.ravel(), variances.ravel()
    finite = np.isfinite(means) & np.isfinite(variances)
    means, variances = means[finite], variances[finite]
    edges = np.unique(np.quantile(means, np.linspace(0, 1, N_BINS + 1)))
    which = np.clip(np.searchsorted(edges, means, side="right") - 1, 0, max(len(edges) - 2, 0))
    centres, medians, weights = [], [], []
    for b in np.unique(which):
        inside = which == b
        centres.append(np.median(means[inside]))
        medians.append(np.median(variances[inside]))
        weights.append(inside.sum())
    if len(centres) < 2:
        return 0.0, float(np.median(variances)) / (chi2.median(dof) / dof)
    slope, intercept = np.polyfit(centres, np.asarray(medians) / (chi2.median(dof) / dof), 1, w=np.sqrt(weights))
    return float(slope), float(intercept)


def estimate_noise_model(X: np.ndarray, codes: np.ndarray | None = None) -> NoiseModel:
    """Fit `NoiseModel` to spectra `X` (rows), from replicate groups `codes` when given, else from
    each spectrum's second difference."""
    X = np.asarray(X, dtype=np.float64)
    if codes is not None and np.bincount(codes).max() >= 2:
        counts = np.bincount(codes)
        usable = np.flatnonzero(counts >= 2)
        means = np.stack([X[codes == g].mean(axis=0) for g in usable])
        variances = np.stack([X[codes == g].var(axis=0, ddof=1) for g in usable])
        dof = float(np.median(counts[usable])) - 1
    else:
        means = (X[:, :-2] + X[:, 1:-1] + X[:, 2:]) / 3.0
        variances = (X[:, 1:-1] - 0.5 * (X[:, :-2] + X[:, 2:])) ** 2 / 1.5
        dof = 1.0
    slope, intercept = _line_through_bins(means, variances, dof)
    offset = float(np.quantile(means, 0.01))
    floor = max(float(np.median(variances)) * 1e-6, np.finfo(float).tiny)
    if slope <= 0 or slope * max(float(np.median(means)) - offset, 0.0) < POISSON_SHARE * max(intercept, floor):
        variance = float(np.median(variances)) / (chi2.median(dof) / dof)
        return NoiseModel(gain=0.0, read_variance=max(variance, floor), offset=float(np.mean(X)))
    read_variance = max(intercept + slope * offset, floor)
    return NoiseModel(gain=slope, read_variance=read_variance, offset=offset)
