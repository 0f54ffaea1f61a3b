"""Shared model machinery: the on-disk format, device choice and the torch training loop."""
from speclearn.models.device import resolve_device, use_device
from speclearn.models.persistence import SavedModel, load_model, read_model_type, save_model
from speclearn.models.estimator import MODEL_TYPES, SpectralEstimator, load, methods
from speclearn.models.training import (TrainingConfig, TrainingHistory, load_module_arrays, module_arrays,
                                       predict_batches, train)

__all__ = ["MODEL_TYPES", "SavedModel", "SpectralEstimator", "load", "methods", "TrainingConfig", "TrainingHistory", "load_model", "load_module_arrays", "module_arrays",
           "predict_batches", "read_model_type",
           "resolve_device", "save_model", "train", "use_device"]
