"""Composition of a phase from its spectrum: NNLS fit of line-family templates, then Cliff-Lorimer ratios.

Each element's K, L and M families (xraydb energies and weights, detector resolution and efficiency;
see `speclearn.simulate.edx`) and a Kramers continuum are fitted to the spectrum with non-negative
least squares. The fitted counts I_A of element A (all its families in range) give its weight
fraction through Cliff-Lorimer ratios C_A / C_B = k_AB I_A / I_B, with k_AB = S_B / S_A and S the
counts per unit weight fraction predicted by the same thin-film physics (theoretical k-factors).
The assumption: the spectrum obeys that physics (no absorption or fluorescence in the sample), which
holds exactly for the simulator and approximately for thin TEM specimens; real k-factors should
come from standards.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from speclearn.core.errors import InputError
from speclearn.physics.edx import bremsstrahlung, family_profile, line_families


@dataclass
class Quantification:
    """intensities: fitted counts per element; k_factors relative to the first element;
    weight_fractions and atomic_fractions sum to one; families: fitted counts per family label."""

    intensities: dict[str, float]
    k_factors: dict[str, float]
    weight_fractions: dict[str, float]
    atomic_fractions: dict[str, float]
    families: dict[str, float]


def quantify_spectrum(spectrum: np.ndarray, energy_axis_kev: np.ndarray, elements: list[str], *,
                      beam_kv: float = 200.0, detector_fwhm_mnka: float = 0.130, efficiency: bool = True,
                      fit_range_kev: tuple[float, float] = (0.2, np.inf)) -> Quantification:
    """Weight and atomic fractions of `elements` in one spectrum (any scale: counts or unit area)."""
    import xraydb
    spectrum = np.asarray(spectrum, float)
    axis = np.asarray(energy_axis_kev, float)
    if spectrum.shape != axis.shape:
        raise InputError(f"spectrum has {spectrum.size} channels but the axis {axis.size}")
    if not elements:
        raise InputError("name at least one element to quantify")
    keep = (axis >= fit_range_kev[0]) & (axis <= fit_range_kev[1])
    columns, owners, labels = [], [], []
    for element in elements:
        for family in line_families(element, axis[keep], beam_kv=beam_kv, efficiency=efficiency):
            columns.append(family_profile(family, axis, detector_fwhm_mnka))
            owners.append(element)
            labels.append(family.label)
    missing = sorted(set(elements) - set(owners))
    if missing:
        raise InputError(f"no X-ray line of {', '.join(missing)} inside the fitted energy range")
    columns.append(bremsstrahlung(axis, beam_kv=beam_kv, efficiency=efficiency) * spectrum[keep].sum())
    design = np.stack(columns, axis=1)
    coefficients, _ = nnls(design[keep], spectrum[keep])
    families = {label: float(c * design[:, i].sum()) for i, (label, c) in enumerate(zip(labels, coefficients))}
    intensities = {e: 0.0 for e in elements}
    sensitivities = {e: 0.0 for e in elements}
    for i, element in enumerate(owners):
        intensities[element] += coefficients[i] * design[:, i].sum()
        sensitivities[element] += design[:, i].sum()
    reference = elements[0]
    k_factors = {e: sensitivities[reference] / sensitivities[e] for e in elements}
    relative = {e: k_factors[e] * intensities[e] for e in elements}
    total = sum(relative.values())
    weights = {e: (v / total if total > 0 else 0.0) for e, v in relative.items()}
    moles = {e: weights[e] / xraydb.atomic_mass(e) for e in elements}
    mole_total = sum(moles.values())
    atomic = {e: (v / mole_total if mole_total > 0 else 0.0) for e, v in moles.items()}
    return Quantification({e: float(v) for e, v in intensities.items()}, {e: float(v) for e, v in k_factors.items()},
                          weights, atomic, families)
