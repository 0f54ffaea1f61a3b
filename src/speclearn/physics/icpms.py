"""ICP-MS physics shared by the simulator and the quantifiers.

Isotope patterns (natural isotope masses and abundances from `periodictable`, with the IUPAC values it
leaves out), the quadrupole peak shape (Gaussian or pseudo-Voigt core, low-mass tailing,
abundance-sensitivity wings), the mass-dependent transmission and the counting noise. Both
`speclearn.simulate.icpms` (which draws spectra from it) and the estimators in `speclearn.quantify`,
`speclearn.trust` (which invert it) import it from here.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import periodictable
from scipy.special import erfc, erfcx

from speclearn.core.errors import InputError

ELECTRON_MASS = 5.48579909065e-4  # u
SHAPES = ("gaussian", "pseudo_voigt")
MIN_FRACTION = 1e-6  # isotopologues and ions below this relative level are not rendered
#: Natural abundances `periodictable` leaves out (IUPAC 2013 representative composition), as fractions.
ABUNDANCE_SUPPLEMENT: dict[str, dict[int, float]] = {"U": {234: 5.4e-5, 235: 7.204e-3, 238: 0.992742}}
#: Common spectral interferences in quadrupole ICP-MS (argides, chlorides, oxides, doubly charged).
COMMON_INTERFERENCES: tuple[str, ...] = (
    "ArH", "ArAr", "ArO", "ArOH", "ArN", "ArC", "ArCl", "ArNa", "ArCa", "O2", "N2", "ClO", "ClOH", "CaO", "SO",
    "SO2", "S2", "TiO", "BaO", "CeO", "NdO", "SmO", "Nd++", "Sm++", "Gd++",
)
#: Common matrix / isobaric elements checked as interferents (with their oxides and M2+ ions).
COMMON_INTERFERENT_ELEMENTS: tuple[str, ...] = ("Fe", "Sn", "Zr", "W", "Mo", "Ru", "Pd", "Ge", "Ni", "Ba", "Hg")
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")

# --- isotopes ------------------------------------------------------------------------------------
def natural_isotopes(symbol: str) -> list[tuple[int, float, float]]:
    """(mass number, mass in u, abundance fraction) of an element's natural isotopes."""
    try:
        element = periodictable.elements.symbol(symbol)
    except ValueError:
        raise InputError(f"unknown element {symbol!r}") from None
    supplement = ABUNDANCE_SUPPLEMENT.get(element.symbol, {})
    isotopes = [(iso.isotope, float(iso.mass), supplement.get(iso.isotope, iso.abundance / 100.0))
                for iso in element if iso.abundance > 0 or iso.isotope in supplement]
    if not isotopes:
        raise InputError(f"element {symbol!r} has no natural isotopes")
    return isotopes


def available_elements() -> list[str]:
    """Symbols of every element with natural isotope abundances in `periodictable`."""
    return [el.symbol for el in periodictable.elements
            if el.number > 0 and (el.symbol in ABUNDANCE_SUPPLEMENT or any(iso.abundance > 0 for iso in el))]


def _atoms(species: str) -> dict[str, int]:
    try:
        atoms = periodictable.formula(species).atoms
    except (ValueError, TypeError, KeyError):
        raise InputError(f"cannot read species {species!r}; write it like 'Cd', 'ArO', 'Ar2' or 'CeO'") from None
    if not atoms:
        raise InputError(f"species {species!r} has no atoms")
    return {el.symbol: int(count) for el, count in atoms.items()}


@lru_cache(maxsize=None)
def _pattern(species: str, charge: int) -> tuple[tuple[int, float, float], ...]:
    combined = {0: (1.0, 0.0)}  # nominal mass -> (fraction, fraction-weighted exact mass)
    for symbol, count in _atoms(species).items():
        for _ in range(count):
            nxt: dict[int, list[float]] = {}
            for nominal, (frac, wmass) in combined.items():
                for number, mass, abundance in natural_isotopes(symbol):
                    slot = nxt.setdefault(nominal + number, [0.0, 0.0])
                    slot[0] += frac * abundance
                    slot[1] += abundance * (wmass + frac * mass)
            combined = {k: (f, w) for k, (f, w) in nxt.items() if f > 1e-12}
    return tuple((nominal, (w / f - charge * ELECTRON_MASS) / charge, f)
                 for nominal, (f, w) in sorted(combined.items()) if f >= MIN_FRACTION)


def isotope_pattern(species: str, charge: int = 1) -> list[tuple[float, float]]:
    """(m/z, fraction) of every isotopologue of an ion, from its atoms' natural isotopes.

    `species` is an element ("Cd"), a polyatomic ("ArO", "Ar2", "ClO", "ArCl") or an oxide
    ("CeO"). Isotopologues with the same nominal mass are merged (abundance-weighted mass; they
    differ by < 0.01 u, far below the resolution); those below 1e-6 are dropped. m/z subtracts
    the electrons lost: (mass - charge * m_e) / charge.
    """
    if charge < 1:
        raise InputError(f"charge must be >= 1, got {charge}")
    return [(mz, frac) for _, mz, frac in _pattern(species, int(charge))]


# --- instrument ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ICPMSInstrument:
    """Quadrupole ICP-MS: mass axis, peak shape, tails and mass-dependent response.

    Peak FWHM (m/z) = fwhm_intercept + fwhm_slope * m/z (0.31 at Li, 0.49 at U: a width at 10 %
    height of 0.55-0.9, as specified for quadrupoles). The core is a unit-height Gaussian or
    pseudo-Voigt (Lorentzian fraction `eta`). Low-mass tailing adds an exponentially modified
    Gaussian on the low-mass side holding `tail_fraction` of the core area, decay `tail_length`.
    Abundance sensitivity adds wings whose height at m/z -1 / +1 relative to the peak height is
    `abundance_sensitivity_low` / `_high` (decay `abundance_sensitivity_length`). Transmission
    (relative to `reference_mz`) is exp(slope * L - curvature * L^2), L = ln(m/z / reference_mz).
    `sensitivity`: cps per µg/L of a fully ionised mono-isotopic element at `reference_mz`.
    `dwell_time`: seconds counted per channel (spectra are counts per channel).
    `dead_time`: seconds the pulse counter is blind after each ion (non-paralysable: a true rate n
    cps reads n / (1 + n dead_time); 0 = an ideal counter, 20-50 ns in real ones).
    """

    mz_min: float = 5.0
    mz_max: float = 250.0
    n_channels: int = 10_000
    shape: str = "gaussian"
    eta: float = 0.3
    fwhm_intercept: float = 0.30
    fwhm_slope: float = 0.0008
    tail_fraction: float = 0.01
    tail_length: float = 0.08
    abundance_sensitivity_low: float = 1e-6
    abundance_sensitivity_high: float = 1e-7
    abundance_sensitivity_length: float = 0.25
    window_fwhm: float = 6.0
    sensitivity: float = 1e5
    reference_mz: float = 115.0
    transmission_slope: float = 0.4
    transmission_curvature: float = 0.35
    dwell_time: float = 0.01
    dead_time: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.mz_min < self.mz_max:
            raise InputError(f"need 0 < mz_min < mz_max, got {self.mz_min:g} and {self.mz_max:g}")
        if self.n_channels < 10:
            raise InputError(f"n_channels must be >= 10, got {self.n_channels}")
        if self.shape not in SHAPES:
            raise InputError(f"peak shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")
        if not 0 <= self.eta <= 1:
            raise InputError(f"eta (Lorentzian fraction) must be in [0, 1], got {self.eta:g}")
        if min(self.fwhm(self.mz_min), self.fwhm(self.mz_max)) <= 0:
            raise InputError("peak FWHM must be positive over the whole axis")
        for name in ("tail_fraction", "abundance_sensitivity_low", "abundance_sensitivity_high", "dead_time"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name):g}")
        for name in ("tail_length", "abundance_sensitivity_length", "window_fwhm", "sensitivity",
                     "reference_mz", "dwell_time"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name):g}")

    def fwhm(self, mz: np.ndarray | float) -> np.ndarray | float:
        """Peak full width at half maximum (m/z) at m/z `mz`."""
        return self.fwhm_intercept + self.fwhm_slope * np.asarray(mz, dtype=float)

    def transmission(self, mz: np.ndarray | float, mass_bias: np.ndarray | float = 0.0) -> np.ndarray:
        """Relative ion transmission at m/z (1 at `reference_mz`), times (mz/ref)^mass_bias."""
        log_ratio = np.log(np.asarray(mz, dtype=float) / self.reference_mz)
        return np.exp((self.transmission_slope + np.asarray(mass_bias)) * log_ratio
                      - self.transmission_curvature * log_ratio ** 2)

    def core_area(self, fwhm: np.ndarray | float) -> np.ndarray | float:
        """Area (m/z units) of the unit-height core peak of width `fwhm`."""
        gauss = 0.5 * math.sqrt(math.pi / math.log(2))
        eta = self.eta if self.shape == "pseudo_voigt" else 0.0
        return fwhm * ((1 - eta) * gauss + eta * math.pi / 2)

    def profile(self, offset: np.ndarray, fwhm: float) -> np.ndarray:
        """One peak at offsets (x - centre, m/z): unit-height core plus tails and wings."""
        x2 = (2.0 * offset / fwhm) ** 2
        gauss = np.exp(-math.log(2) * x2)
        core = (1 - self.eta) * gauss + self.eta / (1 + x2) if self.shape == "pseudo_voigt" else gauss
        sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
        if self.tail_fraction:
            core = core + self.tail_fraction * self.core_area(fwhm) * _emg(-offset, sigma, self.tail_length)
        length = self.abundance_sensitivity_length
        at_one = _emg(np.array([1.0]), sigma, length)[0]
        for level, side in ((self.abundance_sensitivity_low, -1.0), (self.abundance_sensitivity_high, 1.0)):
            if level:
                core = core + (level / at_one) * _emg(side * offset, sigma, length)
        return core

    def half_window(self, fwhm: float) -> float:
        """Half-width (m/z) around a centre beyond which a peak is not rendered."""
        half = self.window_fwhm * fwhm
        if self.shape == "pseudo_voigt":  # Lorentzian wings down to 1e-4 of the height
            half = max(half, 0.5 * fwhm * math.sqrt(self.eta / 1e-4))
        if self.tail_fraction:
            half = max(half, fwhm + 12 * self.tail_length)
        if self.abundance_sensitivity_low or self.abundance_sensitivity_high:
            half = max(half, 1.0 + 6 * self.abundance_sensitivity_length)
        return half


def _emg(d: np.ndarray, sigma: float, tau: float) -> np.ndarray:
    """Unit-area exponentially modified Gaussian of d (tail towards positive d), overflow-safe."""
    z = (sigma / tau - d / sigma) / math.sqrt(2)
    out = np.empty_like(d, dtype=float)
    ok = z >= 0
    out[ok] = np.exp(-0.5 * (d[ok] / sigma) ** 2) * erfcx(z[ok])
    out[~ok] = np.exp(0.5 * (sigma / tau) ** 2 - d[~ok] / tau) * erfc(z[~ok])
    return out / (2 * tau)


def mz_axis(instrument: ICPMSInstrument) -> np.ndarray:
    """Evenly spaced m/z channels from mz_min to mz_max inclusive."""
    return np.linspace(instrument.mz_min, instrument.mz_max, instrument.n_channels)


def render_peaks(axis: np.ndarray, centres: np.ndarray, fwhms: np.ndarray, instrument: ICPMSInstrument,
                 *, dtype: type = np.float64) -> np.ndarray:
    """(peaks, channels): each peak's unit-height profile, rendered only inside its window."""
    out = np.zeros((len(centres), axis.size), dtype=dtype)
    for row, (centre, fwhm) in enumerate(zip(centres, fwhms)):
        half = instrument.half_window(fwhm)
        lo, hi = np.searchsorted(axis, [centre - half, centre + half])
        if hi > lo:
            out[row, lo:hi] = instrument.profile(axis[lo:hi] - centre, fwhm)
    return out


def poisson_counts(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """Poisson draws (float32) for an array of means: inversion below 1, numpy's sampler above.

    Inversion (walking the cumulative distribution) is exact and several times faster than
    numpy's per-element sampler for the many near-empty background channels of a mass spectrum.
    """
    shape = np.shape(mean)
    mean = np.asarray(mean, dtype=np.float64).ravel()
    out = np.empty(mean.size, dtype=np.float32)
    small = mean < 1.0
    out[~small] = rng.poisson(mean[~small])
    lam = mean[small]
    uniform = rng.random(lam.size)
    term = np.exp(-lam)
    cumulative = term.copy()
    counts = np.zeros(lam.size, dtype=np.float32)
    active = np.flatnonzero(uniform > cumulative)
    k = 0
    while active.size and k < 50:  # P(k > 50 | mean < 1) < 1e-64; the cap only guards float rounding
        k += 1
        counts[active] = k
        term[active] *= lam[active] / k
        cumulative[active] += term[active]
        active = active[uniform[active] > cumulative[active]]
    out[small] = counts
    return out.reshape(shape)


def species_template(species: str, axis: np.ndarray, instrument: ICPMSInstrument, *, charge: int = 1,
                     mass_shift: float = 0.0, mass_bias: float | None = None) -> np.ndarray:
    """Clean signal of one ion at unit amount on `axis`.

    Normalisation: each isotopologue's core peak has height equal to its abundance fraction (the
    fractions sum to 1), so a peak's height is its count rate and its area is fraction *
    `instrument.core_area(fwhm)` * (1 + tail_fraction) (plus tiny abundance-sensitivity wings).
    By default this is BEFORE mass-dependent sensitivity; with `mass_bias` (0.0 for the nominal
    curve) each isotopologue is multiplied by `instrument.transmission(mz, mass_bias)`.
    """
    pattern = isotope_pattern(species, charge)
    mz = np.array([p[0] for p in pattern])
    weight = np.array([p[1] for p in pattern])
    if mass_bias is not None:
        weight = weight * instrument.transmission(mz, mass_bias)
    peaks = render_peaks(np.asarray(axis, dtype=float), mz + mass_shift, instrument.fwhm(mz), instrument)
    return weight @ peaks


def parse_species(species: str) -> tuple[dict[str, int], int]:
    """'ArO' -> ({'Ar': 1, 'O': 1}, 1); 'Ba++' -> ({'Ba': 1}, 2). Unknown symbols are an InputError."""
    text = species.strip()
    charge = 1 + text.count("+") - (1 if text.count("+") else 0)
    formula = text.rstrip("+")
    parts = _TOKEN.findall(formula)
    if not formula or "".join(s + n for s, n in parts) != formula:
        raise InputError(f"{species!r} is not an element symbol or formula (e.g. Cd, ArO, Ba++)")
    counts: dict[str, int] = {}
    for symbol, number in parts:
        try:
            element = periodictable.elements.symbol(symbol)
        except ValueError:
            raise InputError(f"unknown element {symbol!r} in {species!r}") from None
        if symbol not in ABUNDANCE_SUPPLEMENT and not any(element[a].abundance > 0 for a in element.isotopes):
            raise InputError(f"element {symbol!r} has no stable isotope to measure")
        counts[symbol] = counts.get(symbol, 0) + int(number or 1)
    return counts, charge


@lru_cache(maxsize=None)
def ion_pattern(species: str, min_fraction: float = 1e-4) -> tuple[tuple[float, float, int], ...]:
    """(m/z, fraction, nominal mass) of every isotopologue of an ion written like 'Cd', 'ArO' or 'Ba++'
    (charge as trailing '+'), above `min_fraction` (fractions sum ~1)."""
    counts, charge = parse_species(species)
    formula = "".join(f"{symbol}{n if n > 1 else ''}" for symbol, n in counts.items())
    return tuple((mz, fraction, nominal) for nominal, mz, fraction in _pattern(formula, charge)
                 if fraction >= min_fraction)
