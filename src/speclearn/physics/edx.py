"""EDX physics shared by the simulator and the unmixing quantifier: xraydb line families, detector
resolution and efficiency, Gaussian peaks integrated over channels, the Kramers continuum.

Thin-film approximation (no matrix absorption): a line's intensity per unit weight fraction is
(1 / atomic mass) x Q(shell) x fluorescence yield x branching ratio x detector efficiency(E), with a
Bethe-type ionisation cross-section Q ~ n_shell ln(U) / (U E_edge^2), overvoltage U = E0 / E_edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import erf

from speclearn.core.errors import InputError

MN_KA_KEV = 5.8987
SHELL_OCCUPANCY = {"K": 2, "L1": 2, "L2": 2, "L3": 4, "M1": 2, "M2": 2, "M3": 4, "M4": 4, "M5": 6}


@dataclass(frozen=True)
class LineFamily:
    """One element's K, L or M lines: energies (keV) and intensities per unit weight fraction."""

    element: str
    family: str
    energies: np.ndarray
    intensities: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.element} {self.family}"


def energy_axis(n_channels: int = 2048, *, scale_kev: float = 0.01, offset_kev: float = 0.1) -> np.ndarray:
    """Channel centres in keV."""
    return np.round(offset_kev + scale_kev * np.arange(n_channels), 9)


def fwhm_kev(energy_kev: np.ndarray, fwhm_mnka: float = 0.130) -> np.ndarray:
    """Detector FWHM at `energy_kev` from the FWHM at Mn Ka (keV), Fano model."""
    fwhm_ev_sq = (fwhm_mnka * 1e3) ** 2 + 2.5 * (np.asarray(energy_kev, float) - MN_KA_KEV) * 1e3
    return np.sqrt(np.maximum(fwhm_ev_sq, 1.0)) / 1e3


def detector_efficiency(energy_kev: np.ndarray, *, window_um: float = 0.3, dead_layer_um: float = 0.05,
                        crystal_mm: float = 0.45) -> np.ndarray:
    """Transmission of a polymer window and a Si dead layer times absorption in the Si crystal."""
    energy = np.ascontiguousarray(energy_kev, dtype=float)
    return _efficiency(energy.tobytes(), window_um, dead_layer_um, crystal_mm).reshape(energy.shape)


@lru_cache(maxsize=64)
def _efficiency(energy_bytes: bytes, window_um: float, dead_layer_um: float, crystal_mm: float) -> np.ndarray:
    import xraydb
    energy_ev = np.clip(np.frombuffer(energy_bytes), 0.1, None) * 1e3  # Elam tables start at 100 eV
    mu_si = xraydb.material_mu("Si", energy_ev, density=2.33)  # 1/cm
    mu_window = xraydb.material_mu("C8H8", energy_ev, density=1.05)
    efficiency = (np.exp(-mu_window * window_um * 1e-4) * np.exp(-mu_si * dead_layer_um * 1e-4)
                  * (1 - np.exp(-mu_si * crystal_mm * 0.1)))
    efficiency.flags.writeable = False  # shared by the cache
    return efficiency


@lru_cache(maxsize=256)
def _element_lines(element: str, beam_kv: float) -> tuple[tuple[str, float, float], ...]:
    """(family, energy keV, intensity per unit weight fraction before detector) for each line."""
    import xraydb
    try:
        edges = xraydb.xray_edges(element)
        mass = xraydb.atomic_mass(element)
        lines = xraydb.xray_lines(element, excitation_energy=beam_kv * 1e3)
    except Exception:  # noqa: BLE001 - xraydb raises various errors for unknown symbols
        raise InputError(f"unknown element {element!r}") from None
    out = []
    for line in lines.values():
        level = line.initial_level
        if level not in SHELL_OCCUPANCY or level not in edges or line.intensity <= 0:
            continue
        edge = edges[level]
        overvoltage = beam_kv * 1e3 / edge.energy
        if overvoltage <= 1 or edge.fyield <= 0:
            continue
        cross_section = SHELL_OCCUPANCY[level] * np.log(overvoltage) / (overvoltage * (edge.energy / 1e3) ** 2)
        out.append((level[0], line.energy / 1e3, cross_section * edge.fyield * line.intensity / mass))
    return tuple(out)


def line_families(element: str, energy_axis_kev: np.ndarray, *, beam_kv: float = 200.0,
                  efficiency: bool = True) -> list[LineFamily]:
    """The element's line families with at least one line inside the axis range."""
    low, high = float(np.min(energy_axis_kev)), float(np.max(energy_axis_kev))
    families = []
    for family in "KLM":
        rows = [(e, i) for f, e, i in _element_lines(element, float(beam_kv)) if f == family and low <= e <= high]
        if not rows:
            continue
        energies, intensities = (np.array(v) for v in zip(*rows))
        if efficiency:
            intensities = intensities * detector_efficiency(energies)
        families.append(LineFamily(element, family, energies, intensities))
    return families


def peak_profiles(energies_kev: np.ndarray, energy_axis_kev: np.ndarray, fwhm_mnka: float = 0.130) -> np.ndarray:
    """(lines, channels): unit-area Gaussians integrated over each channel's width."""
    axis = np.asarray(energy_axis_kev, float)
    half = np.diff(axis) / 2
    edges = np.concatenate([[axis[0] - half[0]], axis[:-1] + half, [axis[-1] + half[-1]]])
    sigma = fwhm_kev(energies_kev, fwhm_mnka)[:, None] / (2 * np.sqrt(2 * np.log(2)))
    cdf = 0.5 * (1 + erf((edges[None, :] - np.asarray(energies_kev)[:, None]) / (np.sqrt(2) * sigma)))
    return np.diff(cdf, axis=1)


def family_profile(family: LineFamily, energy_axis_kev: np.ndarray, fwhm_mnka: float = 0.130) -> np.ndarray:
    """Counts per channel of a family per unit weight fraction (same units for every element)."""
    return family.intensities @ peak_profiles(family.energies, energy_axis_kev, fwhm_mnka)


def bremsstrahlung(energy_axis_kev: np.ndarray, *, beam_kv: float = 200.0, efficiency: bool = True) -> np.ndarray:
    """Kramers' continuum shape (E0 - E) / E times detector efficiency, normalised to unit area."""
    energy = np.asarray(energy_axis_kev, float)
    shape = np.where(energy > 0.05, np.clip(beam_kv - energy, 0, None) / np.maximum(energy, 0.05), 0.0)
    if efficiency:
        shape = shape * detector_efficiency(energy)
    return shape / shape.sum()
