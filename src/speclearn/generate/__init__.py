"""Generative augmentation: a conditional VAE that generates spectra for a requested composition or class."""
from speclearn.generate.cvae import ConditionalVAE

__all__ = ["ConditionalVAE"]
