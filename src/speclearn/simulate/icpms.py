"""Synthetic ICP-MS mass spectra with full ground truth (the CAEM-MT paper §3.4).

The model, per spectrum i and channel m/z x (counts in one dwell time per channel):

    clean_i(x) = dwell * [ sum_p A_ip * profile_p(x - centre_p - shift_i) + background_i(x) ]
    spectrum_i = Poisson(clean_i) + N(0, (gaussian_noise_rel * clean_i)^2)

Every rendered peak p is one isotopologue of one ion: an element M+ (analyte, internal
standard or non-target interferent), its oxide MO+, its doubly charged M2+, or a plasma/matrix
polyatomic ion (Ar2+, ArO+, ArCl+, ClO+, ...). Isotope patterns come from the natural isotope
masses and abundances in `periodictable`, so isobaric overlaps (113In/113Cd, 204Hg/204Pb,
98Mo16O/114Cd, ...) follow from them. Peak heights (counts per second at the peak centre):

    A_ip = level_i(ion) * fraction_p * transmission(mz_p) * (mz_p / mz_ref)^mass_bias_i * drift_i

with level = concentration * element sensitivity for M+ (times the oxide or doubly charged ratio
for MO+/M2+) and the configured count rate for polyatomics. The element sensitivity (cps per µg/L
at reference transmission) is instrument sensitivity * ionisation fraction (Saha, from the first
ionisation energy) * mz_ref / atomic mass (atoms per µg). M2+/M+ scales with the second
ionisation energy; the MO+/M+ ratio is the same for every element (a simplification).
"""
from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import periodictable

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import atomic_path, write_spectra, write_table_csv
from speclearn.physics.icpms import (MIN_FRACTION, ICPMSInstrument, _pattern, available_elements, isotope_pattern,
                                     mz_axis, natural_isotopes, poisson_counts, render_peaks)

BOLTZMANN_EV = 8.617333262e-5  # eV / K
SAHA_CONSTANT = 4.829e15  # 2 (2 pi m_e k / h^2)^1.5 in cm^-3 K^-1.5 (partition-function ratio taken as 1)

#: The physics (isotopes, instrument, noise) lives in speclearn.physics.icpms; re-exported for simulator users.
#: the instrument is part of a simulation's configuration; the rest of the physics is in speclearn.physics.icpms
__all__ = ["DEFAULT_ANALYTES", "DEFAULT_POLYATOMICS", "PROCESS_PARAMETERS", "ICPMSConfig", "ICPMSInstrument",
           "ICPMSSimulation", "ProcessConfig", "plot_preview", "simulate_icpms"]

#: Plasma and matrix polyatomic ions: (species, source, count rate in cps summed over isotopologues
#: at reference transmission). Sources other than "plasma" follow the sample matrix.
DEFAULT_POLYATOMICS: tuple[tuple[str, str, float], ...] = (
    ("ArH", "plasma", 1e6), ("Ar2", "plasma", 3e5), ("ArO", "plasma", 5e5), ("ArN", "plasma", 1e5),
    ("O2", "plasma", 5e5), ("N2", "plasma", 3e5), ("ArC", "carbon", 5e4),
    ("ArCl", "chloride", 2e4), ("ClO", "chloride", 2e4), ("ArNa", "sodium", 1e4),
    ("CaO", "calcium", 2e4), ("SO", "sulfur", 2e4), ("SO2", "sulfur", 1e4), ("S2", "sulfur", 5e3),
)
DEFAULT_ANALYTES = ("As", "Cd", "Hg", "Pb", "Cr", "Ni", "Cu", "Zn", "Se", "Mo", "Sb", "Ba", "Tl", "U", "Co")


@lru_cache(maxsize=1)
def _ionisation_energies() -> dict[str, tuple[float, float]]:
    """First and second ionisation energies (eV) per element, from libskit's NIST table."""
    import libskit
    table = pd.read_csv(Path(libskit.__file__).parent / "data" / "ionization_energies_processed.csv")
    energy = dict(zip(table.iloc[:, 0].str.strip(), table.iloc[:, 1].astype(float)))
    return {symbol: (energy[f"{symbol} I"], energy.get(f"{symbol} II", math.inf))
            for symbol in available_elements() if f"{symbol} I" in energy}


def _saha_ratio(energy_ev: float, temperature, electron_density: float):
    """n(next stage) / n(this stage) in LTE at `temperature` (K, scalar or array) and electron density (cm^-3)."""
    temperature = np.asarray(temperature, dtype=float)
    return SAHA_CONSTANT * temperature ** 1.5 / electron_density * np.exp(-energy_ev / (BOLTZMANN_EV * temperature))


def _fine_peaks(axis: np.ndarray, pad: int, subdivisions: int, centres: np.ndarray, fwhms: np.ndarray,
                instrument: ICPMSInstrument) -> list[tuple[int, np.ndarray]]:
    """Each peak rendered once on a grid `subdivisions` times finer than `axis` padded by `pad`.

    Returns (first fine index, values) per peak; fine index q sits at
    axis[0] + (q / subdivisions - pad) * step.
    """
    step = axis[1] - axis[0]
    origin = axis[0] - pad * step
    fine = []
    for centre, fwhm in zip(centres, fwhms):
        half = instrument.half_window(fwhm)
        q_lo = math.ceil((centre - half - origin) / step * subdivisions)
        q_hi = math.floor((centre + half - origin) / step * subdivisions) + 1
        x = origin + np.arange(q_lo, q_hi) * step / subdivisions
        fine.append((q_lo, instrument.profile(x - centre, fwhm).astype(np.float32)))
    return fine


def _shifted_templates(fine: list[tuple[int, np.ndarray]], size: int, subdivisions: int, sub: int) -> np.ndarray:
    """(peaks, size) templates on the padded axis, every peak moved up by sub / subdivisions channel."""
    templates = np.zeros((len(fine), size), dtype=np.float32)
    for row, (q_lo, values) in enumerate(fine):
        # channel c samples fine index q = c * subdivisions - sub
        c_lo = max(-(-(q_lo + sub) // subdivisions), 0)
        c_hi = min((q_lo + values.size - 1 + sub) // subdivisions + 1, size)
        if c_hi > c_lo:
            start = c_lo * subdivisions - sub - q_lo
            templates[row, c_lo:c_hi] = values[start: start + (c_hi - c_lo - 1) * subdivisions + 1: subdivisions]
    return templates


# --- configuration -------------------------------------------------------------------------------
#: Measured process parameters the simulator writes when matrix effects are on (the columns a
#: two-headed quantifier reads with `--params`); `tds_g_l` and `plasma_temperature_k` are hidden truth.
PROCESS_PARAMETERS = ("rf_power_w", "nebuliser_flow_l_min", "conductivity_ms_cm", "sample_temperature_c")


@dataclass(frozen=True)
class ProcessConfig:
    """Per-spectrum instrument and sample parameters and the matrix effects they cause.

    Drawn per spectrum (from their own random stream, so the rest of a simulation is unchanged):
    RF power (W, normal), nebuliser gas flow (L/min, normal), total dissolved solids (g/L,
    log-normal) read as conductivity (mS/cm = `conductivity_per_tds` * TDS, with a log-normal
    measurement error) and sample temperature (°C, normal). Effects, each relative to the nominal
    conditions (power_nominal, flow_nominal, zero TDS, temperature_nominal):

    - ionisation temperature T = T0 + power_k_per_w * dP - flow_k_per_l_min * dF - tds_k_per_g_l * TDS
      (a cooler, more loaded plasma); the Saha fraction of each element changes with T, so elements
      with a high first ionisation energy (As, Se, Cd, Zn, Hg) lose most, In (5.8 eV) almost nothing;
    - space-charge suppression exp(-space_charge_per_g_l * TDS * (reference_mz / m/z)): light ions
      are lost more than heavy ones, for every ion in the beam;
    - aerosol transport exp(-((F - flow_optimum) / flow_width)^2) and sample uptake
      1 + uptake_per_c * dT (lower viscosity): the same for every element of the sample;
    - oxide ratio * exp(oxide_per_l_min * dF - oxide_per_w * dP), doubly charged ratio *
      exp(doubly_per_w * dP - doubly_per_l_min * dF);
    - matrix polyatomics (chloride, sodium, sulfur, calcium, carbon sources) * TDS / tds_median.
    """

    power_nominal: float = 1550.0
    power_sd: float = 60.0
    flow_nominal: float = 1.0
    flow_sd: float = 0.05
    tds_median: float = 1.0
    tds_sigma: float = 0.9
    conductivity_per_tds: float = 1.9
    conductivity_error: float = 0.03
    temperature_nominal: float = 20.0
    temperature_sd: float = 3.0
    power_k_per_w: float = 1.0
    flow_k_per_l_min: float = 2500.0
    tds_k_per_g_l: float = 120.0
    space_charge_per_g_l: float = 0.08
    flow_optimum: float = 1.0
    flow_width: float = 0.25
    uptake_per_c: float = 0.015
    oxide_per_l_min: float = 8.0
    oxide_per_w: float = 0.006
    doubly_per_w: float = 0.004
    doubly_per_l_min: float = 4.0

    def __post_init__(self) -> None:
        for name in ("power_nominal", "flow_nominal", "tds_median", "conductivity_per_tds", "flow_width"):
            if getattr(self, name) <= 0:
                raise InputError(f"process {name} must be > 0, got {getattr(self, name):g}")
        for name in ("power_sd", "flow_sd", "tds_sigma", "conductivity_error", "temperature_sd"):
            if getattr(self, name) < 0:
                raise InputError(f"process {name} must be >= 0, got {getattr(self, name):g}")

    def draw(self, rng: np.random.Generator, n: int) -> pd.DataFrame:
        """Per-spectrum parameters: the measured PROCESS_PARAMETERS plus the true TDS (g/L)."""
        power = self.power_nominal + self.power_sd * rng.standard_normal(n)
        flow = self.flow_nominal + self.flow_sd * rng.standard_normal(n)
        tds = _lognormal(rng, self.tds_median, self.tds_sigma, n)
        conductivity = self.conductivity_per_tds * tds * np.exp(self.conductivity_error * rng.standard_normal(n))
        temperature = self.temperature_nominal + self.temperature_sd * rng.standard_normal(n)
        return pd.DataFrame({"rf_power_w": power, "nebuliser_flow_l_min": flow, "conductivity_ms_cm": conductivity,
                             "sample_temperature_c": temperature, "tds_g_l": tds})

    def plasma_temperature(self, draws: pd.DataFrame, nominal: float) -> np.ndarray:
        """Ionisation temperature (K) per spectrum."""
        return (nominal + self.power_k_per_w * (draws["rf_power_w"].to_numpy() - self.power_nominal)
                - self.flow_k_per_l_min * (draws["nebuliser_flow_l_min"].to_numpy() - self.flow_nominal)
                - self.tds_k_per_g_l * draws["tds_g_l"].to_numpy())

    def sample_factor(self, draws: pd.DataFrame) -> np.ndarray:
        """Aerosol transport times uptake: the same for every element of a sample."""
        flow = draws["nebuliser_flow_l_min"].to_numpy()
        dtemp = draws["sample_temperature_c"].to_numpy() - self.temperature_nominal
        return np.exp(-((flow - self.flow_optimum) / self.flow_width) ** 2) * (1 + self.uptake_per_c * dtemp)

    def space_charge(self, draws: pd.DataFrame, mz: np.ndarray, reference_mz: float) -> np.ndarray:
        """(n, peaks) transmission factor from space charge: lighter ions suppressed more."""
        return np.exp(-self.space_charge_per_g_l * draws["tds_g_l"].to_numpy()[:, None] * reference_mz / mz[None, :])

    def ratio_factors(self, draws: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per-spectrum multipliers of the oxide and the doubly charged ratios."""
        dpower = draws["rf_power_w"].to_numpy() - self.power_nominal
        dflow = draws["nebuliser_flow_l_min"].to_numpy() - self.flow_nominal
        return (np.exp(self.oxide_per_l_min * dflow - self.oxide_per_w * dpower),
                np.exp(self.doubly_per_w * dpower - self.doubly_per_l_min * dflow))


@dataclass(frozen=True)
class ICPMSConfig:
    """Everything drawn per spectrum, with its distribution (defaults: a trace-metal water analysis).

    Concentrations (µg/L) are log-normal: median, sigma of ln. Interferents are non-target
    elements (isobars and oxide sources) drawn the same way and recorded in `params`. Polyatomic
    levels: see DEFAULT_POLYATOMICS; per spectrum the "plasma" source varies by `plasma_sd` and
    each matrix source by `matrix_sd` (log-normal). Oxide (MO+/M+) and doubly charged (M2+/M+ for
    an element with Ba's second ionisation energy) ratios vary by `plasma_sd` too. Sensitivity
    drifts per run (log-normal `sensitivity_drift_sd`, plus a mass-bias exponent with sd
    `mass_bias_sd`); the mass calibration shifts by N(0, mass_shift_sd) m/z, rendered on a grid of
    1/`shift_subdivisions` channel. Background: (constant + slope * (m/z - mz_min)) cps, scaled per
    spectrum by a log-normal factor (`background_sd`). `process` (default None: no matrix effects)
    adds per-spectrum instrument and sample parameters that change sensitivities and interference
    levels (see `ProcessConfig`); they are written to `params`.
    """

    analytes: tuple[str, ...] = DEFAULT_ANALYTES
    internal_standard: str | None = "In"
    internal_standard_conc: float = 10.0
    concentration_median: float = 1.0
    concentration_sigma: float = 1.2
    interferents: tuple[str, ...] = ("Fe", "Sn", "Zr", "W")
    interferent_median: float = 2.0
    interferent_sigma: float = 1.0
    polyatomics: tuple[tuple[str, str, float], ...] = DEFAULT_POLYATOMICS
    polyatomic_scale: float = 1.0
    plasma_sd: float = 0.1
    matrix_sd: float = 0.7
    oxide_ratio: float = 0.01
    doubly_charged_ratio: float = 0.02
    ionisation_temperature: float = 7500.0
    electron_density: float = 1e15
    sensitivity_drift_sd: float = 0.05
    mass_bias_sd: float = 0.03
    mass_shift_sd: float = 0.02
    shift_subdivisions: int = 20
    background_constant: float = 5.0
    background_slope: float = 0.02
    background_sd: float = 0.3
    poisson: bool = True
    gaussian_noise_rel: float = 0.005
    instrument: ICPMSInstrument = field(default_factory=ICPMSInstrument)
    process: ProcessConfig | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "analytes", tuple(self.analytes))
        object.__setattr__(self, "interferents", tuple(self.interferents))
        object.__setattr__(self, "polyatomics", tuple(tuple(p) for p in self.polyatomics))
        if not self.analytes:
            raise InputError("at least one analyte is needed")
        elements = [*self.analytes, *self.interferents] + ([self.internal_standard] if self.internal_standard else [])
        if len(set(elements)) != len(elements):
            raise InputError(f"an element is listed twice among analytes, interferents and internal standard: "
                             f"{', '.join(elements)}")
        energies = _ionisation_energies()
        for symbol in elements:
            natural_isotopes(symbol)
            if symbol not in energies:
                raise InputError(f"no ionisation energy known for {symbol!r}")
        for species, _, rate in self.polyatomics:
            isotope_pattern(species)
            if rate < 0:
                raise InputError(f"polyatomic {species} count rate must be >= 0, got {rate:g}")
        for name in ("internal_standard_conc", "concentration_median", "interferent_median",
                     "ionisation_temperature", "electron_density"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name):g}")
        for name in ("concentration_sigma", "interferent_sigma", "polyatomic_scale", "plasma_sd", "matrix_sd",
                     "oxide_ratio", "doubly_charged_ratio", "sensitivity_drift_sd", "mass_bias_sd",
                     "mass_shift_sd", "background_constant", "background_sd", "gaussian_noise_rel"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name):g}")
        if self.shift_subdivisions < 1:
            raise InputError(f"shift_subdivisions must be >= 1, got {self.shift_subdivisions}")

    def element_sensitivity(self, symbol: str) -> float:
        """cps per µg/L of an element summed over its isotopes, at reference transmission."""
        mass = float(periodictable.elements.symbol(symbol).mass)
        return (self.instrument.sensitivity * self.ionised_fraction(symbol, self.ionisation_temperature)
                * self.instrument.reference_mz / mass)

    def ionised_fraction(self, symbol: str, temperature: np.ndarray | float) -> np.ndarray | float:
        """Saha fraction M+ / (M + M+) of an element at ionisation temperature(s) (K)."""
        ratio = _saha_ratio(_ionisation_energies()[symbol][0], temperature, self.electron_density)
        return ratio / (1 + ratio) if ratio.ndim else float(ratio / (1 + ratio))

    def doubly_charged_factor(self, symbol: str) -> float:
        """M2+/M+ of an element relative to `doubly_charged_ratio` (Saha scaling from Ba)."""
        kt = BOLTZMANN_EV * self.ionisation_temperature
        return math.exp(-(_ionisation_energies()[symbol][1] - _ionisation_energies()["Ba"][1]) / kt)


# --- the components every spectrum is built from ------------------------------------------------
@dataclass(frozen=True)
class _Components:
    """Static list of peaks (one per isotopologue of every ion) and the ion-level columns they use."""

    species: np.ndarray  # ion formula, e.g. "Cd", "MoO", "ArCl"
    element: np.ndarray  # parent element (M+, MO+, M2+) or the polyatomic formula
    kind: np.ndarray  # analyte, internal_standard, interferent, oxide, doubly_charged, polyatomic
    mass_number: np.ndarray
    charge: np.ndarray
    mz: np.ndarray
    fraction: np.ndarray
    level: np.ndarray  # index into the per-spectrum ion-level matrix


def _components(config: ICPMSConfig, ions: list[tuple[str, str, str, int]]) -> _Components:
    rows = []
    inst = config.instrument
    for level, (species, element, kind, charge) in enumerate(ions):
        for nominal, mz, fraction in _pattern(species, charge):
            if inst.mz_min - 1 <= mz <= inst.mz_max + 1:
                rows.append((species, element, kind, nominal, charge, mz, fraction, level))
    columns = list(zip(*rows))
    return _Components(*(np.array(c) for c in columns))


def _ion_list(config: ICPMSConfig) -> list[tuple[str, str, str, int]]:
    """(species, parent element, kind, charge) of every ion rendered, in level-column order."""
    ions = []
    parents = [(s, "analyte") for s in config.analytes] + [(s, "interferent") for s in config.interferents]
    if config.internal_standard:
        parents.append((config.internal_standard, "internal_standard"))
    for symbol, kind in parents:
        ions.append((symbol, symbol, kind, 1))
        if config.oxide_ratio > 0:
            ions.append((f"{symbol}O", symbol, "oxide", 1))
        if config.doubly_charged_ratio * config.doubly_charged_factor(symbol) >= MIN_FRACTION:
            ions.append((symbol, symbol, "doubly_charged", 2))
    ions += [(species, species, "polyatomic", 1) for species, _, rate in config.polyatomics
             if rate * config.polyatomic_scale > 0]
    return ions


# --- result --------------------------------------------------------------------------------------
@dataclass
class ICPMSSimulation:
    """Noisy spectra plus every piece of ground truth used to make them.

    spectra: counts per channel, axis_kind "mz"; meta = `params`.
    targets: analyte concentrations (µg/L), one column per analyte.
    clean: (n, channels) expected counts (signal + background), no noise.
    peaks: one row per rendered peak: id, species, element, kind, mass_number, charge, centre
        (m/z, mass shift included), width (FWHM, m/z), amplitude (core peak height, counts).
    params: per-spectrum draws: mass shift, sensitivity drift, mass bias, IS recovery, plasma and
        matrix levels, oxide and doubly charged ratios, background, interferent concentrations.
    """

    spectra: Spectra
    targets: pd.DataFrame
    clean: np.ndarray
    peaks: pd.DataFrame
    params: pd.DataFrame
    config: ICPMSConfig
    seed: int = 0
    concentration_range_factor: float = 1.0

    def truth(self) -> dict:
        """JSON-ready description: configuration, seed, element sensitivities, file contents."""
        cfg = self.config
        parents = [*cfg.analytes, *cfg.interferents] + ([cfg.internal_standard] if cfg.internal_standard else [])
        return {
            "generator": "speclearn.simulate.icpms", "seed": self.seed, "n_spectra": self.spectra.n_spectra,
            "n_channels": self.spectra.n_channels,
            "concentration_range_factor": self.concentration_range_factor,
            "config": asdict(cfg),
            "element_sensitivity_cps_per_ug_l": {s: cfg.element_sensitivity(s) for s in parents},
            "doubly_charged_ratio": {s: cfg.doubly_charged_ratio * cfg.doubly_charged_factor(s) for s in parents},
            "units": {"spectra": "counts per channel (dwell_time s)", "targets": "µg/L",
                      "centre": "m/z", "width": "FWHM m/z", "amplitude": "counts at the peak centre"},
            "files": {"spectra.csv": "noisy spectra", "clean.csv": "noise-free spectra",
                      "targets.csv": "analyte concentrations", "peaks.csv": "one row per rendered peak",
                      "params.csv": "per-spectrum instrument and plasma parameters",
                      **({"process.csv": "measured process parameters (speclearn quantify --params)"}
                         if self.config.process is not None else {})},
        }

    def write(self, directory: str | Path, *, overwrite: bool = False, preview: bool = False) -> Path:
        """Write every file into `directory` at once (a folder renamed into place)."""
        directory = Path(directory)
        with atomic_path(directory, overwrite=overwrite, directory=True, kind="simulation") as tmp:
            write_spectra(self.spectra, tmp / "spectra.csv")
            write_spectra(self.spectra.with_intensity(self.clean), tmp / "clean.csv")
            write_table_csv(self.targets, tmp / "targets.csv")
            write_table_csv(self.params, tmp / "params.csv")
            if self.config.process is not None:
                write_table_csv(self.params[list(PROCESS_PARAMETERS)], tmp / "process.csv")
            self.peaks.to_csv(tmp / "peaks.csv", index=False, float_format="%.8g")
            (tmp / "truth.json").write_text(json.dumps(self.truth(), indent=1, default=str))
            if preview:
                plot_preview(self, tmp / "preview.png")
        return directory


# --- generator -----------------------------------------------------------------------------------
def _tiled_categorical(values: np.ndarray, n: int) -> pd.Categorical:
    categories, codes = np.unique(values, return_inverse=True)
    return pd.Categorical.from_codes(np.tile(codes, n), categories=categories)


def _lognormal(rng: np.random.Generator, median: float, sigma: float, size) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(size))


def simulate_icpms(n: int, *, seed: int = 0, config: ICPMSConfig | None = None,
                   concentration_range_factor: float = 1.0, chunk: int = 256,
                   workers: int | None = None) -> ICPMSSimulation:
    """Simulate `n` ICP-MS spectra; deterministic for a seed.

    concentration_range_factor > 1 widens the log-normal concentration distribution (its sigma is
    multiplied), e.g. for a test set drawn from a wider range than training (seed protocol).
    Spectra are processed in blocks of `chunk` by `workers` threads (default: all CPUs); the result
    depends on n, seed, config and chunk, not on workers.
    """
    if n < 1:
        raise InputError(f"number of spectra must be >= 1, got {n}")
    if concentration_range_factor <= 0:
        raise InputError(f"concentration_range_factor must be > 0, got {concentration_range_factor:g}")
    config = config or ICPMSConfig()
    inst = config.instrument
    rng = np.random.default_rng(seed)
    axis = mz_axis(inst)
    step = axis[1] - axis[0]
    ids = pd.Index([f"s{i:0{len(str(n - 1))}d}" for i in range(n)], name="id")

    # per-spectrum draws
    sigma = config.concentration_sigma * concentration_range_factor
    conc = _lognormal(rng, config.concentration_median, sigma, (n, len(config.analytes)))
    interferent_conc = _lognormal(rng, config.interferent_median, config.interferent_sigma,
                                  (n, len(config.interferents)))
    drift = _lognormal(rng, 1.0, config.sensitivity_drift_sd, n)
    mass_bias = config.mass_bias_sd * rng.standard_normal(n)
    shift_steps = np.rint(config.mass_shift_sd * rng.standard_normal(n) / step * config.shift_subdivisions).astype(int)
    mass_shift = shift_steps * step / config.shift_subdivisions
    oxide = _lognormal(rng, config.oxide_ratio, config.plasma_sd, n)
    doubly = _lognormal(rng, config.doubly_charged_ratio, config.plasma_sd, n)
    sources = list(dict.fromkeys(src for _, src, _ in config.polyatomics))
    source_level = {src: _lognormal(rng, 1.0, config.plasma_sd if src == "plasma" else config.matrix_sd, n)
                    for src in sources}
    background = _lognormal(rng, 1.0, config.background_sd, n)
    process = config.process.draw(np.random.default_rng([seed, 1]), n) if config.process else None
    element_gain: dict[str, np.ndarray] = {}  # matrix effect on each element's M+ (ionisation, transport)
    if process is not None:
        oxide_factor, doubly_factor = config.process.ratio_factors(process)
        oxide, doubly = oxide * oxide_factor, doubly * doubly_factor
        matrix_load = process["tds_g_l"].to_numpy() / config.process.tds_median
        source_level = {src: level if src == "plasma" else level * matrix_load for src, level in source_level.items()}
        temperature = config.process.plasma_temperature(process, config.ionisation_temperature)
        process["plasma_temperature_k"] = temperature
        sample = config.process.sample_factor(process)
        element_gain = {element: sample * config.ionised_fraction(element, temperature)
                        / config.ionised_fraction(element, config.ionisation_temperature)
                        for _, element, kind, _ in _ion_list(config) if kind != "polyatomic"}

    # ion levels (cps at reference transmission, before drift) -> peak heights (counts)
    ions = _ion_list(config)
    comps = _components(config, ions)
    parent_conc = {s: conc[:, j] for j, s in enumerate(config.analytes)}
    parent_conc |= {s: interferent_conc[:, j] for j, s in enumerate(config.interferents)}
    if config.internal_standard:
        parent_conc[config.internal_standard] = np.full(n, config.internal_standard_conc)
    poly_rate = {species: (src, rate * config.polyatomic_scale) for species, src, rate in config.polyatomics}
    levels = np.empty((n, len(ions)))
    for j, (species, element, kind, charge) in enumerate(ions):
        if kind == "polyatomic":
            src, rate = poly_rate[species]
            levels[:, j] = rate * source_level[src]
        else:
            levels[:, j] = parent_conc[element] * config.element_sensitivity(element)
            if kind == "oxide":
                levels[:, j] *= oxide
            elif kind == "doubly_charged":
                levels[:, j] *= doubly * config.doubly_charged_factor(element)
            levels[:, j] *= element_gain.get(element, 1.0)
    response = inst.transmission(comps.mz[None, :], mass_bias[:, None]) * drift[:, None]
    if process is not None:
        response *= config.process.space_charge(process, comps.mz, inst.reference_mz)
    heights = levels[:, comps.level] * comps.fraction[None, :] * response * inst.dwell_time

    # render and add noise per sub-channel shift (tasks run in threads; numpy releases the GIL):
    # templates sampled from peaks rendered once on a fine grid, integer channel shifts by slicing
    whole, part = np.divmod(shift_steps, config.shift_subdivisions)
    pad = int(np.abs(whole).max()) + 1
    widths = inst.fwhm(comps.mz)
    fine = _fine_peaks(axis, pad, config.shift_subdivisions, comps.mz, widths, inst)
    heights32 = heights.astype(np.float32)
    baseline = ((config.background_constant + config.background_slope * (axis - inst.mz_min))
                * inst.dwell_time).astype(np.float32)
    clean = np.empty((n, axis.size), dtype=np.float32)
    noisy = np.empty_like(clean)
    noise_seeds = rng.integers(2 ** 63, size=config.shift_subdivisions)

    def render(sub: int) -> None:
        templates = _shifted_templates(fine, axis.size + 2 * pad, config.shift_subdivisions, sub)
        noise_rng = np.random.default_rng(noise_seeds[sub])
        members = np.flatnonzero(part == sub)
        for k in np.unique(whole[members]):
            same_shift = members[whole[members] == k]
            for start in range(0, same_shift.size, chunk):
                rows = same_shift[start:start + chunk]
                block = heights32[rows] @ templates[:, pad - k: pad - k + axis.size]
                block += background[rows, None].astype(np.float32) * baseline
                if inst.dead_time:
                    block /= 1 + block * np.float32(inst.dead_time / inst.dwell_time)
                clean[rows] = block
                counts = poisson_counts(noise_rng, block) if config.poisson else block.copy()
                if config.gaussian_noise_rel:
                    counts += config.gaussian_noise_rel * block * noise_rng.standard_normal(block.shape,
                                                                                            dtype=np.float32)
                noisy[rows] = counts

    with ThreadPoolExecutor(max_workers=max(1, workers or os.cpu_count() or 1)) as pool:
        list(pool.map(render, np.unique(part)))

    params = pd.DataFrame({
        "mass_shift": mass_shift, "sensitivity_drift": drift, "mass_bias": mass_bias,
        "oxide_ratio": oxide, "doubly_charged_ratio": doubly,
        "background_cps": background * config.background_constant,
        "background_slope": background * config.background_slope,
        **{f"{src}_level": level for src, level in source_level.items()},
        **{f"conc_{s}": interferent_conc[:, j] for j, s in enumerate(config.interferents)},
    }, index=ids)
    if process is not None:
        params = pd.concat([params, process.set_index(ids)], axis=1)
    if config.internal_standard:
        standard = comps.kind == "internal_standard"
        is_mz, is_frac = comps.mz[standard], comps.fraction[standard]
        nominal = (is_frac * inst.transmission(is_mz)).sum()
        params["is_recovery"] = (response[:, standard] @ is_frac) * element_gain.get(config.internal_standard, 1.0) \
            / nominal
    peaks = pd.DataFrame({
        "id": pd.Categorical.from_codes(np.repeat(np.arange(n), comps.mz.size), categories=ids),
        **{name: _tiled_categorical(getattr(comps, name), n) for name in ("species", "element", "kind")},
        "mass_number": np.tile(comps.mass_number, n).astype(np.int16),
        "charge": np.tile(comps.charge, n).astype(np.int8),
        "centre": (comps.mz[None, :] + mass_shift[:, None]).ravel(),
        "width": np.tile(widths, n),
        "amplitude": heights.ravel(),
    })
    targets = pd.DataFrame(conc, index=ids, columns=list(config.analytes))
    spectra = Spectra(noisy, axis, axis_kind="mz", meta=params)
    return ICPMSSimulation(spectra, targets, clean, peaks, params, config, seed, concentration_range_factor)


# --- preview -------------------------------------------------------------------------------------
def plot_preview(sim: ICPMSSimulation, path: str | Path, *, n_show: int = 3,
                 zoom: tuple[float, float] = (73.5, 82.5)) -> Path:
    """PNG: a few spectra with their clean versions, and a zoom on an overlap region."""
    from speclearn.report import pyplot, save_figure
    plt = pyplot()

    axis = sim.spectra.axis
    noisy = sim.spectra.values()
    show = range(min(n_show, len(noisy)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5))
    for i in show:
        top.plot(axis, noisy[i] + 1, lw=0.5, alpha=0.6, label=f"{sim.spectra.ids[i]} measured")
        top.plot(axis, sim.clean[i] + 1, lw=0.8, color=f"C{i}", ls="--", label=f"{sim.spectra.ids[i]} clean")
    top.set_yscale("log")
    top.set(xlabel="m/z", ylabel="counts + 1", title="Synthetic ICP-MS spectra (measured vs clean)")
    top.legend(fontsize=7, ncol=3)
    low, high = max(zoom[0], axis[0]), min(zoom[1], axis[-1])
    if high <= low:
        low, high = axis[0], axis[-1]
    inside = (axis >= low) & (axis <= high)
    bottom.plot(axis[inside], noisy[0, inside], lw=0.6, color="0.5", label="measured")
    bottom.plot(axis[inside], sim.clean[0, inside], lw=1.0, color="k", label="clean")
    first = sim.peaks[(sim.peaks["id"] == sim.spectra.ids[0]) & sim.peaks["centre"].between(low, high)]
    for species, kind, charge in first[["species", "kind", "charge"]].drop_duplicates().itertuples(index=False):
        rows = first[(first["species"] == species) & (first["kind"] == kind) & (first["charge"] == charge)]
        if rows["amplitude"].max() < 1e-3 * max(sim.clean[0, inside].max(), 1):
            continue
        ion = rows["amplitude"].to_numpy() @ render_peaks(axis[inside], rows["centre"].to_numpy(),
                                                            rows["width"].to_numpy(), sim.config.instrument)
        label = f"{species}{'2+' if charge == 2 else '+'} ({kind})"
        bottom.plot(axis[inside], ion, lw=0.8, ls=":", label=label)
    bottom.set(xlabel="m/z", ylabel="counts", title=f"{sim.spectra.ids[0]}: overlaps in m/z {low:g}-{high:g}")
    bottom.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    return save_figure(fig, path)
