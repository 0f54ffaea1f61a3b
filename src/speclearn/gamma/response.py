"""A fast, simplified detector response for NaI(Tl), LaBr3(Ce), CsI(Tl) and HPGe.

Each emitted photon of energy E is detected with the total efficiency eps(E); of the detected
ones a fraction pf(E) lands in the full-energy peak (Gaussian, FWHM(E)), the pair-production share
above 1022 keV gives single and double escape peaks at E-511 and E-1022, and the rest forms a
Klein-Nishina Compton continuum ending at the Compton edge E*(1 - 1/(1 + 2E/511)) (smeared by the
resolution, with a small multiple-scatter plateau up to E). Photons scattered back from the
surroundings form the backscatter peak at E/(1 + 2E/511). Shielding attenuates with mass
attenuation coefficients typed from NIST XCOM (lead, iron).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import erf

ME = 510.999  # electron rest energy, keV
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def compton_edge(energy):
    """Maximum energy (keV) deposited by one Compton scatter of a photon of `energy` keV."""
    energy = np.asarray(energy, dtype=float)
    return energy * (1.0 - 1.0 / (1.0 + 2.0 * energy / ME))


def backscatter_energy(energy):
    """Energy (keV) of a photon of `energy` keV scattered through 180 degrees."""
    energy = np.asarray(energy, dtype=float)
    return energy / (1.0 + 2.0 * energy / ME)


@dataclass(frozen=True)
class Detector:
    """Response parameters of one detector type (see `DETECTORS`)."""

    name: str
    fwhm_662: float          # keV at 662 keV
    hpge: bool = False       # semiconductor resolution model sqrt(noise^2 + k*E) instead of ~sqrt(E)
    noise_fwhm: float = 0.9  # electronic noise FWHM (keV), semiconductor model only
    eff_662: float = 0.1     # total detection efficiency at 662 keV (geometry x intrinsic)
    eff_slope: float = 0.8   # log-log slope of efficiency above the knee
    eff_knee: float = 60.0   # keV, low-energy roll-off (entrance window)
    photofraction_662: float = 0.4
    escape_single: float = 0.35  # share of pair events escaping one 511 keV photon
    escape_double: float = 0.25
    backscatter: float = 0.03    # backscatter photons per detected photon
    dead_time_us: float = 1.0
    n_channels: int = 1024
    e_max: float = 3000.0

    def fwhm(self, energy):
        """Full width at half maximum (keV) of the full-energy peak at `energy` keV."""
        energy = np.maximum(np.asarray(energy, dtype=float), 1.0)
        if self.hpge:
            k = (self.fwhm_662 ** 2 - self.noise_fwhm ** 2) / 661.657
            return np.sqrt(self.noise_fwhm ** 2 + k * energy)
        return self.fwhm_662 * np.sqrt(energy / 661.657)

    def efficiency(self, energy):
        """Total detection efficiency (counts per emitted photon) at `energy` keV."""
        energy = np.maximum(np.asarray(energy, dtype=float), 1.0)
        roll = 1.0 - np.exp(-(energy / self.eff_knee) ** 3)
        roll_662 = 1.0 - np.exp(-(661.657 / self.eff_knee) ** 3)
        curve = np.where(energy > 150.0, (energy / 661.657) ** -self.eff_slope,
                         (150.0 / 661.657) ** -self.eff_slope)
        return np.clip(self.eff_662 * curve * roll / roll_662, 0.0, 1.0)

    def photofraction(self, energy):
        """Share of detected photons in the full-energy peak."""
        energy = np.maximum(np.asarray(energy, dtype=float), 1.0)
        ratio = 1.0 / self.photofraction_662 - 1.0
        return 1.0 / (1.0 + ratio * (energy / 661.657) ** 1.2)

    def pair_share(self, energy):
        """Share of detected photons that undergo pair production (0 below 1022 keV)."""
        energy = np.asarray(energy, dtype=float)
        return np.where(energy > 2 * ME, 0.35 * np.clip(1.0 - 2 * ME / np.maximum(energy, 1.0), 0, 1) ** 1.5, 0.0)

    def axis(self, e_max: float | None = None, n_channels: int | None = None) -> np.ndarray:
        """Channel-centre energies (keV) of this detector's linear calibration."""
        n = n_channels or self.n_channels
        gain = (e_max or self.e_max) / n
        return gain * (np.arange(n) + 0.5)


DETECTORS = {
    "nai": Detector("nai", fwhm_662=0.07 * 661.657, eff_662=0.12, eff_slope=0.85, eff_knee=35.0,
                    photofraction_662=0.45, escape_single=0.25, escape_double=0.15, backscatter=0.04,
                    dead_time_us=2.0),
    "labr3": Detector("labr3", fwhm_662=0.03 * 661.657, eff_662=0.06, eff_slope=0.95, eff_knee=30.0,
                      photofraction_662=0.30, escape_single=0.35, escape_double=0.25, backscatter=0.04,
                      dead_time_us=0.5, n_channels=2048),
    "csi": Detector("csi", fwhm_662=0.075 * 661.657, eff_662=0.03, eff_slope=1.0, eff_knee=40.0,
                    photofraction_662=0.25, escape_single=0.40, escape_double=0.35, backscatter=0.05,
                    dead_time_us=5.0),
    "hpge": Detector("hpge", fwhm_662=1.4, hpge=True, noise_fwhm=0.9, eff_662=0.03, eff_slope=0.9,
                     eff_knee=50.0, photofraction_662=0.22, escape_single=0.45, escape_double=0.35,
                     backscatter=0.03, dead_time_us=10.0, n_channels=8192),
}


def get_detector(name: str | Detector) -> Detector:
    if isinstance(name, Detector):
        return name
    from speclearn.core.errors import InputError
    if name not in DETECTORS:
        raise InputError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name]


def bin_edges(axis: np.ndarray) -> np.ndarray:
    axis = np.asarray(axis, dtype=float)
    mid = 0.5 * (axis[1:] + axis[:-1])
    return np.concatenate([[axis[0] - (mid[0] - axis[0])], mid, [axis[-1] + (axis[-1] - mid[-1])]])


def gaussian_counts(edges: np.ndarray, centre: float, fwhm: float) -> np.ndarray:
    """Probability of a Gaussian (area 1) in each bin between `edges`."""
    sigma = max(fwhm * FWHM_TO_SIGMA, 1e-6)
    cdf = 0.5 * (1.0 + erf((edges - centre) / (np.sqrt(2.0) * sigma)))
    return np.diff(cdf)


def compton_continuum(axis: np.ndarray, energy: float, detector: Detector) -> np.ndarray:
    """Klein-Nishina continuum (area 1) up to the Compton edge, smeared by the resolution."""
    edges = bin_edges(axis)
    width = np.diff(edges)
    t = np.clip(axis, 0.0, None)
    eps = energy / ME
    edge = float(compton_edge(energy))
    s = np.clip(t / energy, 0.0, edge / energy)
    density = 2.0 + s ** 2 / (eps ** 2 * (1.0 - s) ** 2) + s / (1.0 - s) * (s - 2.0 / eps)
    density = np.where((t > 0) & (t <= edge), density, 0.0)
    plateau = np.where((t > edge) & (t < energy), 0.08 * density.max(initial=0.0), 0.0)
    shape = (density + plateau) * width
    if shape.sum() <= 0:
        return shape
    sigma = float(detector.fwhm(edge)) * FWHM_TO_SIGMA / float(np.median(width))
    if sigma > 0.3:
        shape = gaussian_filter1d(shape, sigma, mode="constant")
    return shape / shape.sum()


def line_response(axis: np.ndarray, energy: float, detector: Detector) -> np.ndarray:
    """Expected counts per channel for one emitted photon of `energy` keV."""
    edges = bin_edges(axis)
    eff = float(detector.efficiency(energy))
    pf = float(detector.photofraction(energy))
    pair = float(detector.pair_share(energy))
    single, double = pair * detector.escape_single, pair * detector.escape_double
    compton = max(0.0, 1.0 - pf - single - double)
    out = pf * gaussian_counts(edges, energy, float(detector.fwhm(energy)))
    if pair > 0:
        out += single * gaussian_counts(edges, energy - ME, float(detector.fwhm(energy - ME)))
        out += double * gaussian_counts(edges, energy - 2 * ME, float(detector.fwhm(energy - 2 * ME)))
    out += compton * compton_continuum(axis, energy, detector)
    back = float(backscatter_energy(energy))
    out += detector.backscatter * gaussian_counts(edges, back, 2.5 * float(detector.fwhm(back)))
    return eff * out


def lines_response(axis: np.ndarray, lines: np.ndarray, detector: Detector) -> np.ndarray:
    """Expected counts per channel for `lines` ((n, 2): energy keV, photons per unit source)."""
    out = np.zeros(len(axis))
    for energy, yield_ in np.asarray(lines, dtype=float).reshape(-1, 2):
        if 0 < energy < axis[-1] * 1.2 and yield_ > 0:
            out += yield_ * line_response(axis, energy, detector)
    return out


#: mass attenuation coefficients mu/rho (cm2/g) typed from NIST XCOM (total with coherent)
_MU_ENERGY = np.array([50, 60, 80, 88.0, 88.01, 100, 150, 200, 300, 400, 500, 600, 800, 1000, 1500, 2000,
                       3000, 5000, 10000], dtype=float)
_MU = {
    "lead": (11.35, np.array([8.04, 5.02, 2.42, 1.91, 7.68, 5.55, 2.01, 0.999, 0.403, 0.232, 0.161, 0.125,
                              0.0887, 0.0710, 0.0522, 0.0461, 0.0420, 0.0427, 0.0497])),
    "iron": (7.874, np.array([1.96, 1.21, 0.596, 0.48, 0.48, 0.372, 0.196, 0.146, 0.110, 0.0941, 0.0840,
                              0.0769, 0.0669, 0.0599, 0.0488, 0.0425, 0.0362, 0.0314, 0.0299])),
}


def transmission(energy, material: str, thickness_cm: float):
    """Fraction of photons of `energy` keV crossing `thickness_cm` of lead or iron unscattered."""
    density, mu = _MU[material]
    energy = np.clip(np.asarray(energy, dtype=float), _MU_ENERGY[0], _MU_ENERGY[-1])
    mu_e = np.exp(np.interp(np.log(energy), np.log(_MU_ENERGY), np.log(mu)))
    return np.exp(-mu_e * density * thickness_cm)


def broadened(detector: Detector, factor: float) -> Detector:
    """The same detector with its resolution scaled by `factor`."""
    return replace(detector, fwhm_662=detector.fwhm_662 * factor, noise_fwhm=detector.noise_fwhm * factor)
