"""Choosing where torch runs: `--device cpu|cuda|auto`."""
from __future__ import annotations

import torch

from speclearn.core.errors import InputError

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else CPU; asking for CUDA without a GPU is an input error."""
    if name not in DEVICES:
        raise InputError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def use_device(estimator, name: str):
    """Run a loaded estimator's inference on device `name` (`--device` of predict/apply commands).

    Estimators with a `device` parameter move there. The others compute on the CPU: `auto` means
    exactly that for them, and only an explicit `cuda` is refused rather than silently ignored.
    """
    resolve_device(name)
    if "device" in estimator.get_params():
        estimator.set_params(device=name)
    elif name == "cuda":
        raise InputError(f"{type(estimator).__name__} computes on the CPU; use --device cpu or auto")
    return estimator
