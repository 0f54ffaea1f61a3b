"""Unmixing noisy spectrum images: PSNMF (NMF pan-sharpening) and the NMF / PCA-NMF baselines."""
from speclearn.unmix.model import FixedSpectraUnmixer, apply_unmixing, load_unmixing
from speclearn.unmix.nmf import NMF
from speclearn.unmix.pcanmf import PCANMF
from speclearn.unmix.psnmf import PSNMF

METHODS = {"psnmf": PSNMF, "nmf": NMF, "pca-nmf": PCANMF}

__all__ = ["METHODS", "NMF", "PCANMF", "PSNMF", "FixedSpectraUnmixer", "apply_unmixing", "load_unmixing"]
