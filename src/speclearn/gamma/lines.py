"""Offline gamma-line data: decay lines of common sources, thermal-capture and fast-inelastic lines.

Decay lines: energies (keV) and emission probabilities (photons per 100 decays) typed from NNDC
NuDat 3 / ENSDF (https://www.nndc.bnl.gov/nudat3/), rounded; the natural chains (Th-232, U-238)
are in secular equilibrium and list their daughters' strong lines per decay of the parent (Tl-208
lines carry the 35.94 % Bi-212 -> Tl-208 branch). Only lines >= ~1 % are kept, except that the
U-238 entry is natural uranium: it also carries U-235's lines at natural abundance (activity ratio
U-235/U-238 = 0.046), so its 186 keV region holds Ra-226's 186.2 keV line plus U-235's 185.7 keV
line. The U-235 entry stands for enriched uranium (U-235 lines alone).

Thermal-neutron capture lines: energies (keV) and partial elemental cross sections sigma_gamma
(barn) typed, rounded, from the IAEA prompt-gamma database (EGAF: Choi et al., "Database of Prompt
Gamma Rays from Slow Neutron Capture for Elemental Analysis", IAEA STI/PUB/1263, 2007); strongest
lines only.

Fast-neutron inelastic lines: energies (keV) from ENSDF level schemes; the gamma-production cross
sections (barn, near 14 MeV) are rounded orders of magnitude from ENDF/B-VIII.0 evaluations, enough
for a simulator's relative line strengths, not for quantitative analysis.
"""
from __future__ import annotations

import numpy as np

SOURCES = {
    "decay": "NNDC NuDat 3 / ENSDF, typed and rounded (photons per 100 decays)",
    "capture": "IAEA EGAF prompt-gamma database (Choi et al. 2007), typed and rounded (partial sigma_gamma, barn)",
    "inelastic": "ENSDF energies; ~14 MeV gamma-production cross sections rounded from ENDF/B-VIII.0 (barn)",
}

#: nuclide -> [(energy keV, photons per 100 decays)]
DECAY_LINES: dict[str, list[tuple[float, float]]] = {
    "Am-241": [(26.345, 2.31), (59.541, 35.92)],
    "Ba-133": [(53.162, 2.14), (80.998, 32.9), (276.399, 7.16), (302.851, 18.34), (356.013, 62.05),
               (383.849, 8.94)],
    "Co-57": [(122.061, 85.60), (136.474, 10.68)],
    "Co-60": [(1173.228, 99.85), (1332.492, 99.98)],
    "Cs-137": [(661.657, 85.10)],
    "Eu-152": [(121.782, 28.53), (244.697, 7.55), (344.279, 26.59), (411.117, 2.24), (443.960, 2.83),
               (778.905, 12.93), (867.380, 4.23), (964.072, 14.51), (1085.837, 10.11), (1112.076, 13.67),
               (1408.013, 20.87)],
    "I-131": [(80.185, 2.62), (284.305, 6.12), (364.490, 81.5), (636.989, 7.16), (722.911, 1.77)],
    "Ir-192": [(295.956, 28.71), (308.455, 29.70), (316.506, 82.86), (468.069, 47.84), (484.575, 3.19),
               (588.581, 4.52), (604.411, 8.23), (612.462, 5.34)],
    "K-40": [(1460.820, 10.66)],
    "Mn-54": [(834.848, 99.98)],
    "Na-22": [(511.0, 180.7), (1274.537, 99.94)],
    "Tc-99m": [(140.511, 89.06)],
    "Th-232": [(238.632, 43.6), (240.986, 4.10), (300.087, 3.30), (338.320, 11.27), (510.77, 8.1),
               (583.187, 30.5), (727.330, 6.67), (860.557, 4.47), (911.204, 25.8), (964.766, 4.99),
               (968.971, 15.8), (1588.19, 3.22), (2614.511, 35.85)],
    "U-235": [(143.767, 10.96), (163.356, 5.08), (185.715, 57.2), (205.316, 5.01)],
    "U-238": [(63.29, 3.7), (186.211, 3.64), (241.997, 7.27), (295.224, 18.42), (351.932, 35.60),
              (609.312, 45.49), (768.356, 4.89), (934.061, 3.10), (1001.03, 0.84), (1120.287, 14.91),
              (1238.111, 5.83), (1377.669, 3.99), (1729.595, 2.88), (1764.494, 15.31), (1847.420, 2.03),
              (2204.21, 4.91)],
    "Y-88": [(898.042, 93.7), (1836.063, 99.2)],
}

#: U-235 / U-238 activity ratio of natural uranium: 0.7204 / 99.2742 atom-% x (4.468e9 / 7.04e8 y half-lives)
NATURAL_U235_ACTIVITY = 0.046
DECAY_LINES["U-238"] = sorted(DECAY_LINES["U-238"] + [(e, round(NATURAL_U235_ACTIVITY * i, 3))
                                                      for e, i in DECAY_LINES["U-235"]])
#: lines emitted after a chain's radon (Rn-222 -> Pb-214, Bi-214): radon escaping the ground or a sample
#: weakens them against the uranium and Ra-226 lines (`decay_lines(..., radon=)`)
RADON_DAUGHTER_LINES = {"U-238": (241.997, 295.224, 351.932, 609.312, 768.356, 934.061, 1120.287, 1238.111,
                                  1377.669, 1729.595, 1764.494, 1847.420, 2204.21)}

#: natural background components
NATURAL = ("K-40", "U-238", "Th-232")
#: gamma-gamma cascades that give sum peaks (coincident pairs, keV)
CASCADES = {"Co-60": [(1173.228, 1332.492)], "Y-88": [(898.042, 1836.063)], "Na-22": [(511.0, 1274.537)]}

#: element -> [(energy keV, partial capture cross section sigma_gamma barn)]
CAPTURE_LINES: dict[str, list[tuple[float, float]]] = {
    "H": [(2223.25, 0.3326)],
    "C": [(1261.7, 0.00124), (3683.9, 0.00122), (4945.3, 0.00261)],
    "N": [(1884.8, 0.0147), (4508.7, 0.0130), (5269.2, 0.0236), (5297.8, 0.0168), (5533.4, 0.0155),
          (6322.4, 0.0147), (10829.1, 0.0114)],
    "O": [(870.7, 0.000177), (2184.4, 0.000160)],
    "Na": [(472.2, 0.478), (3981.9, 0.056), (6395.4, 0.0127)],
    "Al": [(983.0, 0.0152), (7693.4, 0.0134), (7724.0, 0.0644)],
    "Si": [(1273.4, 0.0301), (2092.9, 0.0332), (3539.0, 0.119), (4933.9, 0.112), (7199.2, 0.0129)],
    "S": [(841.0, 0.350), (2379.7, 0.218), (5420.6, 0.309)],
    "Cl": [(517.1, 7.58), (786.3, 3.47), (788.4, 5.42), (1951.1, 6.33), (1959.4, 4.10), (6110.8, 6.59),
           (6619.6, 2.54), (7413.9, 3.33), (7790.3, 2.75)],
    "K": [(770.3, 0.898), (5752.0, 0.167)],
    "Ca": [(519.6, 0.0429), (1942.7, 0.352), (4418.5, 0.0695), (6419.6, 0.176)],
    "Fe": [(352.3, 0.273), (692.0, 0.100), (5920.4, 0.225), (6018.5, 0.227), (7631.1, 0.653),
           (7645.5, 0.549)],
}

#: element -> [(energy keV, gamma-production cross section near 14 MeV, barn)]
INELASTIC_LINES: dict[str, list[tuple[float, float]]] = {
    "C": [(4438.9, 0.20)],
    "N": [(1635.0, 0.07), (2313.0, 0.08), (5105.0, 0.05)],
    "O": [(2741.5, 0.04), (3853.0, 0.03), (6129.3, 0.14)],
    "Na": [(440.0, 0.50), (1636.0, 0.10)],
    "Al": [(843.8, 0.10), (1014.4, 0.24), (2211.0, 0.20)],
    "Si": [(1779.0, 0.40)],
    "S": [(2230.6, 0.40)],
    "Cl": [(1219.3, 0.20), (1763.1, 0.15)],
    "K": [(2522.0, 0.10)],
    "Ca": [(3736.7, 0.15)],
    "Fe": [(846.8, 0.63), (1238.3, 0.15)],
}

ELEMENTS = ("H", "C", "N", "O", "Na", "Al", "Si", "S", "Cl", "K", "Ca", "Fe")


def decay_lines(nuclide: str, *, radon: float = 1.0) -> np.ndarray:
    """(n, 2) array of energy (keV) and photons per decay for `nuclide`; `radon`: the share of its
    radon daughters retained (lines in `RADON_DAUGHTER_LINES` scaled by it)."""
    after = RADON_DAUGHTER_LINES.get(nuclide, ())
    return np.array([(e, i / 100.0 * (radon if e in after else 1.0)) for e, i in DECAY_LINES[nuclide]])


def element_lines(element: str, *, capture: float = 1.0, inelastic: float = 1.0) -> np.ndarray:
    """(n, 2) energy and relative yield per atom: capture lines x `capture` + inelastic x `inelastic`."""
    rows = [(e, s * capture) for e, s in CAPTURE_LINES.get(element, [])]
    rows += [(e, s * inelastic) for e, s in INELASTIC_LINES.get(element, [])]
    return np.array(rows) if rows else np.zeros((0, 2))


def line_table():
    """All lines as one table (kind, source, energy_keV, yield, unit) for users and reports."""
    import pandas as pd
    rows = [("decay", n, e, i, "photons/100 decays") for n, lines in DECAY_LINES.items() for e, i in lines]
    rows += [("capture", el, e, s, "barn") for el, lines in CAPTURE_LINES.items() for e, s in lines]
    rows += [("inelastic", el, e, s, "barn") for el, lines in INELASTIC_LINES.items() for e, s in lines]
    return pd.DataFrame(rows, columns=["kind", "source", "energy_keV", "yield", "unit"])
