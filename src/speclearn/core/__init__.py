"""The shared spine: data model, errors and validation used by every seed system."""
from speclearn.core.errors import InputError
from speclearn.core.spectra import AXIS_KINDS, Spectra

__all__ = ["AXIS_KINDS", "InputError", "Spectra"]
