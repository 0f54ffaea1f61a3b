"""LIBS plasma emission physics: a NIST line table (from `libskit`), Boltzmann-Saha line intensities,
Voigt line rendering onto an instrument axis and a bremsstrahlung/recombination continuum.

Wavelengths are vacuum wavelengths in nm (as in libskit's NIST tables). Electron densities are in
m^-3 (libskit's Saha function uses m^-3; 1e23 m^-3 = 1e17 cm^-3).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import voigt_profile

#: Electron densities of Stark widths are quoted at this reference (1e17 cm^-3).
STARK_REFERENCE_DENSITY_M3 = 1e23
#: Stark FWHM (nm at the reference density) for lines libskit has no Stark data for, at 400 nm;
#: scaled with wavelength squared.
DEFAULT_STARK_FWHM_NM = 0.02
#: Stark FWHMs from the table are clipped to this range (nm at the reference density).
STARK_FWHM_RANGE_NM = (0.002, 0.2)
BOLTZMANN_EV = 8.617333262e-5
HC_EV_NM = 1239.841984
# free-bound (recombination) vs free-free (bremsstrahlung) weights of the continuum (Kramers-like).
_FREE_BOUND, _FREE_FREE = 1.5, 1.0
LINE_COLUMNS = ["element", "ion", "wavelength_nm", "aki", "ei_ev", "ek_ev", "gi", "gk", "stark_fwhm_nm", "mass_u"]


def _libskit_data() -> Path:
    import libskit
    return Path(libskit.__file__).parent / "data"


def roman(ion: int) -> str:
    return {1: "I", 2: "II", 3: "III"}[int(ion)]


@lru_cache(maxsize=4)
def _nist_lines(elements: tuple[str, ...]) -> pd.DataFrame:
    """Lines of neutral and singly ionised `elements` with Aki, levels and statistical weights."""
    frame = pd.read_csv(_libskit_data() / "nist_asd_lines_vacuum.csv", low_memory=False,
                        usecols=["element", "sp_num", "ritz_wl_vac(nm)", "Aki(s^-1)", "Ei(eV)", "Ek(eV)",
                                 "g_i", "g_k"])
    frame = frame[frame["element"].isin(elements) & frame["sp_num"].isin([1, 2])]
    for column in ["ritz_wl_vac(nm)", "Aki(s^-1)", "Ei(eV)", "Ek(eV)", "g_i", "g_k"]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame = frame.dropna().rename(columns={"sp_num": "ion", "ritz_wl_vac(nm)": "wavelength_nm",
                                           "Aki(s^-1)": "aki", "Ei(eV)": "ei_ev", "Ek(eV)": "ek_ev",
                                           "g_i": "gi", "g_k": "gk"})
    frame = frame[(frame["aki"] > 0) & (frame["gk"] > 0)]
    return frame.drop_duplicates(["element", "ion", "wavelength_nm"]).reset_index(drop=True)


@lru_cache(maxsize=4)
def _stark_widths(temperature: float) -> pd.Series:
    """libskit's Stark FWHM (nm at 1e23 m^-3 and `temperature`), keyed by (element, ion, wavelength 0.01 nm)."""
    frame = pd.read_csv(_libskit_data() / "lines_processed_all.csv")
    log_t = np.log10(temperature)
    width = 10 ** (frame["electron a0"] + frame["electron a1"] * log_t + frame["electron a2"] * log_t ** 2) / 10
    width = width * (STARK_REFERENCE_DENSITY_M3 * 1e-6) / frame["N (cm-3)"]
    key = pd.MultiIndex.from_arrays([frame["element"], frame["sp_num"], frame["ritz_wl_vac(nm)"].round(2)])
    return pd.Series(width.to_numpy(), index=key).groupby(level=[0, 1, 2]).median()


def partition_function(element: str, ion: int, temperature: np.ndarray) -> np.ndarray:
    """Partition function U(T) of `element` in stage `ion` (1 neutral, 2 singly ionised), libskit levels."""
    from libskit import calculate_partition_function
    name = f"{element} {roman(ion)}"
    return np.array([calculate_partition_function(name, float(t)) for t in np.ravel(temperature)]).reshape(
        np.shape(temperature))


def saha_ratio(element: str, temperature: np.ndarray, electron_density: np.ndarray) -> np.ndarray:
    """n(ion II) / n(ion I) from libskit's Saha function S(T) (m^-3): S(T) / n_e."""
    from libskit import calculate_saha_function
    temperature = np.asarray(temperature, dtype=float)
    saha = np.array([calculate_saha_function(element, 0, float(t)) for t in temperature.ravel()])
    return saha.reshape(temperature.shape) / np.asarray(electron_density, dtype=float)


@lru_cache(maxsize=8)
def line_table(elements: tuple[str, ...], wavelength_range: tuple[float, float] = (200.0, 1000.0), *,
               min_strength: float = 1e-3, temperature: float = 10000.0) -> pd.DataFrame:
    """The emission lines used by the simulator, one row per line (columns `LINE_COLUMNS`).

    Lines come from libskit's NIST ASD table (neutral and singly ionised stages). A line is kept when
    its Boltzmann strength A g exp(-Ek/kT) / lambda at `temperature` is at least `min_strength`
    times the strongest line of the same element and stage in range. Stark FWHMs (at 1e23 m^-3) are
    libskit's where it has them, else `DEFAULT_STARK_FWHM_NM` scaled with wavelength squared.
    """
    import periodictable
    lines = _nist_lines(tuple(sorted(elements)))
    low, high = wavelength_range
    lines = lines[(lines["wavelength_nm"] >= low) & (lines["wavelength_nm"] <= high)].copy()
    strength = lines["aki"] * lines["gk"] * np.exp(-lines["ek_ev"] / (BOLTZMANN_EV * temperature)) \
        / lines["wavelength_nm"]
    best = strength.groupby([lines["element"], lines["ion"]]).transform("max")
    lines = lines[strength >= min_strength * best].copy()
    key = pd.MultiIndex.from_arrays([lines["element"], lines["ion"], lines["wavelength_nm"].round(2)])
    known = _stark_widths(temperature).reindex(key).to_numpy()
    default = DEFAULT_STARK_FWHM_NM * (lines["wavelength_nm"].to_numpy() / 400.0) ** 2
    lines["stark_fwhm_nm"] = np.clip(np.where(np.isfinite(known), known, default), *STARK_FWHM_RANGE_NM)
    lines["mass_u"] = [periodictable.elements.symbol(e).mass for e in lines["element"]]
    return lines.sort_values("wavelength_nm").reset_index(drop=True)[LINE_COLUMNS]


def line_emissivity(lines: pd.DataFrame, atoms: pd.DataFrame, temperature: np.ndarray,
                    electron_density: np.ndarray) -> np.ndarray:
    """(n, n_lines) integrated line emissivities (energy units) in local thermodynamic equilibrium.

    atoms: (n, elements) relative number densities of each element's atoms (all stages).
    Stage populations follow Saha (n_II / n_I = S(T) / n_e), level populations Boltzmann:
    I = n_stage / U_stage(T) * g_k A_ki exp(-E_k / kT) * hc / lambda.
    """
    temperature = np.asarray(temperature, dtype=float)
    electron_density = np.asarray(electron_density, dtype=float)
    out = np.zeros((temperature.size, len(lines)))
    kt = BOLTZMANN_EV * temperature[:, None]
    for element in lines["element"].unique():
        ratio = saha_ratio(element, temperature, electron_density)
        stage_fraction = {1: 1.0 / (1.0 + ratio), 2: ratio / (1.0 + ratio)}
        amount = atoms[element].to_numpy(dtype=float) if element in atoms else np.zeros(temperature.size)
        for ion in (1, 2):
            rows = np.flatnonzero((lines["element"] == element).to_numpy() & (lines["ion"] == ion).to_numpy())
            if rows.size == 0:
                continue
            sub = lines.iloc[rows]
            population = amount * stage_fraction[ion] / partition_function(element, ion, temperature)
            factor = (sub["gk"] * sub["aki"] * HC_EV_NM / sub["wavelength_nm"]).to_numpy()
            out[:, rows] = population[:, None] * factor[None, :] * np.exp(-sub["ek_ev"].to_numpy()[None, :] / kt)
    return out


def continuum_shape(axis: np.ndarray, temperature: np.ndarray, electron_density: np.ndarray, *,
                    nodes: int = 128) -> np.ndarray:
    """(n, channels) recombination + bremsstrahlung emissivity per nm (Kramers form, n_i = n_e):
    n_e^2 T^-1/2 lambda^-2 [xi_fb (1 - exp(-hc/lambda kT)) + G_ff exp(-hc/lambda kT)].

    The smooth shape is evaluated at `nodes` wavelengths and interpolated linearly (error < 1e-3)."""
    axis = np.asarray(axis, dtype=float)
    grid = np.linspace(axis.min(), axis.max(), nodes) if axis.size > nodes else axis
    temperature = np.asarray(temperature, dtype=float)[:, None]
    electron_density = np.asarray(electron_density, dtype=float)[:, None]
    boltzmann = np.exp(-HC_EV_NM / (grid[None, :] * BOLTZMANN_EV * temperature))
    shape = (electron_density / STARK_REFERENCE_DENSITY_M3) ** 2 / np.sqrt(temperature / 1e4) \
        * (400.0 / grid[None, :]) ** 2 * (_FREE_BOUND + (_FREE_FREE - _FREE_BOUND) * boltzmann)
    if grid is axis:
        return shape
    position = np.clip(np.searchsorted(grid, axis) - 1, 0, nodes - 2)
    frac = (axis - grid[position]) / (grid[position + 1] - grid[position])
    hat = sparse.csr_matrix((np.concatenate([1 - frac, frac]),
                             (np.concatenate([position, position + 1]), np.tile(np.arange(axis.size), 2))),
                            shape=(nodes, axis.size))
    return np.asarray((hat.T @ shape.T).T)


def channel_widths(axis: np.ndarray) -> np.ndarray:
    """Width of each channel: the local step, taken within each detector (steps > 5x the median are gaps)."""
    step = np.diff(axis)
    gap = step > 5 * np.median(step)
    step = np.where(gap, np.nan, step)
    left = np.concatenate([[np.nan], step])
    right = np.concatenate([step, [np.nan]])
    width = np.where(np.isnan(left), right, np.where(np.isnan(right), left, 0.5 * (left + right)))
    return width


def profile_matrix(wavelength: np.ndarray, gauss_fwhm: np.ndarray, lorentz_fwhm: np.ndarray,
                   axis: np.ndarray, *, subsamples: int | None = None) -> sparse.csr_matrix:
    """(n_lines, channels) sparse matrix: each line's Voigt profile integrated over each channel.

    Row sums are ~1 for a line well inside a detector (the line area lands in the channels), so
    `emissivity @ matrix` gives counts per channel. The profile is averaged over `subsamples`
    points per channel (default: enough for >= 2.5 points per Gaussian FWHM, so lines narrower than
    a channel keep their area) and cut at +-(3 Gaussian FWHM + 30 Lorentzian FWHM), which keeps
    > 98 % of the area.
    """
    width = channel_widths(axis)
    if subsamples is None:
        at_line = np.interp(wavelength, axis, np.nan_to_num(width, nan=np.nanmedian(width)))
        subsamples = int(np.clip(np.ceil(2.5 * np.max(at_line / np.maximum(gauss_fwhm, 1e-6))), 1, 9))
    sigma = np.maximum(gauss_fwhm, 1e-6) / (2 * np.sqrt(2 * np.log(2)))
    gamma = lorentz_fwhm / 2
    half = 3 * gauss_fwhm + 30 * lorentz_fwhm + 2 * np.nanmax(width)
    lo = np.searchsorted(axis, wavelength - half)
    hi = np.searchsorted(axis, wavelength + half)
    count = hi - lo
    rows = np.repeat(np.arange(wavelength.size), count)
    cols = np.repeat(lo, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    offsets = (np.arange(subsamples) + 0.5) / subsamples - 0.5
    x = axis[cols][:, None] + offsets[None, :] * width[cols][:, None] - wavelength[rows][:, None]
    values = voigt_profile(x, sigma[rows][:, None], gamma[rows][:, None]).mean(axis=1) * width[cols]
    return sparse.csr_matrix((values, (rows, cols)), shape=(wavelength.size, axis.size))


def doppler_fwhm(lines: pd.DataFrame, temperature: float) -> np.ndarray:
    """Doppler FWHM (nm) of each line at `temperature`."""
    return 7.16e-7 * lines["wavelength_nm"].to_numpy() * np.sqrt(temperature / lines["mass_u"].to_numpy())


def render_lines(emissivity: np.ndarray, lines: pd.DataFrame, axis: np.ndarray, instrument_fwhm: np.ndarray,
                 electron_density: np.ndarray, *, stark: bool = True, temperature: float = 10000.0,
                 grid_step: float = 1.1, subsamples: int | None = None) -> np.ndarray:
    """(n, channels) line spectra: `emissivity` (n, lines) spread by Voigt profiles.

    Gaussian width: instrument FWHM at the line (`instrument_fwhm` per channel, interpolated) combined
    with Doppler width at `temperature`. Lorentzian width: Stark FWHM proportional to each spectrum's
    electron density. Profiles are built on a geometric grid of densities (ratio `grid_step`) and
    each spectrum is interpolated linearly (in log n_e) between its two neighbouring grid levels.
    """
    n = emissivity.shape[0]
    wavelength = lines["wavelength_nm"].to_numpy()
    gauss = np.sqrt(np.interp(wavelength, axis, instrument_fwhm) ** 2 + doppler_fwhm(lines, temperature) ** 2)
    out = np.zeros((n, axis.size))
    if not stark:
        matrix = profile_matrix(wavelength, gauss, np.zeros_like(gauss), axis, subsamples=subsamples)
        return np.asarray((matrix.T @ emissivity.T).T)
    log_ne = np.log(np.asarray(electron_density, dtype=float))
    step = np.log(grid_step)
    base = log_ne.min()
    position = (log_ne - base) / step
    level = np.floor(position).astype(int)
    frac = position - level
    stark_ref = lines["stark_fwhm_nm"].to_numpy()
    for k in np.unique(np.concatenate([level, level + 1])):
        weight = np.where(level == k, 1 - frac, 0.0) + np.where(level + 1 == k, frac, 0.0)
        chosen = np.flatnonzero(weight > 0)
        if chosen.size == 0:
            continue
        lorentz = stark_ref * np.exp(base + k * step) / STARK_REFERENCE_DENSITY_M3
        matrix = profile_matrix(wavelength, gauss, lorentz, axis, subsamples=subsamples)
        out[chosen] += np.asarray((matrix.T @ (emissivity[chosen] * weight[chosen, None]).T).T)
    return out
