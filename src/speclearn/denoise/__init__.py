"""Denoising spectra: SpectroscopyNet (siamese, weak labels), replicate-trained (Noise2Noise) and blind-spot
(Noise2Self) U-Nets, a supervised U-Net and classical baselines."""
from speclearn.denoise.base import Denoiser
from speclearn.denoise.blindspot import BlindSpotDenoiser
from speclearn.denoise.classical import ClassicalDenoiser
from speclearn.denoise.siamese import SEED_CONFIG, SpectroscopyNet, TripletSampler
from speclearn.denoise.replicates import ReplicateDenoiser
from speclearn.denoise.supervised import SupervisedDenoiser

__all__ = ["SEED_CONFIG", "BlindSpotDenoiser", "ClassicalDenoiser", "Denoiser", "ReplicateDenoiser", "SpectroscopyNet",
           "SupervisedDenoiser", "TripletSampler"]
