"""Named materials by atomic composition (atoms per formula unit or per 100 atoms).

Molecules from their formulas; soil and ordinary concrete as approximate atom fractions after the
PNNL Compendium of Material Composition Data (PNNL-15870 Rev. 1: "Soil (US average)", "Concrete,
Ordinary (NBS 03)"), rounded, with minor elements outside `lines.ELEMENTS` dropped.
"""
from __future__ import annotations

import numpy as np

from speclearn.core.errors import InputError
from speclearn.gamma.lines import ELEMENTS

MATERIALS: dict[str, dict[str, float]] = {
    "TNT": {"C": 7, "H": 5, "N": 3, "O": 6},
    "RDX": {"C": 3, "H": 6, "N": 6, "O": 6},
    "PETN": {"C": 5, "H": 8, "N": 4, "O": 12},
    "ammonium_nitrate": {"N": 2, "H": 4, "O": 3},
    "urea": {"C": 1, "H": 4, "N": 2, "O": 1},
    "cocaine_hcl": {"C": 17, "H": 22, "Cl": 1, "N": 1, "O": 4},
    "heroin": {"C": 21, "H": 23, "N": 1, "O": 5},
    "polyethylene": {"C": 2, "H": 4},
    "PVC": {"C": 2, "H": 3, "Cl": 1},
    "PMMA": {"C": 5, "H": 8, "O": 2},
    "nylon": {"C": 6, "H": 11, "N": 1, "O": 1},
    "melamine": {"C": 3, "H": 6, "N": 6},
    "water": {"H": 2, "O": 1},
    "sugar": {"C": 12, "H": 22, "O": 11},
    "salt": {"Na": 1, "Cl": 1},
    "soil": {"O": 58.0, "Si": 19.0, "H": 9.0, "Al": 6.5, "Fe": 2.0, "Ca": 1.5, "K": 1.3, "Na": 1.2, "C": 1.0,
             "S": 0.1},
    "concrete": {"H": 16.8, "O": 56.2, "Si": 20.4, "Al": 2.2, "Ca": 1.9, "Na": 1.8, "K": 0.5, "Fe": 0.4,
                 "C": 0.1},
    "steel": {"Fe": 98.0, "C": 2.0},
}


def atom_fractions(name: str) -> np.ndarray:
    """Atom fractions of `name` in the order of `lines.ELEMENTS` (sum 1)."""
    if name not in MATERIALS:
        raise InputError(f"unknown material {name!r}; known: {', '.join(MATERIALS)}")
    counts = np.array([MATERIALS[name].get(el, 0.0) for el in ELEMENTS], dtype=float)
    return counts / counts.sum()
