"""Channel selection on the axis: cropping to a range and masking bands (e.g. ChemCam's)."""
from __future__ import annotations

import numpy as np

from speclearn.core.params import store_params
from speclearn.preprocessing._base import AxisTransformer

#: bands ignored by the ChemCam team (Castorena & Oyen, SpectroscopyNet §3), in nm
CHEMCAM_MASKED_BANDS = ((240.811, 246.635), (338.457, 340.797), (382.13, 387.859),
                        (473.184, 492.427), (849.0, 905.574))


class Crop(AxisTransformer):
    """Keep the channels with `start <= axis <= stop` (either bound may be None)."""

    def __init__(self, start: float | None = None, stop: float | None = None, axis=None):
        store_params(self, locals())

    def _keep_mask(self, axis: np.ndarray) -> np.ndarray:
        low = -np.inf if self.start is None else self.start
        high = np.inf if self.stop is None else self.stop
        return (axis >= low) & (axis <= high)


class BandMask(AxisTransformer):
    """Drop the channels that fall inside any of `bands` = [(low, high), ...] (axis units)."""

    def __init__(self, bands=CHEMCAM_MASKED_BANDS, axis=None):
        self.bands = bands
        self.axis = axis

    def _keep_mask(self, axis: np.ndarray) -> np.ndarray:
        keep = np.ones(axis.size, dtype=bool)
        for low, high in self.bands:
            keep &= ~((axis >= min(low, high)) & (axis <= max(low, high)))
        return keep
