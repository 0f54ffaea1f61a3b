"""speclearn: deep learning for spectra, measured against the classical methods on the same data."""
from speclearn.core import AXIS_KINDS, InputError, Spectra
from speclearn.io import read_spectra, read_table_csv, write_spectra

__version__ = "0.1.0"

__all__ = ["AXIS_KINDS", "InputError", "Spectra", "__version__", "read_spectra", "read_table_csv", "write_spectra"]
