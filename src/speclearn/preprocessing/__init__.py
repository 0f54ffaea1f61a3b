"""scikit-learn-compatible preprocessing for spectra: one transformer per module, numpy or dask input."""
from speclearn.preprocessing.baseline import BaselineCorrector
from speclearn.preprocessing.normalization import Normalizer
from speclearn.preprocessing.pipeline import STEPS, average_by_group, build_pipeline, preprocess, read_spec
from speclearn.preprocessing.resampling import Resampler
from speclearn.preprocessing.scaling import StandardScaler
from speclearn.preprocessing.scatter import ScatterCorrection
from speclearn.preprocessing.selection import CHEMCAM_MASKED_BANDS, BandMask, Crop
from speclearn.preprocessing.smoothing import SavitzkyGolay

__all__ = ["CHEMCAM_MASKED_BANDS", "STEPS", "BandMask", "BaselineCorrector", "Crop", "Normalizer",
           "Resampler", "SavitzkyGolay", "ScatterCorrection", "StandardScaler", "average_by_group", "build_pipeline",
           "preprocess", "read_spec"]
