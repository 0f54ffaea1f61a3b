"""Simulated gamma spectra with ground truth: radionuclide mixtures and neutron-interrogated materials.

Nuclide mode: 1-3 sources drawn from `lines.DECAY_LINES` with random count shares, optional lead or
iron shielding, natural background (K-40, U-238 and Th-232 series plus a scattered continuum), gain
drift, non-paralysable dead time and Poisson counts. Truth: per-nuclide share of the counts and
activity (Bq), the label set: the sources and natural components that are detectable, i.e. one of
their lines reaches Currie's detection limit over the rest of the expected spectrum (`detectable`;
a source whose lines the shielding absorbs leaves only scattered continuum and is not labelled).

Materials mode: a neutron-induced spectrum from a material's atomic composition: thermal-capture
lines (atom fraction x partial cross section) plus fast inelastic lines, on a 0-11 MeV axis, with
the composition as ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.gamma.lines import CASCADES, DECAY_LINES, ELEMENTS, NATURAL, decay_lines, element_lines
from speclearn.io.gamma_formats import calibration_text
from speclearn.gamma.materials import MATERIALS, atom_fractions
from speclearn.gamma.response import Detector, bin_edges, gaussian_counts, get_detector, lines_response, transmission

NUCLIDES = tuple(sorted(DECAY_LINES))
MATERIALS_E_MAX = 11000.0


@dataclass
class Simulation:
    spectra: Spectra
    truth: pd.DataFrame   # per id: shares/activities (nuclides) or atom fractions (materials)
    clean: np.ndarray     # expected counts before Poisson noise

    def write(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """spectra.csv, clean.csv, meta.csv, truth.csv and labels.csv (nuclides: `labels`, materials:
        `label`) plus targets.csv with the atom fractions (materials), all at once."""
        from speclearn.io import atomic_path, write_spectra, write_table_csv
        directory = Path(directory)
        with atomic_path(directory, overwrite=overwrite, directory=True) as tmp:
            write_spectra(self.spectra, tmp / "spectra.csv")
            write_spectra(self.spectra.with_intensity(self.clean), tmp / "clean.csv")
            write_table_csv(self.spectra.meta, tmp / "meta.csv")
            write_table_csv(self.truth, tmp / "truth.csv")
            if "material" in self.truth:
                write_table_csv(self.truth[["material"]].rename(columns={"material": "label"}), tmp / "labels.csv")
                write_table_csv(self.truth[list(ELEMENTS)], tmp / "targets.csv")
            else:
                write_table_csv(self.truth[["labels"]], tmp / "labels.csv")
        return directory


def _scatter_continuum(axis: np.ndarray, knee: float = 70.0, slope: float = 1.6) -> np.ndarray:
    """Environmental scattered radiation: a low-energy hump falling off as a power law (area 1)."""
    shape = (axis / 100.0) ** -slope * (1.0 - np.exp(-(axis / knee) ** 3))
    shape = shape * np.diff(bin_edges(axis))
    return shape / shape.sum()


@lru_cache(maxsize=64)
def _nuclide_template(detector: Detector, nuclide: str, n_channels: int, e_max: float,
                      radon: float = 1.0) -> np.ndarray:
    """Expected counts per decay (no shielding; `radon`: share of radon daughters retained)."""
    axis = detector.axis(e_max, n_channels)
    out = lines_response(axis, decay_lines(nuclide, radon=radon), detector)
    edges = bin_edges(axis)
    for e1, e2 in CASCADES.get(nuclide, []):
        # true-coincidence summing: both photons in their full-energy peaks at once
        p = float(detector.efficiency(e1) * detector.photofraction(e1) * detector.efficiency(e2)
                  * detector.photofraction(e2))
        out = out + p * gaussian_counts(edges, e1 + e2, float(detector.fwhm(e1 + e2)))
    return out


def _natural_template(detector: Detector, nuclide: str, n_channels: int, e_max: float,
                      radon: float) -> np.ndarray:
    """Expected counts per decay of a natural series with the share `radon` of its radon daughters retained
    (between the two cached templates: the response is linear in the line intensities)."""
    head, full = (_nuclide_template(detector, nuclide, n_channels, e_max, r) for r in (0.0, 1.0))
    return head + radon * (full - head)


def nuclide_template(detector, nuclide: str, *, shielding: tuple[str, float] | None = None,
                     n_channels: int | None = None, e_max: float | None = None) -> np.ndarray:
    """Expected counts per channel per decay of `nuclide` seen by `detector` (optionally shielded)."""
    detector = get_detector(detector)
    if nuclide not in DECAY_LINES:
        raise InputError(f"unknown nuclide {nuclide!r}; known: {', '.join(NUCLIDES)}")
    n, e = n_channels or detector.n_channels, e_max or detector.e_max
    if shielding is None or shielding[1] <= 0:
        return _nuclide_template(detector, nuclide, n, e)
    lines = decay_lines(nuclide)
    lines[:, 1] *= transmission(lines[:, 0], *shielding)
    axis = detector.axis(e, n)
    # shielding also scatters: keep the scattered photons as extra low-energy continuum
    lost = decay_lines(nuclide)[:, 1] @ detector.efficiency(decay_lines(nuclide)[:, 0]) - \
        lines[:, 1] @ detector.efficiency(lines[:, 0])
    return lines_response(axis, lines, detector) + 0.3 * lost * _scatter_continuum(axis)


def line_peaks(detector, nuclide: str, shielding: tuple[str, float] | None = None, *,
               radon: float = 1.0) -> np.ndarray:
    """Expected full-energy-peak counts of each of the nuclide's lines per decay (after shielding)."""
    detector = get_detector(detector)
    lines = decay_lines(nuclide, radon=radon)
    if shielding is not None and shielding[1] > 0:
        lines[:, 1] *= transmission(lines[:, 0], *shielding)
    return lines[:, 1] * detector.efficiency(lines[:, 0]) * detector.photofraction(lines[:, 0])


def detectable(axis: np.ndarray, others: np.ndarray, peaks: np.ndarray, energies: np.ndarray, detector) -> bool:
    """Currie's detection limit: some line's expected net peak counts (within +/-1 FWHM, 98 % of the
    peak) reach L_D = 2.71 + 4.65 sqrt(B), B the expected counts of everything else in that window."""
    detector = get_detector(detector)
    cumulative = np.concatenate([[0.0], np.cumsum(np.maximum(others, 0.0))])
    fwhm = detector.fwhm(energies)
    lo = np.searchsorted(axis, energies - fwhm)
    hi = np.searchsorted(axis, energies + fwhm)
    inside = (energies > axis[0]) & (energies < axis[-1])
    background = cumulative[hi] - cumulative[lo]
    return bool(np.any(inside & (0.98 * peaks >= 2.71 + 4.65 * np.sqrt(background))))


def _poisson_scale(counts: np.ndarray, rest: np.ndarray, own: np.ndarray) -> float:
    """Maximum-likelihood c >= 0 of counts ~ Poisson(rest + c own) (Newton from 0: the score is convex and
    decreasing in c, so the steps rise monotonically to its root)."""
    keep = own > 1e-12 * own.max()
    x, r, o = counts[keep], np.maximum(rest[keep], 1e-9), own[keep]
    c = 0.0
    for _ in range(100):
        ratio = x / (r + c * o)
        score = float(ratio @ o) - float(o.sum())
        if score <= 1e-9 * float(o.sum()):
            break
        c += score / float((ratio / (r + c * o)) @ (o * o))
    return c


def background_templates(detector, *, n_channels: int | None = None, e_max: float | None = None) -> dict[str, np.ndarray]:
    """Natural background components, each normalised to one count: K-40, U-238, Th-232, scattered
    continuum (two hump shapes) and the 511 keV annihilation line of cosmic-ray pair production."""
    detector = get_detector(detector)
    n, e = n_channels or detector.n_channels, e_max or detector.e_max
    out = {}
    for name in NATURAL:
        t = _nuclide_template(detector, name, n, e)
        out[name] = t / t.sum()
    axis = detector.axis(e, n)
    out["scatter"] = _scatter_continuum(axis)
    out["scatter_wide"] = _scatter_continuum(axis, knee=140.0, slope=1.2)
    annihilation = lines_response(axis, np.array([[510.999, 1.0]]), detector)
    out["annihilation"] = annihilation / annihilation.sum()
    return out


def _dead_time(rng, expected_counts: float, detector: Detector, real_time: float) -> tuple[float, float]:
    """(live fraction, live time) of a non-paralysable counter at the true rate."""
    rate = expected_counts / real_time
    live = 1.0 / (1.0 + rate * detector.dead_time_us * 1e-6)
    return live, real_time * live


def _drift(axis: np.ndarray, clean: np.ndarray, gain: float) -> np.ndarray:
    """The spectrum as recorded when the true gain is (1 + gain) times the calibration's."""
    return np.interp(axis / (1.0 + gain), axis, clean, left=0.0, right=0.0)


def simulate_nuclides(detector="nai", n: int = 100, *, seed: int = 0, nuclides: tuple[str, ...] | None = None,
                      max_sources: int = 3, counts: tuple[float, float] = (1e3, 1e6),
                      background: tuple[float, float] = (0.0, 0.4), shielding_probability: float = 0.3,
                      gain_drift: float = 0.003, real_time: float = 300.0, scatter_shapes: bool = False,
                      radon: tuple[float, float] = (1.0, 1.0), n_channels: int | None = None,
                      e_max: float | None = None, oracle: bool = False) -> Simulation:
    """Mixtures of 1..`max_sources` nuclides; counts log-uniform in `counts`; background share in `background`;
    `scatter_shapes` draws each spectrum's two scattered-continuum humps (knee 40-250 keV, power-law
    slope 0.8-2.2) instead of the two fixed ones and adds a broad backscatter hump (centre 170-300 keV,
    FWHM 50-150 keV); `radon`: range of the share of the background
    U-238 series' radon daughters retained (uniform per spectrum; 1: secular equilibrium).

    `oracle`: also the column `oracle_labels`, the labels an identifier reaches that knows every
    spectrum's expected counts except the amount of the nuclide it tests: that amount fitted to the
    counts (Poisson maximum likelihood, the nuclide's own expected spectrum as template; unit amount for
    the nuclides not in the spectrum), then the label's own rule (`detectable`) at the fitted amount: an
    upper reference for identifiers, which must estimate the other components' amounts it knows."""
    detector = get_detector(detector)
    nuclides = tuple(nuclides or NUCLIDES)
    unknown = [x for x in nuclides if x not in DECAY_LINES]
    if unknown:
        raise InputError(f"unknown nuclide {unknown[0]!r}; known: {', '.join(NUCLIDES)}")
    rng = np.random.default_rng(seed)
    n_ch, e = n_channels or detector.n_channels, e_max or detector.e_max
    axis = detector.axis(e, n_ch)
    bg = background_templates(detector, n_channels=n_ch, e_max=e)
    X = np.zeros((n, n_ch))
    clean = np.zeros((n, n_ch))
    rows = []
    for i in range(n):
        k = int(rng.integers(1, max_sources + 1))
        chosen = list(rng.choice(nuclides, size=min(k, len(nuclides)), replace=False))
        total = float(np.exp(rng.uniform(np.log(counts[0]), np.log(counts[1]))))
        bg_share = float(rng.uniform(*background))
        source_shares = rng.dirichlet(np.ones(len(chosen))) * (1.0 - bg_share)
        shield = None
        if rng.random() < shielding_probability:
            shield = (str(rng.choice(["lead", "iron"])), float(rng.uniform(0.1, 1.0)))
        spectrum = np.zeros(n_ch)
        row: dict = {name: 0.0 for name in nuclides}
        for name in NATURAL:
            row.setdefault(name, 0.0)
        activity: dict = {}
        parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name -> (expected counts, line peak counts)
        live, live_time = _dead_time(rng, total, detector, real_time)
        for name, share in zip(chosen, source_shares):
            t = nuclide_template(detector, name, shielding=shield, n_channels=n_ch, e_max=e)
            spectrum += share * total * t / t.sum()
            row[name] += share
            activity[f"activity_Bq_{name}"] = share * total / (t.sum() * real_time)
            parts[name] = (share * total * t / t.sum(), share * total * line_peaks(detector, name, shield) / t.sum())
        natural = rng.dirichlet([2.0, 1.5, 1.5, 1.5, 1.5, 0.3] + [0.6] * scatter_shapes) * bg_share
        components, retained = bg, 1.0
        if radon != (1.0, 1.0):
            retained = float(rng.uniform(*radon))
            u = _natural_template(detector, "U-238", n_ch, e, retained)
            components = {**components, "U-238": u / u.sum()}
        if scatter_shapes:
            humps = [_scatter_continuum(axis, float(rng.uniform(40.0, 250.0)), float(rng.uniform(0.8, 2.2)))
                     for _ in range(2)]
            # the surroundings' backscatter of the natural lines: 178-233 keV at 180 degrees, more at smaller angles
            backscatter = gaussian_counts(bin_edges(axis), float(rng.uniform(170.0, 300.0)),
                                          float(rng.uniform(50.0, 150.0)))
            components = {**components, "scatter": humps[0], "scatter_wide": humps[1],
                          "backscatter": backscatter / backscatter.sum()}
        for (name, template), share in zip(components.items(), natural):
            spectrum += share * total * template
            if name in row:
                row[name] += share
                r = retained if name == "U-238" else 1.0
                raw = _natural_template(detector, name, n_ch, e, r).sum()
                own, peaks = parts.get(name, (0.0, 0.0))
                parts[name] = (own + share * total * template,
                               peaks + share * total * line_peaks(detector, name, radon=r) / raw)
        gain = float(rng.normal(0.0, gain_drift))
        expected = _drift(axis, spectrum * live, gain)
        clean[i] = expected
        X[i] = rng.poisson(expected)
        labels = sorted(name for name, (own, peaks) in parts.items()
                        if detectable(axis, live * (spectrum - own), live * peaks, decay_lines(name)[:, 0], detector))
        if oracle:
            found = []
            for name in sorted(set(nuclides) | set(parts)):
                own, peaks = parts.get(name, (0.0, 0.0))
                template, unit_peaks = (own, peaks) if name in parts else (
                    total * nuclide_template(detector, name, shielding=shield, n_channels=n_ch, e_max=e),
                    total * line_peaks(detector, name, shield))
                drifted = _drift(axis, template * live, gain)
                scale = _poisson_scale(X[i], expected - (drifted if name in parts else 0.0), drifted)
                if detectable(axis, live * (spectrum - own), scale * live * unit_peaks, decay_lines(name)[:, 0], detector):
                    found.append(name)
            row["oracle_labels"] = ";".join(found)
        rows.append({**row, **activity, "labels": ";".join(labels), "n_sources": len(chosen),
                     "total_counts": float(X[i].sum()), "live_time_s": live_time, "real_time_s": real_time,
                     "gain_drift": gain, "shielding": f"{shield[0]} {shield[1]:.2f} cm" if shield else "none",
                     "detector": detector.name})
    width = len(str(max(n - 1, 0)))
    meta = pd.DataFrame(rows, index=pd.Index([f"g{i:0{width}d}" for i in range(n)], name="id"))
    meta = meta.fillna(0.0)
    gain_kev = e / n_ch
    info = meta[["live_time_s", "real_time_s", "detector"]].assign(
        calibration=calibration_text((0.5 * gain_kev, gain_kev)), cal_offset=0.5 * gain_kev, cal_gain=gain_kev,
        cal_quad=0.0)
    spectra = Spectra(X, axis, axis_kind="energy", axis_unit="keV", meta=info)
    return Simulation(spectra, meta, clean)


@lru_cache(maxsize=64)
def _element_templates(detector: Detector, n_channels: int, e_max: float, capture: float,
                       inelastic: float) -> np.ndarray:
    axis = detector.axis(e_max, n_channels)
    return np.stack([lines_response(axis, element_lines(el, capture=capture, inelastic=inelastic), detector)
                     for el in ELEMENTS])


def element_templates(detector, *, n_channels: int = 2048, e_max: float = MATERIALS_E_MAX,
                      capture: float = 1.0, inelastic: float = 1.0) -> np.ndarray:
    """(elements, channels) expected counts per atom fraction, rows in the order of `lines.ELEMENTS`."""
    return _element_templates(get_detector(detector), n_channels, e_max, float(capture), float(inelastic))


def simulate_materials(detector="nai", n: int = 160, *, seed: int = 0, materials: tuple[str, ...] | None = None,
                       counts: tuple[float, float] = (1e5, 1e6), capture: float = 1.0, inelastic: float = 1.0,
                       background: float = 0.15, gain_drift: float = 0.005, composition_jitter: float = 0.05,
                       resolution: float = 1.0, n_channels: int = 2048, real_time: float = 600.0) -> Simulation:
    """`n` spectra cycling through `materials` (default: all of `MATERIALS`), composition as truth.

    capture / inelastic weight the thermal-capture and fast-inelastic lines; `composition_jitter`
    perturbs each atom fraction by that relative amount (sample to sample variation); `resolution`
    scales the detector FWHM (a different detector setting stands in for measurements).
    """
    from speclearn.gamma.response import broadened
    detector = broadened(get_detector(detector), resolution)
    names = tuple(materials or MATERIALS)
    unknown = [x for x in names if x not in MATERIALS]
    if unknown:
        raise InputError(f"unknown material {unknown[0]!r}; known: {', '.join(MATERIALS)}")
    rng = np.random.default_rng(seed)
    axis = detector.axis(MATERIALS_E_MAX, n_channels)
    templates = element_templates(detector, n_channels=n_channels, capture=capture, inelastic=inelastic)
    bg = background_templates(detector, n_channels=n_channels, e_max=MATERIALS_E_MAX)
    natural = 0.4 * bg["K-40"] + 0.3 * bg["U-238"] + 0.3 * bg["Th-232"]
    X = np.zeros((n, n_channels))
    clean = np.zeros((n, n_channels))
    rows = []
    for i in range(n):
        name = names[i % len(names)]
        fractions = atom_fractions(name) * np.exp(rng.normal(0.0, composition_jitter, len(ELEMENTS)))
        fractions /= fractions.sum()
        signal = fractions @ templates
        total = float(np.exp(rng.uniform(np.log(counts[0]), np.log(counts[1]))))
        share = float(np.clip(rng.normal(background, 0.03), 0.0, 0.9))
        spectrum = (1 - share) * total * signal / signal.sum() + share * total * (0.5 * natural + 0.5 * bg["scatter"])
        live, live_time = _dead_time(rng, total, detector, real_time)
        expected = _drift(axis, spectrum * live, float(rng.normal(0.0, gain_drift)))
        clean[i] = expected
        X[i] = rng.poisson(expected)
        rows.append({"material": name, **dict(zip(ELEMENTS, fractions)), "total_counts": float(X[i].sum()),
                     "live_time_s": live_time, "real_time_s": real_time, "detector": detector.name})
    width = len(str(max(n - 1, 0)))
    meta = pd.DataFrame(rows, index=pd.Index([f"m{i:0{width}d}" for i in range(n)], name="id"))
    spectra = Spectra(X, axis, axis_kind="energy", axis_unit="keV", meta=meta[["live_time_s", "real_time_s", "detector"]])
    return Simulation(spectra, meta, clean)
