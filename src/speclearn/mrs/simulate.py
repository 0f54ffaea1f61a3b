"""Simulated single-voxel 1H MRS scans from a basis set, with full ground truth.

Each scan: concentrations in physiological ranges (and a share of pathological scans: low NAA, high
choline, lactate), Lorentzian + Gaussian broadening, frequency shift, zero/first-order phase,
eddy-current phase, residual water, lipids, macromolecules, a smooth baseline; then `transients`
transients each with its own frequency/phase drift, some corrupted (motion: signal loss, broadening,
a jump in frequency and phase; ghost: an out-of-voxel echo), and complex Gaussian noise at the asked
SNR (NAA peak height of the averaged spectrum / noise standard deviation of its real part).
A water reference follows the challenge's water-scaling convention (see `lcm.water_scale`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.io import write_table_csv
from speclearn.mrs.basis import Basis, load_basis
from speclearn.mrs.data import MRSData, first_order_phase, lineshape, ppm_axis, ppm_slice, shift_phase, to_spectrum
from speclearn.mrs.io import write_mrs

#: physiological ranges (mM), healthy brain at 3 T (de Graaf, In vivo NMR spectroscopy; Govindaraju 2000)
RANGES = {
    "Ace": (0.0, 0.5), "Ala": (0.1, 1.5), "Asc": (0.5, 2.0), "Asp": (1.0, 3.0), "Cr": (4.5, 10.5),
    "GABA": (1.0, 2.0), "GPC": (0.5, 2.0), "GSH": (1.5, 3.0), "Glc": (1.0, 2.0), "Gln": (2.0, 4.0),
    "Glu": (6.0, 12.5), "Gly": (0.5, 1.0), "Ins": (4.0, 9.0), "Lac": (0.2, 1.0), "NAA": (7.5, 17.0),
    "NAAG": (0.5, 2.5), "PCho": (0.2, 1.0), "PCr": (3.0, 5.5), "PE": (1.0, 2.0), "Tau": (2.0, 6.0),
    "sIns": (0.2, 0.5), "Mac": (4.0, 8.0),
}
#: water scaling of the ISMRM 2016 challenge: relaxation-corrected water concentration (mM) and
#: metabolite relaxation correction
WATER_CONCENTRATION = 29697.0
METABOLITE_RELAXATION = 1.206
WATER_PROTONS = 2


def fwhm_to_gaussian(fwhm_hz: np.ndarray | float) -> np.ndarray:
    """sigma of exp(-(sigma t)^2) for a Gaussian line of this FWHM (Hz)."""
    return np.pi * np.asarray(fwhm_hz) / (2 * np.sqrt(np.log(2)))


@dataclass
class MRSSimConfig:
    """Knobs of `simulate_mrs`; (low, high) pairs are uniform ranges."""

    transients: int = 16
    snr: tuple[float, float] = (20.0, 60.0)
    lorentzian_fwhm_hz: tuple[float, float] = (1.0, 4.0)
    gaussian_fwhm_hz: tuple[float, float] = (3.0, 8.0)
    shift_hz: float = 5.0
    phase0_deg: float = 30.0
    phase1_deg_per_ppm: float = 3.0
    drift_hz: float = 3.0            # per-transient frequency spread (sd) plus a linear drift up to this
    drift_phase_deg: float = 10.0    # per-transient phase spread (sd)
    eddy_rad: float = 0.3
    water_residual: tuple[float, float] = (0.0, 10.0)   # residual water height / NAA height
    lipid_fraction: float = 0.2      # share of scans with lipid contamination
    baseline: float = 0.05           # baseline bump height / NAA height
    corrupted_fraction: float = 0.1
    ghost_share: float = 0.5         # share of corrupted transients that are ghosts (others: motion)
    pathology_fraction: float = 0.2
    concentration_factor: tuple[float, float] = (1.0, 1.0)  # scale every sampled concentration
    ranges: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(RANGES))

    def check(self) -> "MRSSimConfig":
        if self.transients < 1:
            raise InputError(f"transients must be >= 1, got {self.transients}")
        if min(self.snr) <= 0:
            raise InputError(f"SNR must be positive, got {self.snr}")
        if not 0 <= self.corrupted_fraction < 1:
            raise InputError(f"corrupted_fraction must be in [0, 1), got {self.corrupted_fraction}")
        return self


@dataclass
class MRSSimulation:
    transients: MRSData       # every transient of every scan (scans = scan ids)
    spectra: MRSData          # per scan: good transients, offsets undone, averaged (the oracle average)
    clean: MRSData            # per scan: noise-free signal without transient offsets
    water: MRSData            # per scan: water reference
    concentrations: pd.DataFrame   # mM, one row per scan, one column per basis name
    scans: pd.DataFrame            # per-scan nuisance parameters
    truth: pd.DataFrame            # per transient: shift_hz, phase_deg, corrupted, artefact
    config: MRSSimConfig

    def write(self, out: str | Path, *, overwrite: bool = False) -> Path:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise InputError("output must be a folder", file=out)
        out.mkdir(parents=True, exist_ok=True)
        for name, data in (("transients", self.transients), ("spectra", self.spectra), ("clean", self.clean),
                           ("water", self.water)):
            write_mrs(data, out / f"{name}.npz", overwrite=overwrite)
        write_table_csv(self.concentrations, out / "concentrations.csv", overwrite=overwrite)
        write_table_csv(self.scans, out / "scans.csv", overwrite=overwrite)
        write_table_csv(self.truth, out / "offsets.csv", overwrite=overwrite)
        (out / "simulation.json").write_text(json.dumps(
            {"units": "mM", "water_concentration_mM": WATER_CONCENTRATION,
             "metabolite_relaxation": METABOLITE_RELAXATION, "config": asdict(self.config),
             "snr_definition": "NAA peak height of the averaged spectrum / sd of the real part of its noise",
             "files": {"transients.npz": "raw transients", "spectra.npz": "oracle average (offsets undone, "
                       "corrupted left out)", "clean.npz": "noise-free scans", "water.npz": "water reference",
                       "offsets.csv": "per-transient truth", "scans.csv": "per-scan truth",
                       "concentrations.csv": "mM"}}, indent=2))
        return out


def _uniform(rng, pair, size):
    return rng.uniform(pair[0], pair[1], size)


def sample_concentrations(basis: Basis, n: int, rng: np.random.Generator, config: MRSSimConfig) -> pd.DataFrame:
    """Concentrations (mM) per scan; a share of scans is pathological."""
    values = {}
    for name in basis.names:
        low, high = config.ranges.get(name, (0.5, 2.0))
        values[name] = rng.uniform(low, high, n)
    table = pd.DataFrame(values)
    factor = _uniform(rng, config.concentration_factor, n)
    table = table.mul(factor, axis=0)
    pathological = rng.random(n) < config.pathology_fraction
    for name, low, high in (("NAA", 0.3, 0.7), ("NAAG", 0.3, 0.7), ("GPC", 1.3, 2.0), ("PCho", 1.3, 2.5),
                            ("Lac", 2.0, 8.0)):
        if name in table:
            table.loc[pathological, name] *= rng.uniform(low, high, pathological.sum())
    table["pathological"] = pathological
    return table


def _water_like(t, frequency_hz, damping):
    return np.exp((2j * np.pi * frequency_hz[:, None] - damping[:, None]) * t)


def simulate_mrs(n: int, *, seed: int = 0, basis: Basis | None = None,
                 config: MRSSimConfig | None = None) -> MRSSimulation:
    """Simulate `n` scans (see the module docstring)."""
    if n < 1:
        raise InputError(f"--n must be >= 1, got {n}")
    config = (config or MRSSimConfig()).check()
    basis = basis or load_basis()
    rng = np.random.default_rng(seed)
    dwell, cf, points = basis.dwell_time_s, basis.central_frequency_mhz, basis.points
    t = np.arange(points) * dwell
    hz_per_ppm = cf
    table = sample_concentrations(basis, n, rng, config)
    amplitudes = table[basis.names].to_numpy() / METABOLITE_RELAXATION
    lorentz = np.pi * _uniform(rng, config.lorentzian_fwhm_hz, n)
    gauss = fwhm_to_gaussian(_uniform(rng, config.gaussian_fwhm_hz, n))
    shift = rng.uniform(-config.shift_hz, config.shift_hz, n)
    phase0 = rng.uniform(-config.phase0_deg, config.phase0_deg, n)
    phase1 = rng.uniform(-config.phase1_deg_per_ppm, config.phase1_deg_per_ppm, n)
    eddy = rng.uniform(0, config.eddy_rad, n)
    eddy_tau = rng.uniform(0.01, 0.04, n)
    eddy_phase = np.exp(1j * eddy[:, None] * np.exp(-t / eddy_tau[:, None]))

    def acquire(signal):  # what every component goes through: line shape, shift, phases, eddy currents
        signal = shift_phase(lineshape(signal, dwell, lorentz, gauss), dwell, shift)
        return first_order_phase(signal, dwell, cf, phase0, phase1) * eddy_phase

    metabolites = acquire(amplitudes @ basis.fid)
    spectrum = to_spectrum(metabolites)
    ppm = ppm_axis(points, dwell, cf)
    naa_height = np.abs(spectrum[:, ppm_slice(ppm, 1.9, 2.1)]).max(axis=1)
    # residual water, lipids and baseline (heights relative to NAA's)
    water_height = _uniform(rng, config.water_residual, n) * naa_height
    water_width = np.pi * rng.uniform(5, 15, n)
    water_residual = _water_like(t, rng.normal(0, 5, n), water_width) * np.exp(1j * rng.uniform(0, 2 * np.pi, n))[:, None]
    water_residual *= (water_height * water_width * dwell)[:, None]  # height of a Lorentzian ~ area / (pi fwhm)
    extra = water_residual
    lipid = rng.random(n) < config.lipid_fraction
    for centre in (0.9, 1.3):
        width = np.pi * rng.uniform(15, 30, n)
        height = lipid * rng.uniform(0.2, 1.0, n) * naa_height
        # lipids come from the voxel: same line shape, shift and phases as the metabolites
        extra = extra + acquire((height * width * dwell)[:, None]
                                * _water_like(t, np.full(n, (centre - 4.65) * hz_per_ppm), width))
    for _ in range(3):  # broad bumps: smooth baseline
        centre = rng.uniform(0.0, 4.5, n)
        width = rng.uniform(1.0, 2.5, n) * hz_per_ppm  # FWHM Hz of a Gaussian bump
        height = config.baseline * naa_height * rng.uniform(0.3, 1.0, n) * np.exp(1j * rng.uniform(0, 2 * np.pi, n))
        sigma = fwhm_to_gaussian(width)
        area = height * width * np.sqrt(np.pi / np.log(2)) / 2 * dwell
        extra = extra + area[:, None] * np.exp(2j * np.pi * ((centre - 4.65) * hz_per_ppm)[:, None] * t
                                               - (sigma[:, None] * t) ** 2)
    clean = metabolites + extra
    # transients: drift, corruption, noise
    T = config.transients
    drift = rng.uniform(-config.drift_hz, config.drift_hz, n)[:, None] * np.linspace(-1, 1, T)[None]
    shift_t = drift + rng.normal(0, config.drift_hz, (n, T))
    phase_t = rng.normal(0, config.drift_phase_deg, (n, T))
    corrupted = rng.random((n, T)) < config.corrupted_fraction
    ghost = corrupted & (rng.random((n, T)) < config.ghost_share)
    motion = corrupted & ~ghost
    m = motion.sum()
    shift_t[motion] += rng.choice([-1, 1], m) * rng.uniform(8, 20, m)
    phase_t[motion] += rng.choice([-1, 1], m) * rng.uniform(40, 120, m)
    fids = np.repeat(clean[:, None], T, axis=1)
    fids[motion] = lineshape(fids[motion], dwell, np.pi * rng.uniform(5, 15, m), 0.0) * rng.uniform(0.3, 0.7, m)[:, None]
    g = ghost.sum()
    if g:
        scan_of = np.nonzero(ghost)[0]
        echo_time = rng.uniform(0.02, 0.12, g)
        echo_width = rng.uniform(0.005, 0.02, g)
        frequency = (rng.uniform(1.0, 4.5, g) - 4.65) * hz_per_ppm
        height = rng.uniform(1.0, 3.0, g) * naa_height[scan_of]
        amplitude = height * dwell / (echo_width * np.sqrt(np.pi))  # spectral height of a Gaussian echo
        fids[ghost] += amplitude[:, None] * np.exp(
            2j * np.pi * frequency[:, None] * t + 1j * rng.uniform(0, 2 * np.pi, g)[:, None]
            - ((t - echo_time[:, None]) / echo_width[:, None]) ** 2)
    fids = shift_phase(fids, dwell, shift_t, phase_t)
    snr = _uniform(rng, config.snr, n)
    good = np.maximum((~corrupted).sum(axis=1), 1)
    sigma_t = naa_height / snr * np.sqrt(good) / np.sqrt(points)  # per component, per transient, time domain
    noise = rng.normal(size=(n, T, points)) + 1j * rng.normal(size=(n, T, points))
    fids = fids + sigma_t[:, None, None] * noise
    # oracle average: offsets undone, corrupted transients left out
    undone = shift_phase(fids, dwell, -shift_t, -phase_t)
    weights = (~corrupted) / good[:, None]
    weights[corrupted.all(axis=1)] = 1.0 / T
    oracle = np.einsum("nt,ntp->np", weights, undone)
    # water reference: same line shape, shift, phases and eddy currents; one transient
    water = acquire(np.full((n, points), WATER_CONCENTRATION * WATER_PROTONS, complex))
    water = water + sigma_t[:, None] * (rng.normal(size=(n, points)) + 1j * rng.normal(size=(n, points)))
    scan_ids = [f"m{i:04d}" for i in range(n)]
    transient_ids = [f"{s}_t{k:02d}" for s in scan_ids for k in range(T)]
    common = dict(dwell_time_s=dwell, central_frequency_mhz=cf, te_ms=basis.te_ms)
    concentrations = table[basis.names].copy()
    concentrations.index = pd.Index(scan_ids, name="id")
    scans = pd.DataFrame({"shift_hz": shift, "phase0_deg": phase0, "phase1_deg_per_ppm": phase1,
                          "lorentzian_fwhm_hz": lorentz / np.pi, "gaussian_fwhm_hz": gauss * 2 * np.sqrt(np.log(2)) / np.pi,
                          "eddy_rad": eddy, "eddy_tau_s": eddy_tau, "residual_water_height": water_height / naa_height,
                          "lipids": lipid, "pathological": table["pathological"].to_numpy(), "snr": snr,
                          "n_corrupted": corrupted.sum(axis=1), "noise_sd_time": sigma_t},
                         index=pd.Index(scan_ids, name="id"))
    artefact = np.where(ghost, "ghost", np.where(motion, "motion", "none"))
    truth = pd.DataFrame({"scan": np.repeat(scan_ids, T), "shift_hz": shift_t.ravel(), "phase_deg": phase_t.ravel(),
                          "corrupted": corrupted.ravel(), "artefact": artefact.ravel()},
                         index=pd.Index(transient_ids, name="id"))
    return MRSSimulation(
        transients=MRSData(fids.reshape(n * T, points), ids=transient_ids, scans=list(np.repeat(scan_ids, T)), **common),
        spectra=MRSData(oracle, ids=scan_ids, scans=scan_ids, **common),
        clean=MRSData(clean, ids=scan_ids, scans=scan_ids, **common),
        water=MRSData(water, ids=scan_ids, scans=scan_ids, **common),
        concentrations=concentrations, scans=scans, truth=truth, config=config)


def coil_scan(simulation: MRSSimulation, scan: int, sensitivities: np.ndarray, noise_sd: float,
              rng: np.random.Generator) -> tuple[MRSData, MRSData]:
    """Scan `scan` of `simulation` as uncombined coils (transients, water reference): coil c sees
    sensitivities[c] (complex) x the simulated transients and water reference plus its own complex
    Gaussian noise of sd `noise_sd` per time point (simulate at a high SNR so that this noise is all
    there is); rows flattened as NIfTI-MRS does (DIM_COIL fastest, then DIM_DYN)."""
    transients = simulation.transients
    name = transients.scan_names()[scan]
    rows = np.flatnonzero(np.asarray(transients.scans) == name)
    coils = len(sensitivities)

    def noise(shape):
        return noise_sd / np.sqrt(2) * (rng.normal(size=shape) + 1j * rng.normal(size=shape))
    fid = sensitivities[:, None, None] * transients.fid[rows][None] + noise((coils, len(rows), transients.points))
    water = sensitivities[:, None] * simulation.water.fid[scan][None] + noise((coils, transients.points))
    common = dict(dwell_time_s=transients.dwell_time_s, central_frequency_mhz=transients.central_frequency_mhz,
                  te_ms=transients.te_ms)
    return (MRSData(fid.transpose(1, 0, 2).reshape(len(rows) * coils, -1), scans=[name] * (len(rows) * coils),
                    dims=[("DIM_COIL", coils), ("DIM_DYN", len(rows))], **common),
            MRSData(water, scans=[name] * coils, dims=[("DIM_COIL", coils)], **common))
