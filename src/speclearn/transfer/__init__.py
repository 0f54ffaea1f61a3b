"""Spectral library transfer between instruments (Vrábel et al., JAAS 2023): VAE latent space + MLP, and baselines."""
from speclearn.models.estimator import methods
from speclearn.transfer.base import TransferModel
from speclearn.transfer.ds import DSTransfer
from speclearn.transfer.knn import KNNTransfer
from speclearn.transfer.mlp import OneStepMLPTransfer
from speclearn.transfer.none import NoTransfer
from speclearn.transfer.pds import PDSTransfer
from speclearn.transfer.pls import PLSTransfer
from speclearn.transfer.vae_mlp import VAEMLPTransfer

#: `--method` name -> estimator class
METHODS: dict[str, type[TransferModel]] = methods("transfer")

__all__ = ["METHODS", "DSTransfer", "KNNTransfer", "NoTransfer", "OneStepMLPTransfer", "PDSTransfer", "PLSTransfer",
           "TransferModel", "VAEMLPTransfer"]
