"""Synthetic LIBS spectra with full ground truth (ChemCam-like, paired instruments, maps).

Three settings share one plasma model (`libs_lines`): line emission from libskit's NIST table with
Boltzmann level and Saha stage populations, Stark + Doppler + instrument (Voigt) broadening, and a
recombination/bremsstrahlung continuum.

- `simulate_chemcam`: a ChemCam-like instrument (UV, VIO, VNIR spectrometers, 240-905 nm, 3 x 2048
  channels) looking at calibration targets of known oxide composition, several locations and shots
  each. The measurement is y = R * (lines + continuum) + dark + shot noise, where R is a
  multiplicative spectral response that drifts between shots. `clean` is the line emission seen by
  an ideal flat-response instrument; `noise = spectra - clean` (non-zero mean).
- `simulate_paired`: two spectrometers viewing the same plasma (Vrábel et al., JAAS 2023): primary 245-407 nm
  (4062 channels), secondary 260-370 nm (3872 channels), different resolution and response.
- `simulate_libs_map`: the paired instruments raster a heterogeneous sample of similar mineral
  phases; one spectrum per pixel, phase abundance maps as ground truth.

Every knob is a keyword (`LIBSKnobs`); unknown or invalid knobs raise InputError. All random draws
come from independent streams of one `numpy.random.SeedSequence(seed)`, so the same seed gives the
same data and `other_day=True` changes only the instrument, not the plasma.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import atomic_path, write_spectra, write_table_csv
from speclearn.simulate.libs_lines import (continuum_shape, line_emissivity, line_table, render_lines)

OXIDES = ("SiO2", "TiO2", "Al2O3", "FeOT", "MgO", "CaO", "Na2O", "K2O")
#: Oxide -> (element, cations per formula, oxygens per formula, formula for the molar mass).
_OXIDE_FORMULA = {"SiO2": ("Si", 1, 2, "SiO2"), "TiO2": ("Ti", 1, 2, "TiO2"), "Al2O3": ("Al", 2, 3, "Al2O3"),
                  "FeOT": ("Fe", 1, 1, "FeO"), "MgO": ("Mg", 1, 1, "MgO"), "CaO": ("Ca", 1, 1, "CaO"),
                  "Na2O": ("Na", 2, 1, "Na2O"), "K2O": ("K", 2, 1, "K2O")}
ELEMENTS = ("Si", "Ti", "Al", "Fe", "Mg", "Ca", "Na", "K", "O")

#: End-member rock compositions (oxide wt%, order `OXIDES`) mixed to make calibration targets, in
#: the spirit of ChemCam's standards (igneous rocks, sediments, TiO2 and Fe-oxide doped mixtures).
END_MEMBERS = pd.DataFrame(
    [[49.2, 1.8, 14.5, 11.5, 7.5, 10.5, 2.6, 0.6],    # basalt
     [58.0, 0.9, 17.0, 7.0, 3.5, 7.0, 3.5, 1.6],      # andesite
     [73.5, 0.25, 13.5, 1.9, 0.4, 1.2, 3.8, 4.4],     # rhyolite
     [44.0, 0.2, 4.0, 8.5, 38.0, 3.5, 0.3, 0.05],     # peridotite
     [62.0, 0.8, 17.0, 6.5, 2.5, 1.5, 1.2, 3.6],      # shale
     [20.0, 0.2, 4.0, 1.5, 2.0, 40.0, 0.3, 0.8],      # marl (rest CO2)
     [52.0, 0.1, 28.0, 0.8, 0.5, 12.0, 4.2, 0.4],     # anorthosite
     [60.0, 0.6, 18.0, 4.0, 0.8, 2.5, 6.5, 6.0],      # syenite
     [37.0, 25.0, 11.0, 8.6, 5.6, 8.0, 2.0, 0.45],    # basalt + 25 % TiO2
     [35.0, 1.0, 8.0, 40.0, 3.0, 4.0, 1.0, 0.5]],     # Fe-oxide rich soil
    index=["basalt", "andesite", "rhyolite", "peridotite", "shale", "marl", "anorthosite", "syenite",
           "tio2_mix", "iron_soil"], columns=list(OXIDES))

#: Mineral phases for map mode (oxide wt%), most similar first: the plagioclase series, alkali
#: feldspars, then the other minerals of a granitic pegmatite (Vrábel et al., JAAS 2023: quartz, albite, muscovite).
MINERALS = pd.DataFrame(
    [[68.7, 0.0, 19.4, 0.0, 0.0, 0.0, 11.8, 0.0],     # albite An0
     [64.5, 0.0, 22.3, 0.1, 0.0, 3.5, 9.6, 0.2],      # oligoclase An20
     [59.8, 0.0, 25.4, 0.1, 0.0, 7.7, 7.0, 0.2],      # andesine An40
     [55.6, 0.0, 28.1, 0.2, 0.1, 11.1, 4.9, 0.1],     # labradorite An55
     [49.0, 0.0, 32.3, 0.2, 0.1, 15.6, 2.5, 0.1],     # bytownite An80
     [43.2, 0.0, 36.6, 0.1, 0.0, 20.1, 0.0, 0.0],     # anorthite An100
     [64.8, 0.0, 18.3, 0.1, 0.0, 0.0, 1.0, 15.5],     # orthoclase
     [65.5, 0.0, 18.8, 0.1, 0.0, 0.3, 3.5, 11.5],     # perthite
     [99.5, 0.0, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0],       # quartz
     [45.3, 0.3, 35.0, 1.5, 0.5, 0.0, 0.6, 10.5],     # muscovite
     [36.5, 2.5, 15.5, 20.5, 10.5, 0.0, 0.3, 9.0],    # biotite
     [36.5, 0.1, 20.5, 38.0, 3.0, 1.5, 0.0, 0.0]],    # almandine
    index=["albite", "oligoclase", "andesine", "labradorite", "bytownite", "anorthite", "orthoclase",
           "perthite", "quartz", "muscovite", "biotite", "almandine"], columns=list(OXIDES))


@dataclass(frozen=True)
class Spectrometer:
    """One detector: `n_channels` channels from `start` to `stop` nm; Gaussian instrument FWHM
    varying linearly from `fwhm_start` to `fwhm_stop`; `throughput` scales its static response
    (a blaze-like Gaussian in wavelength centred at `blaze_nm`, relative width `blaze_width`)."""
    name: str
    start: float
    stop: float
    n_channels: int
    fwhm_start: float
    fwhm_stop: float
    throughput: float = 1.0
    blaze_nm: float | None = None
    blaze_width: float = 0.8

    def axis(self) -> np.ndarray:
        return np.linspace(self.start, self.stop, self.n_channels)

    def fwhm(self) -> np.ndarray:
        return np.linspace(self.fwhm_start, self.fwhm_stop, self.n_channels)

    def response(self) -> np.ndarray:
        axis = self.axis()
        centre = 0.5 * (self.start + self.stop) if self.blaze_nm is None else self.blaze_nm
        span = self.blaze_width * (self.stop - self.start)
        return self.throughput * np.exp(-0.5 * ((axis - centre) / span) ** 2)


#: ChemCam's three spectrometers (Wiens et al. 2012/2013): the gaps between them and the SpectroscopyNet (Castorena & Oyen)
#: masked bands (`CHEMCAM_MASKED_BANDS`) leave ~5,485 of the 6,144 channels.
CHEMCAM = (Spectrometer("UV", 240.811, 342.191, 2048, 0.15, 0.15, 1.0, 300.0),
           Spectrometer("VIO", 382.132, 469.064, 2048, 0.20, 0.20, 0.6, 430.0),
           Spectrometer("VNIR", 473.184, 905.574, 2048, 0.65, 0.65, 0.7, 650.0))
#: The two Czerny-Turner spectrometers of Vrábel et al. (JAAS 2023; resolution from the paper).
PRIMARY = Spectrometer("primary", 245.0, 407.0, 4062, 0.035, 0.046, 1.0, 330.0)
SECONDARY = Spectrometer("secondary", 260.0, 370.0, 3872, 0.023, 0.032, 0.7, 300.0, 0.6)


@dataclass(frozen=True)
class LIBSKnobs:
    """Every setting of the LIBS simulators; pass any of them as a keyword to `simulate_*`.

    Plasma: mean temperature (K), its shot-to-shot and per-target (matrix effect) spread; electron
    density (m^-3) follows T^`density_temperature_exponent` with a log-normal shot spread; total
    intensity (laser coupling) log-normal spread; per-location composition heterogeneity.
    Broadening: `stark` on/off, `instrument_fwhm_scale` multiplies every instrument FWHM.
    Instrument noise (each on/off + level): continuum (`continuum_fraction` of `peak_counts` at
    400 nm for the reference plasma; `continuum_follows_plasma=False` freezes it at the reference
    plasma), multiplicative static `response` and its shot-to-shot `response_drift` (relative, 0 =
    stationary), `dark` current (`dark_level` of `peak_counts`), `shot_noise` (variance = `gain` x
    signal + `read_noise`^2). Other day (paired/map): `calibration_shift_nm` (primary +, secondary
    -0.6x), `day_response_change`, `day_baseline_change`. Map: `boundary_width` (pixels),
    `grains_per_phase`.
    """
    temperature: float = 8000.0
    temperature_shot_sd: float = 250.0
    temperature_target_sd: float = 350.0
    electron_density: float = 1e23
    density_temperature_exponent: float = 2.0
    electron_density_shot_sd: float = 0.1
    intensity_shot_sd: float = 0.15
    location_heterogeneity: float = 0.03
    stark: bool = True
    instrument_fwhm_scale: float = 1.0
    peak_counts: float = 20000.0
    continuum: bool = True
    continuum_fraction: float = 0.04
    continuum_follows_plasma: bool = True
    response: bool = True
    response_drift: float = 0.05
    dark: bool = True
    dark_level: float = 0.02
    shot_noise: bool = True
    gain: float = 1.0
    read_noise: float = 5.0
    collection_sd: float = 0.03
    calibration_shift_nm: float = 0.03
    day_response_change: float = 0.1
    day_baseline_change: float = 0.5
    boundary_width: float = 1.5
    grains_per_phase: int = 3
    min_line_strength: float = 1e-3

    @classmethod
    def from_keywords(cls, **knobs) -> "LIBSKnobs":
        names = {f.name: f for f in fields(cls)}
        for name, value in knobs.items():
            if name not in names:
                raise InputError(f"unknown LIBS knob {name!r}; known: {', '.join(names)}")
            if isinstance(value, bool) != (names[name].type == "bool"):
                raise InputError(f"knob {name!r} must be {names[name].type}, got {value!r}")
            if not isinstance(value, bool) and (not np.isfinite(value) or value < 0):
                raise InputError(f"knob {name!r} must be a finite number >= 0, got {value!r}")
        knob = cls(**{k: int(v) if names[k].type == "int" else v for k, v in knobs.items()})
        if knob.temperature < 3000 or knob.electron_density <= 0 or knob.peak_counts <= 0 \
                or knob.grains_per_phase < 1:
            raise InputError("temperature must be >= 3000 K, electron_density and peak_counts > 0, "
                             "grains_per_phase >= 1")
        return knob


# --- ground-truth containers ---------------------------------------------------------------------
def _write_array_spectra(folder: Path, name: str, spectra: Spectra) -> None:
    write_spectra(spectra, folder / f"{name}.zarr" if spectra.is_image else folder / f"{name}.csv")


@dataclass
class LIBSSimulation:
    """ChemCam-like simulation. `spectra` = `clean` + `noise`; `clean` is the line emission through
    an ideal flat-response instrument (no continuum, dark current or noise). `lines` is the line
    table used (ground truth for positions)."""
    spectra: Spectra
    clean: np.ndarray
    noise: np.ndarray
    compositions: pd.DataFrame
    targets: pd.DataFrame
    groups: pd.Series
    lines: pd.DataFrame
    knobs: LIBSKnobs

    def write(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """spectra.csv, clean.csv, noise.csv, targets.csv, groups.csv, metadata.csv,
        compositions.csv, lines.csv, knobs.csv into `directory`, which appears whole or not at all."""
        with atomic_path(directory, overwrite=overwrite, directory=True, kind="simulation") as tmp:
            write_spectra(self.spectra, tmp / "spectra.csv")
            write_spectra(self.spectra.with_intensity(self.clean), tmp / "clean.csv")
            write_spectra(self.spectra.with_intensity(self.noise), tmp / "noise.csv")
            _write_tables(tmp, self.targets, self.groups, self.spectra.meta, self.compositions,
                          self.lines, self.knobs)
        return Path(directory)


@dataclass
class PairedLIBSSimulation:
    """Two instruments viewing the same plasma; same ids in the same order. In map mode the spectra
    are images (y, x, channels) and `phase_maps` (n_phases, y, x) holds the phase abundances."""
    primary: Spectra
    secondary: Spectra
    clean_primary: np.ndarray
    clean_secondary: np.ndarray
    response_primary: np.ndarray
    response_secondary: np.ndarray
    compositions: pd.DataFrame
    targets: pd.DataFrame
    groups: pd.Series
    phase_maps: np.ndarray | None
    lines: pd.DataFrame
    knobs: LIBSKnobs

    def write(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """primary/secondary/clean_primary/clean_secondary (.csv, or .zarr for maps), targets.csv,
        groups.csv, metadata.csv, compositions.csv, lines.csv, knobs.csv, phase_maps.npy (maps)."""
        with atomic_path(directory, overwrite=overwrite, directory=True, kind="simulation") as tmp:
            _write_array_spectra(tmp, "primary", self.primary)
            _write_array_spectra(tmp, "secondary", self.secondary)
            _write_array_spectra(tmp, "clean_primary", self.primary.with_intensity(self.clean_primary))
            _write_array_spectra(tmp, "clean_secondary", self.secondary.with_intensity(self.clean_secondary))
            _write_tables(tmp, self.targets, self.groups, self.primary.meta, self.compositions,
                          self.lines, self.knobs)
            if self.phase_maps is not None:
                np.save(tmp / "phase_maps.npy", self.phase_maps)
        return Path(directory)


def _write_tables(folder: Path, targets: pd.DataFrame, groups: pd.Series, meta: pd.DataFrame,
                  compositions: pd.DataFrame, lines: pd.DataFrame, knobs: LIBSKnobs) -> None:
    write_table_csv(targets, folder / "targets.csv")
    write_table_csv(groups.rename("group").to_frame(), folder / "groups.csv")
    write_table_csv(meta, folder / "metadata.csv")
    write_table_csv(compositions.rename_axis("id"), folder / "compositions.csv")
    write_table_csv(lines.rename_axis("id"), folder / "lines.csv")
    write_table_csv(pd.DataFrame([asdict(knobs)], index=pd.Index(["knobs"], name="id")), folder / "knobs.csv")


# --- composition and plasma ------------------------------------------------------------------------
def oxide_atoms(compositions: pd.DataFrame) -> pd.DataFrame:
    """Atoms (mol per 100 g) of each element, oxygen included, from oxide wt% (columns `OXIDES`)."""
    import periodictable
    atoms = pd.DataFrame(0.0, index=compositions.index, columns=list(ELEMENTS))
    for oxide, (element, cations, oxygens, formula) in _OXIDE_FORMULA.items():
        moles = compositions[oxide].to_numpy(dtype=float) / periodictable.formula(formula).mass
        atoms[element] += cations * moles
        atoms["O"] += oxygens * moles
    return atoms


def check_compositions(compositions: pd.DataFrame) -> pd.DataFrame:
    """Oxide wt% table with columns `OXIDES`, values >= 0 and rows summing to <= 100."""
    missing = [o for o in OXIDES if o not in compositions.columns]
    if missing:
        raise InputError(f"compositions lack oxide column(s) {', '.join(missing)}")
    table = compositions[list(OXIDES)].astype(float)
    bad = ~np.isfinite(table.to_numpy()) | (table.to_numpy() < 0)
    if bad.any():
        r, c = (int(x[0]) for x in np.nonzero(bad))
        raise InputError("oxide wt% must be finite and >= 0", row=f"{r + 1} ({table.index[r]})", column=OXIDES[c])
    total = table.sum(axis=1)
    if (total > 100.5).any() or (total <= 0).any():
        name = table.index[int(np.flatnonzero((total > 100.5) | (total <= 0))[0])]
        raise InputError(f"oxide wt% of {name!r} sum to {total[name]:.2f}; must be in (0, 100]")
    table.index = table.index.astype(str).rename("target")
    return table


def random_compositions(n_targets: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n_targets` calibration-standard-like compositions: Dirichlet mixtures of `END_MEMBERS`."""
    weights = rng.dirichlet(np.full(len(END_MEMBERS), 0.4), size=n_targets)
    table = pd.DataFrame(weights @ END_MEMBERS.to_numpy(), columns=list(OXIDES),
                         index=pd.Index([f"t{i:03d}" for i in range(n_targets)], name="target"))
    return table.round(3)


def _sample_plasma(knob: LIBSKnobs, n: int, target_index: np.ndarray, n_targets: int,
                   rng: np.random.Generator) -> pd.DataFrame:
    """Shot plasma parameters: temperature (target offset + shot spread), correlated electron
    density, total intensity factor."""
    target_shift = rng.normal(0, knob.temperature_target_sd, n_targets)
    temperature = knob.temperature + target_shift[target_index] + rng.normal(0, knob.temperature_shot_sd, n)
    temperature = np.clip(temperature, 4000.0, 30000.0)
    density = knob.electron_density * (temperature / knob.temperature) ** knob.density_temperature_exponent \
        * np.exp(rng.normal(0, knob.electron_density_shot_sd, n))
    intensity = np.exp(rng.normal(0, knob.intensity_shot_sd, n))
    return pd.DataFrame({"temperature_K": temperature, "electron_density_m3": density,
                         "intensity_factor": intensity})


def _reference_scale(knob: LIBSKnobs, lines: pd.DataFrame, axis: np.ndarray, fwhm: np.ndarray) -> float:
    """Factor that puts the strongest line of a basalt at the reference plasma at `peak_counts`."""
    atoms = oxide_atoms(END_MEMBERS.loc[["basalt"]])
    t, ne = np.array([knob.temperature]), np.array([knob.electron_density])
    spectrum = render_lines(line_emissivity(lines, atoms, t, ne), lines, axis, fwhm, ne,
                            stark=knob.stark, temperature=knob.temperature)
    return knob.peak_counts / spectrum.max()


def _continuum(knob: LIBSKnobs, axis: np.ndarray, plasma: pd.DataFrame) -> np.ndarray:
    """(n, channels) continuum counts; frozen at the reference plasma unless it follows the plasma."""
    width = np.gradient(axis)
    reference = continuum_shape(np.array([400.0]), [knob.temperature], [knob.electron_density])[0, 0]
    if knob.continuum_follows_plasma:
        shape = continuum_shape(axis, plasma["temperature_K"], plasma["electron_density_m3"])
        shape *= plasma["intensity_factor"].to_numpy()[:, None]
    else:
        shape = np.repeat(continuum_shape(axis, [knob.temperature], [knob.electron_density]), len(plasma), 0)
    width = np.where(width > 5 * np.median(width), np.median(width), width)
    return knob.continuum_fraction * knob.peak_counts * shape / reference * width / np.median(width)


def _legendre_field(spectrometers: tuple[Spectrometer, ...], coefficients: np.ndarray) -> np.ndarray:
    """(n, channels) smooth field: per spectrometer sum_j c[n, s, j] P_j(x) with x in [-1, 1]."""
    parts = []
    for s, spec in enumerate(spectrometers):
        x = np.linspace(-1, 1, spec.n_channels)
        basis = np.polynomial.legendre.legvander(x, coefficients.shape[2] - 1)
        parts.append(coefficients[:, s, :] @ basis.T)
    return np.concatenate(parts, axis=1)


def _response(knob: LIBSKnobs, spectrometers: tuple[Spectrometer, ...], sequence: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """(n, channels) multiplicative response: static blaze x exp(drift). The drift is an offset per
    acquisition sequence (`sequence` labels, e.g. target location) plus a random walk over its shots
    that wanders ~`response_drift` over the whole sequence."""
    static = np.concatenate([s.response() for s in spectrometers])
    static = static if knob.response else np.ones_like(static)
    n = sequence.size
    if knob.response_drift == 0:
        return np.repeat(static[None, :], n, 0)
    shape = (len(spectrometers), 3)
    labels, first = np.unique(sequence, return_inverse=True)
    offset = rng.normal(0, knob.response_drift, (labels.size, *shape))[first]
    steps = rng.normal(0, knob.response_drift, (n, *shape))
    walk = np.zeros_like(steps)
    for label in range(labels.size):
        rows = np.flatnonzero(first == label)
        walk[rows] = np.cumsum(steps[rows], axis=0) / np.sqrt(rows.size)
    return static[None, :] * np.exp(_legendre_field(spectrometers, offset + walk))


def _dark(knob: LIBSKnobs, spectrometers: tuple[Spectrometer, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, channels) dark current: per-detector level with a thermal gradient and fixed pattern, and a
    small shot-to-shot level jitter (stationary)."""
    parts = []
    for spec in spectrometers:
        x = np.linspace(-1, 1, spec.n_channels)
        level = knob.dark_level * knob.peak_counts * rng.uniform(0.6, 1.4)
        pattern = 1 + 0.25 * x + 0.15 * x ** 2 + rng.normal(0, 0.03, spec.n_channels)
        jitter = 1 + rng.normal(0, 0.02, (n, 1))
        parts.append(level * pattern[None, :] * jitter)
    return np.concatenate(parts, axis=1)


def _measure(knob: LIBSKnobs, signal: np.ndarray, baseline: np.ndarray, response: np.ndarray,
             dark: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """y = response * (signal + baseline) + dark + counting noise (Gaussian approximation of Poisson)."""
    expected = response * (signal + baseline) + dark
    if not knob.shot_noise:
        return expected
    sd = np.sqrt(knob.gain * np.maximum(expected, 0) + knob.read_noise ** 2)
    return expected + rng.normal(0, 1, expected.shape) * sd


def remeasure(expected: Spectra, *, seed: int = 0, **knobs) -> Spectra:
    """`expected` (spectra simulated with `shot_noise=False`) measured once more: a fresh draw of the
    counting noise, everything else (plasma, response, dark) as it was."""
    knob = LIBSKnobs.from_keywords(**knobs)
    values = _measure(knob, np.asarray(expected.intensity, float), 0.0, 1.0, 0.0, np.random.default_rng(seed))
    return expected.with_intensity(values.astype(np.float32))


def _streams(seed: int, n: int = 6) -> list[np.random.Generator]:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(n)]


def _check_count(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _emission(knob: LIBSKnobs, lines: pd.DataFrame, compositions: pd.DataFrame, plasma: pd.DataFrame) -> np.ndarray:
    """(n, lines) emissivities for per-spectrum compositions (rows aligned with `plasma`)."""
    atoms = oxide_atoms(compositions)
    emissivity = line_emissivity(lines, atoms, plasma["temperature_K"].to_numpy(),
                                 plasma["electron_density_m3"].to_numpy())
    return emissivity * plasma["intensity_factor"].to_numpy()[:, None]


def _spectra_axis(spectrometers: tuple[Spectrometer, ...]) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([s.axis() for s in spectrometers]), np.concatenate([s.fwhm() for s in spectrometers]))


def _lines_for(knob: LIBSKnobs, axis: np.ndarray) -> pd.DataFrame:
    return line_table(ELEMENTS, (float(axis.min()) - 2, float(axis.max()) + 2), min_strength=knob.min_line_strength,
                      temperature=knob.temperature)


# --- ChemCam ---------------------------------------------------------------------------------------
def simulate_chemcam(n_targets: int = 40, n_locations: int = 3, shots_per_location: int = 10, *,
                     seed: int = 0, compositions: pd.DataFrame | None = None, **knobs) -> LIBSSimulation:
    """ChemCam-like LIBS of `n_targets` calibration targets x `n_locations` x `shots_per_location`.

    compositions: optional oxide wt% table (index target names, columns `OXIDES`) used instead of
    random targets. knobs: any `LIBSKnobs` field. Spectrum ids: `<target>_L<loc>_S<shot>`.
    """
    knob = LIBSKnobs.from_keywords(**knobs)
    _check_count("n_locations", n_locations)
    _check_count("shots_per_location", shots_per_location)
    rng_comp, rng_plasma, rng_resp, rng_dark, rng_noise, _ = _streams(seed)
    if compositions is None:
        _check_count("n_targets", n_targets)
        compositions = random_compositions(n_targets, rng_comp)
    else:
        compositions = check_compositions(compositions)
    n_t = len(compositions)
    per_target = n_locations * shots_per_location
    target_index = np.repeat(np.arange(n_t), per_target)
    location = np.tile(np.repeat(np.arange(n_locations), shots_per_location), n_t)
    shot = np.tile(np.arange(shots_per_location), n_t * n_locations)
    names = compositions.index.to_numpy()[target_index]
    ids = pd.Index([f"{t}_L{loc}_S{s:02d}" for t, loc, s in zip(names, location, shot)], name="id")

    local = compositions.to_numpy()[target_index] * np.exp(
        np.repeat(rng_comp.normal(0, knob.location_heterogeneity, (n_t * n_locations, len(OXIDES))),
                  shots_per_location, 0))
    plasma = _sample_plasma(knob, ids.size, target_index, n_t, rng_plasma)
    axis, fwhm = _spectra_axis(CHEMCAM)
    fwhm = fwhm * knob.instrument_fwhm_scale
    lines = _lines_for(knob, axis)
    scale = _reference_scale(knob, lines, axis, fwhm)
    emission = _emission(knob, lines, pd.DataFrame(local, columns=list(OXIDES)), plasma) * scale
    clean = render_lines(emission, lines, axis, fwhm, plasma["electron_density_m3"].to_numpy(),
                         stark=knob.stark, temperature=knob.temperature)
    continuum = _continuum(knob, axis, plasma) if knob.continuum else np.zeros_like(clean)
    response = _response(knob, CHEMCAM, target_index * n_locations + location, rng_resp)
    dark = _dark(knob, CHEMCAM, ids.size, rng_dark) if knob.dark else np.zeros_like(clean)
    measured = _measure(knob, clean, continuum, response, dark, rng_noise)

    meta = pd.DataFrame({"target": names, "location": location, "shot": shot}, index=ids)
    meta = pd.concat([meta, plasma.set_index(ids)], axis=1)
    meta["response_drift_rms"] = np.sqrt(np.mean(np.log(response / response.mean(axis=0)) ** 2, axis=1))
    meta["continuum_counts"] = continuum.mean(axis=1)
    spectra = Spectra(measured, axis, axis_kind="wavelength", axis_unit="nm", meta=meta)
    targets = pd.DataFrame(compositions.to_numpy()[target_index], index=ids, columns=list(OXIDES))
    return LIBSSimulation(spectra=spectra, clean=clean, noise=measured - clean, compositions=compositions,
                          targets=targets, groups=pd.Series(names, index=ids, name="group"), lines=lines,
                          knobs=knob)


# --- two instruments, one plasma ---------------------------------------------------------------------
def _day_changes(knob: LIBSKnobs, other_day: bool, rng: np.random.Generator) -> dict:
    """Instrument changes of another measurement day: calibration shifts, response and baseline."""
    if not other_day:
        return {"shift": (0.0, 0.0), "response": (np.zeros(3), np.zeros(3)), "baseline": 1.0, "tilt": 0.0}
    change = knob.day_response_change
    return {"shift": (knob.calibration_shift_nm, -0.6 * knob.calibration_shift_nm),
            "response": (rng.normal(0, change, 3), rng.normal(0, change, 3)),
            "baseline": 1 + knob.day_baseline_change, "tilt": knob.day_baseline_change}


def _paired_instruments(knob: LIBSKnobs, compositions_per_spectrum: pd.DataFrame, plasma: pd.DataFrame,
                        sequence: np.ndarray, other_day: bool, streams: list[np.random.Generator]):
    """Render the same plasma through the primary and secondary spectrometers."""
    rng_resp, rng_dark, rng_noise, rng_day = streams
    day = _day_changes(knob, other_day, rng_day)
    lines = _lines_for(knob, np.array([min(PRIMARY.start, SECONDARY.start), max(PRIMARY.stop, SECONDARY.stop)]))
    scale = _reference_scale(knob, lines, PRIMARY.axis(), PRIMARY.fwhm() * knob.instrument_fwhm_scale)
    emission = _emission(knob, lines, compositions_per_spectrum, plasma) * scale
    density = plasma["electron_density_m3"].to_numpy()
    results = []
    for k, spec in enumerate((PRIMARY, SECONDARY)):
        nominal = spec.axis()
        true_axis = nominal + day["shift"][k]
        collection = np.exp(rng_noise.normal(0, knob.collection_sd, (len(plasma), 1)))
        # the secondary's channels are narrower: same radiance gives fewer counts per channel
        clean = collection * render_lines(emission, lines, true_axis, spec.fwhm() * knob.instrument_fwhm_scale,
                                          density, stark=knob.stark, temperature=knob.temperature)
        baseline = np.zeros_like(clean)
        if knob.continuum:
            baseline = _continuum(knob, true_axis, plasma) * collection * day["baseline"] \
                * (true_axis / 330.0)[None, :] ** (-2 * day["tilt"])
        response = _response(knob, (spec,), sequence, rng_resp)
        x = np.linspace(-1, 1, spec.n_channels)
        response = response * np.exp(np.polynomial.legendre.legval(x, day["response"][k]))[None, :]
        dark = _dark(knob, (spec,), len(plasma), rng_dark) if knob.dark else np.zeros_like(clean)
        measured = _measure(knob, clean, baseline, response, dark, rng_noise)
        results.append((nominal, measured.astype(np.float32), clean.astype(np.float32), response.mean(axis=0)))
    return lines, results


def simulate_paired(n_spectra: int, *, seed: int = 0, n_targets: int = 50, other_day: bool = False,
                    compositions: pd.DataFrame | None = None, **knobs) -> PairedLIBSSimulation:
    """`n_spectra` paired shots (primary 245-407 nm / 4062 ch, secondary 260-370 nm / 3872 ch) of the
    same plasmas on `n_targets` targets (round-robin). `other_day=True` applies another day's
    instrument: wavelength-calibration shift, response change, baseline of another shape."""
    knob = LIBSKnobs.from_keywords(**knobs)
    _check_count("n_spectra", n_spectra)
    rng_comp, rng_plasma, *instrument = _streams(seed)
    if compositions is None:
        _check_count("n_targets", n_targets)
        compositions = random_compositions(n_targets, rng_comp)
    else:
        compositions = check_compositions(compositions)
    n_t = len(compositions)
    target_index = np.arange(n_spectra) % n_t
    names = compositions.index.to_numpy()[target_index]
    ids = pd.Index([f"p{i:0{len(str(n_spectra - 1))}d}" for i in range(n_spectra)], name="id")
    local = compositions.to_numpy()[target_index] * np.exp(rng_comp.normal(0, knob.location_heterogeneity,
                                                                            (n_spectra, len(OXIDES))))
    plasma = _sample_plasma(knob, n_spectra, target_index, n_t, rng_plasma)
    lines, results = _paired_instruments(knob, pd.DataFrame(local, columns=list(OXIDES)), plasma,
                                         target_index, other_day, instrument)
    meta = pd.concat([pd.DataFrame({"target": names}, index=ids), plasma.set_index(ids)], axis=1)
    meta["other_day"] = other_day
    spectra = [Spectra(r[1], r[0], axis_kind="wavelength", axis_unit="nm", meta=meta) for r in results]
    targets = pd.DataFrame(compositions.to_numpy()[target_index], index=ids, columns=list(OXIDES))
    return PairedLIBSSimulation(primary=spectra[0], secondary=spectra[1], clean_primary=results[0][2],
                                clean_secondary=results[1][2], response_primary=results[0][3],
                                response_secondary=results[1][3], compositions=compositions, targets=targets,
                                groups=pd.Series(names, index=ids, name="group"), phase_maps=None, lines=lines,
                                knobs=knob)


# --- hyperspectral map ---------------------------------------------------------------------------------
def phase_abundances(ny: int, nx: int, n_phases: int, *, grains_per_phase: int = 3, boundary_width: float = 1.5,
                     rng: np.random.Generator) -> np.ndarray:
    """(n_phases, ny, nx) abundances summing to 1: random grains (each phase owns `grains_per_phase`
    of them), mixed over ~`boundary_width` pixels at grain boundaries (soft-min of the distances)."""
    n_grains = n_phases * grains_per_phase
    centres = rng.uniform(0, 1, (n_grains, 2)) * [ny, nx]
    owner = np.arange(n_grains) % n_phases
    yy, xx = np.mgrid[0:ny, 0:nx]
    distance = np.sqrt((yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2)
    nearest = distance.min(axis=0)
    score = np.exp(-(distance - nearest[None]) / max(boundary_width, 1e-3) * 2)
    maps = np.zeros((n_phases, ny, nx))
    np.add.at(maps, owner, score)
    return maps / maps.sum(axis=0, keepdims=True)


def simulate_libs_map(ny: int, nx: int, *, n_phases: int = 8, seed: int = 0, other_day: bool = False,
                      **knobs) -> PairedLIBSSimulation:
    """A (ny, nx) raster over a sample of `n_phases` similar minerals (`MINERALS`, most similar
    first), one paired shot per pixel; `phase_maps` holds the true abundances, `groups` the dominant
    phase, `targets` each pixel's oxide wt%."""
    knob = LIBSKnobs.from_keywords(**knobs)
    _check_count("ny", ny)
    _check_count("nx", nx)
    if not isinstance(n_phases, (int, np.integer)) or not 2 <= n_phases <= len(MINERALS):
        raise InputError(f"n_phases must be an integer in 2..{len(MINERALS)}, got {n_phases!r}")
    rng_comp, rng_plasma, *instrument = _streams(seed)
    phases = MINERALS.iloc[:n_phases].rename_axis("target")
    maps = phase_abundances(ny, nx, n_phases, grains_per_phase=knob.grains_per_phase,
                            boundary_width=knob.boundary_width, rng=rng_comp)
    flat = maps.reshape(n_phases, -1).T
    local = (flat @ phases.to_numpy()) * np.exp(rng_comp.normal(0, knob.location_heterogeneity, (ny * nx, len(OXIDES))))
    dominant = flat.argmax(axis=1)
    iy, ix = np.divmod(np.arange(ny * nx), nx)
    width = len(str(ny * nx - 1))
    ids = pd.Index([f"s{i:0{width}d}" for i in range(ny * nx)], name="id")  # the ids image files get back
    plasma = _sample_plasma(knob, ny * nx, dominant, n_phases, rng_plasma)
    lines, results = _paired_instruments(knob, pd.DataFrame(local, columns=list(OXIDES)), plasma,
                                         np.zeros(ny * nx, dtype=int), other_day, instrument)
    names = phases.index.to_numpy()[dominant]
    meta = pd.concat([pd.DataFrame({"y": iy, "x": ix, "phase": names}, index=ids), plasma.set_index(ids)], axis=1)
    meta["other_day"] = other_day
    image = [Spectra(r[1].reshape(ny, nx, -1), r[0], axis_kind="wavelength", axis_unit="nm", meta=meta)
             for r in results]
    targets = pd.DataFrame(local, index=ids, columns=list(OXIDES))
    return PairedLIBSSimulation(primary=image[0], secondary=image[1], clean_primary=results[0][2].reshape(ny, nx, -1),
                                clean_secondary=results[1][2].reshape(ny, nx, -1), response_primary=results[0][3],
                                response_secondary=results[1][3], compositions=phases, targets=targets,
                                groups=pd.Series(names, index=ids, name="group"), phase_maps=maps, lines=lines,
                                knobs=knob)
