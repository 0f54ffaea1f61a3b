"""The exact types a model's `.skops` files may hold beyond skops's own safe defaults.

skops already trusts scikit-learn's estimators and plain numpy/scipy containers. These are the
extra classes speclearn's saved pipelines use. Only classes whose construction runs no user code
belong here; functions are listed one by one (a metric), never by module prefix.
"""

ALLOWED_SKOPS_TYPES = (
    "speclearn.preprocessing.baseline.BaselineCorrector",
    "speclearn.preprocessing.normalization.Normalizer",
    "speclearn.preprocessing.resampling.Resampler",
    "speclearn.preprocessing.scaling.StandardScaler",
    "speclearn.preprocessing.scatter.ScatterCorrection",
    "speclearn.preprocessing.selection.BandMask",
    "speclearn.preprocessing.selection.Crop",
    "speclearn.preprocessing.smoothing.SavitzkyGolay",
    "sklearn.metrics._regression.root_mean_squared_error",
    "sklearn.metrics._scorer._Scorer",
    "sklearn.model_selection._split.KFold",
    "sklearn.model_selection._split.GroupKFold",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree",
    "fractions.Fraction",
)
