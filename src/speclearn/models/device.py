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
