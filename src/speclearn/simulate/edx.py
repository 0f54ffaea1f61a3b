"""EDX spectrum images with ground truth: phases built from xraydb line families, mixed in space.

Physics (thin-film TEM/STEM, no matrix absorption, which is also Cliff-Lorimer's assumption):

- Lines: every xraydb line of every element whose initial level is ionised by the beam. A line's
  intensity per unit weight fraction is (1 / atomic mass) x Q(shell) x fluorescence yield(shell) x
  branching ratio (xraydb `intensity`) x detector efficiency(E). Q is a Bethe-type ionisation
  cross-section, Q ~ n_shell ln(U) / (U E_edge^2) with overvoltage U = E0 / E_edge.
- Detector: Gaussian peaks integrated over each channel, FWHM(E)^2 = FWHM(Mn Ka)^2 + 2.5 eV (E - 5.899 keV)
  (Fano-limited silicon drift detector, the form exspy uses); efficiency = polymer window x Si dead
  layer transmission x absorption in the Si crystal (xraydb mass attenuation).
- Continuum: Kramers' law, counts ~ Z (E0 - E) / E, times the same efficiency. Its total is
  `continuum` x (mean Z / 26) x the phase's line counts.
- A spectrum image: per-pixel fractions of counts from each phase (`abundances`, sum to one),
  an optional smooth thickness variation scaling the counts, and Poisson noise at `dose` mean counts
  per pixel. The expected spectrum of a pixel is dose x thickness x sum_k a_k s_k with the phase
  spectra s_k normalised to unit area.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.special import erf

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.physics.edx import bremsstrahlung, energy_axis, family_profile, line_families

LAYOUTS = ("particles", "layers", "gradient")
#: the physics (lines, detector, continuum) is in speclearn.physics.edx
__all__ = ["DEFAULT_PHASES", "LAYOUTS", "EDXPhase", "EDXSimulation", "abundance_maps", "mean_atomic_number",
           "phase_spectrum", "simulate_edx", "stream_edx_to_zarr", "thickness_map"]


@dataclass(frozen=True)
class EDXPhase:
    """A phase: name and composition as element -> weight fraction (normalised to sum one)."""

    name: str
    composition: dict[str, float]

    def weight_fractions(self) -> dict[str, float]:
        total = sum(self.composition.values())
        if total <= 0 or any(v < 0 for v in self.composition.values()):
            raise InputError(f"phase {self.name!r}: weight fractions must be non-negative and not all zero")
        return {element: value / total for element, value in self.composition.items()}


#: Four phases with overlapping lines: S K / Mo L / Pb M near 2.3 keV, Ti K / Ba L near 4.5 keV,
#: Fe L / O K at low energy.
DEFAULT_PHASES = (
    EDXPhase("silicate", {"O": 0.47, "Si": 0.33, "Al": 0.12, "Mg": 0.08}),
    EDXPhase("galena", {"Pb": 0.866, "S": 0.134}),
    EDXPhase("molybdenite", {"Mo": 0.599, "S": 0.401}),
    EDXPhase("ilmenite", {"Fe": 0.368, "Ti": 0.316, "O": 0.316}),
)


def mean_atomic_number(phase: EDXPhase) -> float:
    import xraydb
    return float(sum(w * xraydb.atomic_number(el) for el, w in phase.weight_fractions().items()))


def phase_spectrum(phase: EDXPhase, energy_axis_kev: np.ndarray, *, beam_kv: float = 200.0,
                   detector_fwhm_mnka: float = 0.130, continuum: float = 0.3,
                   efficiency: bool = True) -> np.ndarray:
    """Expected spectrum of a phase on the axis, normalised to unit area (fraction of counts per channel)."""
    lines = np.zeros(len(energy_axis_kev))
    for element, fraction in phase.weight_fractions().items():
        for family in line_families(element, energy_axis_kev, beam_kv=beam_kv, efficiency=efficiency):
            lines += fraction * family_profile(family, energy_axis_kev, detector_fwhm_mnka)
    if lines.sum() <= 0:
        raise InputError(f"phase {phase.name!r} has no X-ray line inside the energy axis")
    background = bremsstrahlung(energy_axis_kev, beam_kv=beam_kv, efficiency=efficiency)
    spectrum = lines + continuum * mean_atomic_number(phase) / 26.0 * lines.sum() * background
    return spectrum / spectrum.sum()


# --- spatial layouts ------------------------------------------------------------------------------
def abundance_maps(ny: int, nx: int, n_phases: int, layout: str, rng: np.random.Generator) -> np.ndarray:
    """(phases, y, x) fractions of counts from each phase, non-negative and summing to one per pixel."""
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    if layout == "particles":
        size = min(ny, nx)
        particles = np.zeros((n_phases, ny, nx))
        for k in range(1, n_phases):
            for _ in range(rng.integers(2, 5)):
                radius = rng.uniform(0.07, 0.16) * size
                cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
                distance2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / radius**2
                particles[k] += 1.5 * np.sqrt(np.clip(1 - distance2, 0, None))  # projected sphere
        particles = np.clip(particles, 0, 1)
        total = particles[1:].sum(axis=0)
        particles[1:] /= np.maximum(total, 1.0)
        particles[0] = 1 - particles[1:].sum(axis=0)
        return particles
    if layout == "layers":
        width = max(ny / 60, 0.8)
        bounds = (np.arange(1, n_phases) + rng.uniform(-0.2, 0.2, n_phases - 1)) / n_phases
        steps = [np.ones((ny, nx))]
        for b in bounds:
            wave = 0.04 * ny * np.sin(2 * np.pi * (xx / nx * rng.uniform(0.5, 2) + rng.uniform()))
            steps.append(0.5 * (1 + erf((yy - b * ny - wave) / (np.sqrt(2) * width))))
        steps.append(np.zeros((ny, nx)))
        return np.stack([steps[k] - steps[k + 1] for k in range(n_phases)])
    if layout == "gradient":
        angles = 2 * np.pi * (np.arange(n_phases) / n_phases + rng.uniform())
        centres = np.stack([ny / 2 + 0.45 * ny * np.sin(angles), nx / 2 + 0.45 * nx * np.cos(angles)], axis=1)
        scale = 0.35 * max(ny, nx)
        weights = np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * scale**2)) for cy, cx in centres])
        return weights / weights.sum(axis=0)
    raise InputError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")


def thickness_map(ny: int, nx: int, variation: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth relative thickness with mean one and standard deviation ~ `variation`."""
    if variation <= 0:
        return np.ones((ny, nx))
    from scipy.ndimage import gaussian_filter
    field = gaussian_filter(rng.standard_normal((ny, nx)), sigma=max(min(ny, nx) / 10, 1.0), mode="wrap")
    field = (field - field.mean()) / max(field.std(), 1e-12)
    thickness = np.clip(1 + variation * field, 0.05, None)
    return thickness / thickness.mean()


# --- the spectrum image ---------------------------------------------------------------------------
@dataclass
class EDXSimulation:
    """A simulated EDX spectrum image with its ground truth.

    spectra: counts (y, x, channels) on an energy axis in keV (dask when simulated lazily).
    phase_spectra: (K, channels) expected phase spectra, each summing to one.
    abundances: (K, y, x) fractions of counts from each phase, summing to one per pixel.
    thickness: (y, x) relative thickness (mean one) scaling the counts.
    """

    spectra: Spectra
    phase_spectra: np.ndarray
    abundances: np.ndarray
    thickness: np.ndarray
    phases: list[EDXPhase]
    dose: float
    settings: dict

    def expected_counts(self, rows: slice = slice(None)) -> np.ndarray:
        """Noise-free counts for a band of rows (y, x, channels)."""
        weights = self.abundances[:, rows] * (self.dose * self.thickness[rows])[None]
        return np.einsum("kyx,kc->yxc", weights, self.phase_spectra)

    def truth(self) -> dict:
        return {"phases": [asdict(p) for p in self.phases], "dose": self.dose, **self.settings,
                "axis": {"kind": "energy", "unit": "keV", "start": float(self.spectra.axis[0]),
                         "stop": float(self.spectra.axis[-1]), "n_channels": self.spectra.n_channels}}

    def write(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """map.zarr (streamed when lazy), phase_spectra.npy, abundances.npy, thickness.npy, truth.json, preview.png."""
        from speclearn.io import atomic_path, write_spectra
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_spectra(self.spectra, directory / "map.zarr", overwrite=overwrite)
        if self.spectra.is_lazy:  # the preview reads the written store, not the generator again
            from speclearn.io import read_spectra
            self.spectra = read_spectra(directory / "map.zarr")
        for name, array in (("phase_spectra", self.phase_spectra), ("abundances", self.abundances),
                            ("thickness", self.thickness)):
            with atomic_path(directory / f"{name}.npy", overwrite=overwrite) as tmp:
                np.save(tmp, array)
        with atomic_path(directory / "truth.json", overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(self.truth(), indent=2))
        self.preview(directory / "preview.png", overwrite=overwrite)
        return directory

    def preview(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Abundance maps, and the summed spectrum of the pixels richest in each phase with its clean version."""
        from speclearn.io import check_output
        from speclearn.report import pyplot, save_figure
        plt = pyplot()
        check_output(path, overwrite=overwrite)
        k = len(self.phases)
        fig, axes = plt.subplots(2, k, figsize=(3.2 * k, 6), squeeze=False)
        flat_abundance = self.abundances.reshape(k, -1)
        for i, phase in enumerate(self.phases):
            axes[0, i].imshow(self.abundances[i], vmin=0, vmax=1, cmap="viridis")
            axes[0, i].set_title(f"{phase.name} abundance")
            axes[0, i].axis("off")
            ys, xs = np.unravel_index(np.argsort(flat_abundance[i])[-16:], self.abundances.shape[1:])
            cube = self.spectra.intensity
            picked = cube.vindex[ys, xs].compute() if self.spectra.is_lazy else cube[ys, xs]
            measured = np.asarray(picked, float).sum(axis=0)
            weights = self.abundances[:, ys, xs] * self.dose * self.thickness[ys, xs]
            clean = (weights.T @ self.phase_spectra).sum(axis=0)
            axes[1, i].plot(self.spectra.axis, measured, lw=0.6, label="simulated (16 px)")
            axes[1, i].plot(self.spectra.axis, clean, lw=1.0, label="clean")
            axes[1, i].set_xlabel("energy (keV)")
            axes[1, i].set_xlim(0, min(self.spectra.axis[-1], 12))
        axes[1, 0].set_ylabel("counts")
        axes[1, 0].legend(fontsize=7)
        return save_figure(fig, path)


def default_chunk_rows(nx: int, n_channels: int, target_bytes: int = 64 * 2**20) -> int:
    """Rows per generated block: ~64 MB of float64 expected counts (matches the Zarr chunking)."""
    return int(max(1, target_bytes // (nx * n_channels * 8)))


def _block_seed(seed: int, block: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(1, block))


def simulate_edx(ny: int = 64, nx: int = 64, n_channels: int = 2048, *,
                 phases: list[EDXPhase] | tuple[EDXPhase, ...] = DEFAULT_PHASES, dose: float = 200.0,
                 layout: str = "particles", thickness_variation: float = 0.0, seed: int = 0,
                 beam_kv: float = 200.0, detector_fwhm_mnka: float = 0.130, continuum: float = 0.3,
                 scale_kev: float = 0.01, offset_kev: float = 0.1, chunk_rows: int | None = None,
                 lazy: bool = False) -> EDXSimulation:
    """Simulate a spectrum image; `lazy=True` returns a dask cube generated block by block.

    Noise is drawn per band of `chunk_rows` rows from a seed derived from (seed, band), so the same
    seed and chunking give the same counts whether the cube is built in memory or streamed.
    """
    if ny < 1 or nx < 1 or n_channels < 2:
        raise InputError(f"map size must be at least 1 x 1 pixels and 2 channels, got {ny} x {nx} x {n_channels}")
    if dose <= 0:
        raise InputError(f"dose must be positive, got {dose}")
    if thickness_variation < 0:
        raise InputError(f"thickness variation must be >= 0, got {thickness_variation}")
    phases = list(phases)
    if not phases:
        raise InputError("at least one phase is needed")
    axis = energy_axis(n_channels, scale_kev=scale_kev, offset_kev=offset_kev)
    spectra_k = np.stack([phase_spectrum(p, axis, beam_kv=beam_kv, detector_fwhm_mnka=detector_fwhm_mnka,
                                         continuum=continuum) for p in phases])
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    abundances = abundance_maps(ny, nx, len(phases), layout, rng)
    thickness = thickness_map(ny, nx, thickness_variation, rng)
    rows = chunk_rows or default_chunk_rows(nx, n_channels)
    settings = {"layout": layout, "thickness_variation": thickness_variation, "seed": seed, "beam_kv": beam_kv,
                "detector_fwhm_mnka": detector_fwhm_mnka, "continuum": continuum, "chunk_rows": rows}
    sim = EDXSimulation(None, spectra_k, abundances, thickness, phases, float(dose), settings)  # type: ignore[arg-type]

    def block(index: int) -> np.ndarray:
        band = slice(index * rows, min((index + 1) * rows, ny))
        return np.random.default_rng(_block_seed(seed, index)).poisson(sim.expected_counts(band)).astype(np.int32)

    n_blocks = -(-ny // rows)
    if lazy:
        import dask
        import dask.array as da
        parts = [da.from_delayed(dask.delayed(block)(i), shape=(min(rows, ny - i * rows), nx, n_channels),
                                 dtype=np.int32) for i in range(n_blocks)]
        cube = da.concatenate(parts, axis=0)
    else:
        cube = np.concatenate([block(i) for i in range(n_blocks)], axis=0)
    sim.spectra = Spectra(cube, axis, axis_kind="energy", axis_unit="keV")
    return sim


def stream_edx_to_zarr(path: str | Path, ny: int, nx: int, n_channels: int = 2048, *, overwrite: bool = False,
                       **options) -> EDXSimulation:
    """Generate a spectrum image block by block straight into a Zarr store (memory stays flat).

    `options` are those of `simulate_edx`. Returns the simulation (its cube is the lazy one).
    """
    from speclearn.io import write_spectra
    sim = simulate_edx(ny, nx, n_channels, lazy=True, **options)
    write_spectra(sim.spectra, path, overwrite=overwrite)
    return sim
