"""ICP-MS peak models of the quantifiers: interference candidates, Gaussian templates, peak-model estimation,
and the instrument peak shape (pseudo-Voigt core, low-mass tail) fitted to training spectra.

Isotope patterns come from `speclearn.physics.icpms` (the physics module the simulator uses too); peak
width and mass calibration are estimated from the training spectra themselves; nothing assumes which
simulator, if any, produced the spectra.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import least_squares, nnls

from speclearn.core.errors import InputError
from speclearn.physics.icpms import (COMMON_INTERFERENCES, COMMON_INTERFERENT_ELEMENTS, ICPMSInstrument, ion_pattern,
                                     parse_species, render_peaks)

#: instrument peak-shape parameters fitted at training: name -> (lower, upper) bound
SHAPE_BOUNDS = {"fwhm_intercept": (0.02, 2.0), "fwhm_slope": (-0.004, 0.008), "eta": (0.0, 1.0),
                "tail_fraction": (0.0, 0.3), "tail_length": (0.01, 0.5)}
#: training spectra (evenly spaced) averaged, after shift alignment, for the shape fit
SHAPE_SPECTRA = 100
#: a species joins the mass-bias reference group when its log amount follows the group's common factor and
#: linear-in-log-m/z term within this sd over the training spectra
GROUP_TOLERANCE = 0.05
#: seed pairs the reference-group search grows from
GROUP_SEEDS = 10


def check_analytes(names: list[str], axis: np.ndarray) -> None:
    """Analytes for the physics methods must be element symbols measurable on `axis`."""
    for column, name in enumerate(names):
        try:
            counts, charge = parse_species(name)
        except InputError as err:
            raise InputError(f"target {name!r} is not an element symbol, so the physics inversion cannot "
                             f"model it ({err.problem}); use a learned method (pls, rf, bss, caemmt)",
                             column=column + 2) from None
        if len(counts) != 1 or charge != 1 or next(iter(counts.values())) != 1:
            raise InputError(f"target {name!r} must be a single element symbol", column=column + 2)
        masses = [m for m, _, _ in ion_pattern(name)]
        if max(masses) < axis.min() or min(masses) > axis.max():
            raise InputError(f"no isotope of {name} lies on the m/z axis {axis.min():g}..{axis.max():g}",
                             column=column + 2)


@dataclass(frozen=True)
class PeakModel:
    """Peak shape: Gaussian of sigma = width0 + width_slope * m/z, centred at m/z + shift0 + shift_slope * m/z."""

    width0: float
    width_slope: float = 0.0
    shift0: float = 0.0
    shift_slope: float = 0.0

    def sigma(self, mz: np.ndarray | float) -> np.ndarray:
        return np.maximum(self.width0 + self.width_slope * np.asarray(mz, float), 1e-4)

    def centre(self, mz: np.ndarray | float) -> np.ndarray:
        return np.asarray(mz, float) + self.shift0 + self.shift_slope * np.asarray(mz, float)

    def as_dict(self) -> dict[str, float]:
        return {"width0": self.width0, "width_slope": self.width_slope, "shift0": self.shift0,
                "shift_slope": self.shift_slope}


def render(species: str, axis: np.ndarray, peaks: PeakModel, *, shift: float = 0.0,
           width_scale: float = 1.0, derivative: str | None = None) -> np.ndarray:
    """Unit-amount signal of `species` on `axis` (each isotope peak has area = its fraction, in Da).

    derivative: None, 'shift' (d/d shift) or 'width' (d/d width_scale) for first-order corrections.
    """
    out = np.zeros_like(axis, dtype=float)
    for mz, fraction, _ in ion_pattern(species):
        centre, sigma = peaks.centre(mz) + shift, peaks.sigma(mz) * width_scale
        lo, hi = np.searchsorted(axis, [centre - 6 * sigma, centre + 6 * sigma])
        if hi <= lo:
            continue
        u = (axis[lo:hi] - centre) / sigma
        g = fraction * np.exp(-0.5 * u * u) / (sigma * np.sqrt(2 * np.pi))
        if derivative == "shift":
            g = g * u / sigma
        elif derivative == "width":
            g = g * (u * u - 1.0) / width_scale
        out[lo:hi] += g
    return out


def template_matrix(species: list[str], axis: np.ndarray, peaks: PeakModel, **kwargs) -> np.ndarray:
    """(n_species, n_channels) templates."""
    return np.stack([render(s, axis, peaks, **kwargs) for s in species]) if species else np.zeros((0, axis.size))


class WeightedGrams:
    """Weighted Gram matrices D^T diag(w) D of a design D (rows, columns) for many weight vectors at once.

    Templates are sparse, so only the pairs of columns that overlap on some row get a (sparse) product column.
    """

    def __init__(self, design: np.ndarray):
        nonzero = design != 0
        self.pairs = np.nonzero(np.triu((nonzero.T.astype(np.int32) @ nonzero.astype(np.int32)) > 0))
        self.products = sparse.csc_matrix(design[:, self.pairs[0]] * design[:, self.pairs[1]])
        self.columns = design.shape[1]

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        """(n, columns, columns) Gram matrices for the rows of `weights` (n, rows)."""
        flat = np.asarray((self.products.T @ weights.T).T)
        grams = np.zeros((len(weights), self.columns, self.columns))
        i, j = self.pairs
        grams[:, i, j] = flat
        grams[:, j, i] = flat
        return grams


def candidate_interferences(analytes: list[str], internal_standard: str | None, axis: np.ndarray,
                            extra: tuple[str, ...] = COMMON_INTERFERENCES,
                            elements: tuple[str, ...] = COMMON_INTERFERENT_ELEMENTS) -> list[str]:
    """Known interferences, common isobaric elements, and the oxides and doubly charged ions of all
    these elements and of the analytes, where they land on `axis`."""
    names = list(extra) + list(elements)
    for element in [*analytes, *([internal_standard] if internal_standard else []), *elements]:
        names += [f"{element}O", f"{element}++"]
    seen = set(analytes) | ({internal_standard} if internal_standard else set())
    keep = []
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        masses = np.array([m for m, _, _ in ion_pattern(name)])
        if ((masses > axis.min()) & (masses < axis.max())).any():
            keep.append(name)
    return keep


def _fit_gaussian(axis: np.ndarray, y: np.ndarray, centre: float, half_window: float):
    """Least-squares Gaussian + constant around `centre`; returns (centre, sigma, area, r2) or None."""
    lo, hi = np.searchsorted(axis, [centre - half_window, centre + half_window])
    x, v = axis[lo:hi], y[lo:hi]
    if v.size < 8 or v.max() <= 0:
        return None
    base0 = float(np.percentile(v, 10))
    height = float(v.max() - base0)
    if height <= 0:
        return None
    start = [float(x[np.argmax(v)]), half_window / 4, height, base0]

    def residual(p):
        return p[2] * np.exp(-0.5 * ((x - p[0]) / p[1]) ** 2) + p[3] - v

    fit = least_squares(residual, start, bounds=([x[0], 1e-3, 0, -np.inf], [x[-1], half_window, np.inf, np.inf]))
    r2 = 1 - np.sum(fit.fun ** 2) / max(np.sum((v - v.mean()) ** 2), 1e-300)
    centre_fit, sigma, amp = fit.x[:3]
    return float(centre_fit), float(sigma), float(amp * sigma * np.sqrt(2 * np.pi)), float(r2)


def estimate_peak_model(axis: np.ndarray, mean_spectrum: np.ndarray, elements: list[str]) -> PeakModel:
    """Estimate peak width and mass calibration from isolated strong isotope peaks of the mean spectrum.

    Each element's most abundant isotope is fitted with a Gaussian; width and centre offset are then
    fitted linearly in m/z (a constant if fewer than three good peaks).
    """
    step = float(np.median(np.abs(np.diff(axis))))
    results = []
    for element in elements:
        mz, _, _ = max(ion_pattern(element), key=lambda p: p[1])
        if not axis.min() + 1 < mz < axis.max() - 1:
            continue
        fit = _fit_gaussian(axis, mean_spectrum, mz, 0.45)
        if fit is not None and fit[3] > 0.9 and abs(fit[0] - mz) < 0.3 and fit[1] > 1.5 * step:
            results.append((mz, fit[0] - mz, fit[1], fit[2]))
    if not results:
        raise InputError("could not find any isolated analyte or internal-standard peak in the training "
                         "spectra to estimate the peak width; are these ICP-MS spectra on an m/z axis?")
    mz, offset, sigma, area = (np.array(c) for c in zip(*results))
    if len(results) >= 3 and np.ptp(mz) > 20:
        w = np.sqrt(area / area.max())
        width = np.polyfit(mz, sigma, 1, w=w)
        shift = np.polyfit(mz, offset, 1, w=w)
        return PeakModel(width0=float(width[1]), width_slope=float(width[0]),
                         shift0=float(shift[1]), shift_slope=float(shift[0]))
    return PeakModel(width0=float(np.median(sigma)), shift0=float(np.median(offset)))


def refine_peak_model(axis: np.ndarray, spectrum: np.ndarray, species: list[str], start: PeakModel) -> PeakModel:
    """Refine width and mass calibration by fitting all templates (NNLS amounts) to `spectrum`.

    Variable projection: for given peak parameters the amounts are the NNLS solution, so the
    nonlinear search runs over the four peak-model parameters only.
    """
    from scipy.optimize import nnls

    span = float(np.ptp(axis))

    def model(p: np.ndarray) -> PeakModel:
        return PeakModel(width0=float(p[0]), width_slope=float(p[1] / span), shift0=float(p[2]),
                         shift_slope=float(p[3] / span))

    region = np.flatnonzero((template_matrix(species, axis, start) > 0).any(axis=0))
    x = (axis[region] - axis.min()) / max(span, 1e-12)
    y = spectrum[region]

    def residual(p: np.ndarray) -> np.ndarray:
        design = np.concatenate([template_matrix(species, axis, model(p))[:, region], np.stack([1 - x, x])]).T
        scale = np.maximum(np.linalg.norm(design, axis=0), 1e-300)
        return design @ (nnls(design / scale, y)[0] / scale) - y

    p0 = np.array([start.width0, start.width_slope * span, start.shift0, start.shift_slope * span])
    sigma = float(start.sigma(axis.mean()))
    lower = [0.2 * start.width0 if start.width0 > 0 else 1e-4, -abs(p0[1]) - sigma, p0[2] - sigma, p0[3] - sigma]
    upper = [5 * max(start.width0, sigma), abs(p0[1]) + sigma, p0[2] + sigma, p0[3] + sigma]
    fit = least_squares(residual, p0, bounds=(lower, upper), x_scale=[sigma, sigma, sigma, sigma],
                        diff_step=1e-3, max_nfev=60)
    return model(fit.x)


# --- instrument peak shape ---------------------------------------------------------------------------
def instrument_from(shape: dict[str, float], axis: np.ndarray) -> ICPMSInstrument:
    """Peak-shape instrument (no wings, flat transmission) on `axis` from fitted shape parameters."""
    return ICPMSInstrument(mz_min=float(axis.min()), mz_max=float(axis.max()), n_channels=axis.size,
                           shape="pseudo_voigt", abundance_sensitivity_low=0.0, abundance_sensitivity_high=0.0,
                           transmission_slope=0.0, transmission_curvature=0.0, **shape)


def shape_templates(species: list[str], axis: np.ndarray, instrument: ICPMSInstrument,
                    shift: float = 0.0) -> np.ndarray:
    """(n_species, channels) unit-amount signals: each isotopologue's core peak height = its fraction."""
    out = np.zeros((len(species), axis.size))
    for row, name in enumerate(species):
        pattern = np.array([(mz, fraction) for mz, fraction, _ in ion_pattern(name)])
        out[row] = pattern[:, 1] @ render_peaks(axis, pattern[:, 0] + shift, instrument.fwhm(pattern[:, 0]),
                                                instrument)
    return out


def shape_design(species: list[str], axis: np.ndarray, shape: dict[str, float],
                 offset: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`shape_templates` at mass offset `offset` and their derivatives (central differences) with respect to
    a mass shift (per m/z) and to the log of a common FWHM scale."""
    instrument = instrument_from(shape, axis)
    step = float(np.median(np.diff(axis)))
    T = shape_templates(species, axis, instrument, offset)
    d_shift = (shape_templates(species, axis, instrument, offset + 0.5 * step)
               - shape_templates(species, axis, instrument, offset - 0.5 * step)) / step
    wide, narrow = (instrument_from({**shape, "fwhm_intercept": shape["fwhm_intercept"] * f,
                                     "fwhm_slope": shape["fwhm_slope"] * f}, axis) for f in (1.05, 1 / 1.05))
    d_width = (shape_templates(species, axis, wide, offset) - shape_templates(species, axis, narrow, offset)) \
        / (2 * np.log(1.05))
    return T, d_shift, d_width


def log_mass(species: list[str], reference: float) -> np.ndarray:
    """Abundance-weighted mean ln(m/z / reference) of each species (its mass-bias lever)."""
    return np.array([sum(f * np.log(mz / reference) for mz, f, _ in ion_pattern(s))
                     / sum(f for _, f, _ in ion_pattern(s)) for s in species])


def weighted_nnls(D: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Non-negative x minimising sum w (x @ D - y)^2 (columns scaled to unit weighted norm)."""
    A = D.T * np.sqrt(w)[:, None]
    scale = np.maximum(np.linalg.norm(A, axis=0), 1e-300)
    return nnls(A / scale, y * np.sqrt(w), maxiter=50 * A.shape[1])[0] / scale


def fit_peak_shape(axis: np.ndarray, X: np.ndarray, shifts: np.ndarray, species: list[str], peaks: PeakModel,
                   region: np.ndarray, spectra: int = SHAPE_SPECTRA) -> tuple[dict[str, float], float]:
    """Shape parameters (`SHAPE_BOUNDS`) and a common mass offset fitted to the shift-aligned mean of
    `spectra` evenly spaced rows of `X` (their mass shifts: `shifts`).

    Nonlinear least squares over the shape parameters with all amounts (and a linear baseline) by NNLS
    on `region` channels; `peaks` (a Gaussian model of the same spectra) gives the starting width.
    """
    rows = np.linspace(0, len(X) - 1, min(spectra, len(X))).astype(int)
    mean = np.mean([np.interp(axis + d, axis, row) for row, d in zip(X[rows], shifts[rows])], axis=0)
    fwhm = peaks.sigma(axis.mean()) * 2 * np.sqrt(2 * np.log(2))
    start = {"fwhm_intercept": float(fwhm), "fwhm_slope": 0.0, "eta": 0.1, "tail_fraction": 0.01,
             "tail_length": 0.05}
    names = list(start)
    x = (axis[region] - axis.min()) / max(np.ptp(axis), 1e-12)
    baseline = np.stack([1 - x, x])

    def residual(p: np.ndarray) -> np.ndarray:
        shape = dict(zip(names, p[:-1]))
        D = np.concatenate([shape_templates(species, axis, instrument_from(shape, axis), p[-1])[:, region], baseline])
        return weighted_nnls(D, mean[region], np.ones(len(region))) @ D - mean[region]

    lower = [SHAPE_BOUNDS[n][0] for n in names] + [-fwhm]
    upper = [SHAPE_BOUNDS[n][1] for n in names] + [fwhm]
    fit = least_squares(residual, [start[n] for n in names] + [0.0], bounds=(lower, upper), diff_step=1e-3,
                        x_scale=[fwhm, 1e-3, 0.1, 0.01, 0.02, 0.01], max_nfev=80)
    return dict(zip(names, map(float, fit.x[:-1]))), float(fit.x[-1])


# --- mass bias -----------------------------------------------------------------------------------------
def reference_group(amounts: np.ndarray, lever: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mass-bias reference group (species indices) and its relative weights from training amounts (no bias).

    amounts: (spectra, species); lever: `log_mass` of every species; candidates: indices of the species
    that may join (not the analytes). Forward selection from each of the `GROUP_SEEDS` pairs of
    candidates (amount > 0 in every spectrum) whose log ratio varies least: per spectrum, a common factor
    and a bias are fitted to the group's log amounts; the candidate this fit predicts best joins while its
    residual sd is within `GROUP_TOLERANCE`. The largest group is kept; fewer than three members or a lever
    span under 0.3 give none (empty arrays).
    """
    none = np.zeros(0, int), np.zeros(0)
    candidates = np.array([j for j in candidates if (amounts[:, j] > 0).all()], int)
    if len(candidates) < 3:
        return none
    L = np.log(amounts[:, candidates])
    L = L - np.median(L, axis=0)
    lever = lever[candidates]
    ratio_sd = np.std(L[:, :, None] - L[:, None, :], axis=0)
    ratio_sd[np.abs(lever[:, None] - lever[None, :]) < 0.05] = np.inf  # a pair must span some mass
    best: list[int] = []
    ratio_sd[np.tril_indices(len(candidates))] = np.inf  # each pair once
    for pair in np.argsort(ratio_sd, axis=None)[:GROUP_SEEDS]:
        group = list(np.unravel_index(pair, ratio_sd.shape))
        if not np.isfinite(ratio_sd[group[0], group[1]]):
            break
        while len(group) < len(candidates):
            coef = group_fit(L[:, group], lever[group])
            rest = [j for j in range(len(candidates)) if j not in group]
            spread = np.std(L[:, rest] - coef[0][:, None] - coef[1][:, None] * lever[rest][None, :], axis=0)
            if spread.min() > GROUP_TOLERANCE:
                break
            group.append(rest[int(np.argmin(spread))])
        if len(group) > len(best):
            best = group
    if len(best) < 3 or np.ptp(lever[best]) < 0.3:
        return none
    coef = group_fit(L[:, best], lever[best])
    members = candidates[best]
    relative = np.exp(np.median(np.log(amounts[:, members]) - coef[0][:, None] - coef[1][:, None] * lever[best],
                                axis=0))
    return members, relative / relative.sum()


def group_fit(L: np.ndarray, lever: np.ndarray) -> np.ndarray:
    """(2, spectra) least-squares common log factor and bias of log amounts L (spectra, members)."""
    return np.linalg.lstsq(np.stack([np.ones(len(lever)), lever], axis=1), L.T, rcond=None)[0]
