"""Fault injection for simulated ICP-MS runs (QA benchmark and tests).

A run is `simulate_icpms` output taken in id order. Faults act on the expected counts (`clean`) and
the noise is drawn again (Poisson + proportional Gaussian as in the simulator), so a faulty spectrum
has the right counting statistics. Labels mark the affected spectra.

- sensitivity_drop: from `start`, every count rate times `size` (e.g. 0.6: a nebuliser or lens fault).
- clogging: cone clogging, from `start` the response decays by `size` per spectrum (exp(-size t)),
  low masses a little more (factor ** (1 + 0.3 (m_ref / m - 1))). Labelled where the loss >= 10 %.
- spike: at `start`, `width` channels near a random position get `size` extra counts (a transient).
- matrix: from `start`, chloride and sulfur matrix polyatomics (ArCl, ClO, SO, SO2, S2) times `size`.
- wrong_sample: at `start`, a spectrum of a different sample (other elements at high level, no
  internal standard added).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from speclearn.core.errors import InputError
from speclearn.physics.icpms import poisson_counts
from speclearn.simulate.icpms import ICPMSConfig, ICPMSSimulation, simulate_icpms

FAULTS = ("sensitivity_drop", "clogging", "spike", "matrix", "wrong_sample")
MATRIX_SOURCES = ("chloride", "sulfur")


@dataclass
class FaultyRun:
    """A simulated run with faults: spectra (in run order), truth, per-spectrum fault labels."""

    simulation: ICPMSSimulation
    labels: np.ndarray  # bool per spectrum
    fault: str
    start: int


def redraw(clean: np.ndarray, config: ICPMSConfig, rng: np.random.Generator) -> np.ndarray:
    """Noisy counts for expected counts `clean`, with the simulator's noise model."""
    counts = poisson_counts(rng, clean) if config.poisson else clean.astype(np.float32)
    return counts + config.gaussian_noise_rel * clean * rng.standard_normal(clean.shape).astype(np.float32)


def inject(sim: ICPMSSimulation, fault: str, *, start: int, size: float | None = None, width: int = 3,
           seed: int = 0) -> FaultyRun:
    """The run `sim` with `fault` injected from spectrum `start` (see the module docstring)."""
    if fault not in FAULTS:
        raise InputError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
    n = sim.spectra.n_spectra
    if not 0 <= start < n:
        raise InputError(f"fault start {start} is outside the run of {n} spectra")
    rng = np.random.default_rng(seed)
    clean = sim.clean.astype(np.float64).copy()
    axis = sim.spectra.axis
    labels = np.zeros(n, bool)
    config = sim.config
    if fault == "sensitivity_drop":
        clean[start:] *= 0.6 if size is None else size
        labels[start:] = True
    elif fault == "clogging":
        steps = np.arange(n - start)
        loss = np.exp(-(0.01 if size is None else size) * steps)
        tilt = 1 + 0.3 * (config.instrument.reference_mz / axis - 1)
        clean[start:] *= loss[:, None] ** tilt[None, :]
        labels[start:] = loss <= 0.9
    elif fault == "spike":
        centre = int(rng.integers(width, len(axis) - width))
        clean[start, centre:centre + width] += 2000.0 if size is None else size
        labels[start] = True
    else:
        other = _matrix_config(config, 20.0 if size is None else size) if fault == "matrix" else _wrong_config(config)
        changed = simulate_icpms(n, seed=sim.seed, config=other, workers=1)
        rows = slice(start, None) if fault == "matrix" else slice(start, start + 1)
        clean[rows] = changed.clean[rows]
        labels[rows] = True
    noisy = sim.spectra.values().astype(np.float64)
    affected = np.flatnonzero(labels | (np.arange(n) >= start) & (fault in ("sensitivity_drop", "clogging", "matrix")))
    noisy[affected] = redraw(clean[affected], config, rng)
    spectra = sim.spectra.with_intensity(noisy)
    faulty = replace(sim, spectra=spectra, clean=clean.astype(np.float32))
    return FaultyRun(faulty, labels, fault, start)


def _matrix_config(config: ICPMSConfig, factor: float) -> ICPMSConfig:
    polyatomics = tuple((s, src, rate * factor if src in MATRIX_SOURCES else rate) for s, src, rate in config.polyatomics)
    return replace(config, polyatomics=polyatomics)


def _wrong_config(config: ICPMSConfig) -> ICPMSConfig:
    """Another sample: its interferents at 100x, heavy matrix, no internal standard."""
    return replace(_matrix_config(config, 10.0), interferent_median=config.interferent_median * 100,
                   internal_standard=None)
