"""Shared fixtures: small spectra, file writers and a CLI runner that returns (exit code, stdout, stderr)."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest
import torch

from speclearn.cli.main import main
from speclearn.core.spectra import Spectra

torch.set_num_threads(1)


@pytest.fixture
def spectra() -> Spectra:
    rng = np.random.default_rng(0)
    axis = np.linspace(200.0, 300.0, 64)
    peaks = np.exp(-0.5 * ((axis[None, :] - rng.uniform(220, 280, (12, 1))) / 3.0) ** 2)
    ids = pd.Index([f"s{i:02d}" for i in range(12)], name="id")
    meta = pd.DataFrame({"group": [f"g{i % 3}" for i in range(12)]}, index=ids)
    return Spectra(10 * peaks + 0.01 * axis + rng.normal(0, 0.05, peaks.shape), axis,
                   axis_kind="wavelength", meta=meta)


@pytest.fixture
def cli(capsys):
    """Run `speclearn ARGS...` in-process; returns (exit code, stdout, stderr)."""
    def run(*args: object) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run
