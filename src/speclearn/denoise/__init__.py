"""Denoising spectra: SpectroscopyNet (siamese, weak labels), a supervised U-Net and classical baselines."""
from speclearn.denoise.base import Denoiser
from speclearn.denoise.classical import ClassicalDenoiser
from speclearn.denoise.siamese import SEED_CONFIG, SpectroscopyNet, TripletSampler
from speclearn.denoise.replicates import ReplicateDenoiser
from speclearn.denoise.supervised import SupervisedDenoiser

__all__ = ["SEED_CONFIG", "ClassicalDenoiser", "Denoiser", "ReplicateDenoiser", "SpectroscopyNet", "SupervisedDenoiser",
           "TripletSampler"]
